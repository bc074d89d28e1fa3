//! Public subscriptions: the same 202 whatever the address's history, the
//! mail each request queues, and the links in that mail (confirm,
//! unsubscribe, manage) with their tokens, pages and refusals.

use chrono::{Duration, Utc};
use clearance::auth::Role;
use clearance::links::{LinkClaims, LinkPurpose, LinkSubject};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::browser::Browser;
use crate::helpers::{PAGE_POLICY as CSP, SpawnOptions, TestApp, body, problem, wait_for};

crate::backend_tests!(
    a_family_member_subscribes_from_the_form,
    a_phone_keeps_the_form_when_the_address_is_mistyped,
    every_request_gets_the_same_202_and_a_confirmed_address_is_never_changed,
    the_filter_is_stored_and_unknown_ids_are_refused,
    a_good_token_confirms_and_confirming_again_is_harmless,
    the_mailed_link_asks_first_and_only_its_button_confirms,
    bad_expired_foreign_and_tampered_tokens_are_400_never_500,
    browsers_get_pages_and_programs_get_json,
    the_unsubscribe_link_shows_a_form_and_changes_nothing,
    one_click_unsubscribes_and_twice_is_still_200,
    the_manage_link_shows_the_subscription_and_how_to_end_it,
    the_owner_changes_what_a_subscription_receives,
    audit_rows_never_carry_the_address,
);

/// Starts its own app (public lookup and subscriptions switched off).
mod private_subscriptions {
    use super::*;
    crate::backend_tests!(with SpawnOptions { public_lookup: false, ..SpawnOptions::default() } => subscribing_needs_a_token_when_public_lookup_is_off);
}

const SUBSCRIPTIONS: &str = "/api/v1/subscriptions";
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn subscribe(app: &TestApp, email: &str, filter: Value) -> Response {
    app.post(
        SUBSCRIPTIONS,
        None,
        &json!({"email": email, "filter": filter}),
    )
    .await
}

/// The status and body of a subscription request, which must be 202.
async fn accepted(app: &TestApp, email: &str, filter: Value) -> Value {
    let response = subscribe(app, email, filter).await;
    assert_eq!(response.status(), 202);
    body(response).await
}

/// The id and state of the subscription of `email` (any case).
fn subscription(app: &TestApp, email: &str) -> (Uuid, String) {
    let key = email.to_lowercase();
    let rows = app.query_texts(&format!(
        "SELECT CAST(id AS TEXT) || ' ' || state AS v FROM subscriptions WHERE email_key = '{key}'"
    ));
    let (id, state) = rows[0].split_once(' ').unwrap();
    (id.parse().unwrap(), state.to_owned())
}

/// The stored filter columns of a subscription, as one comparable string.
fn stored_filter(app: &TestApp, id: Uuid) -> String {
    app.query_texts(&format!(
        "SELECT delivery || ' ' || CAST(min_severity AS TEXT) || ' ' || \
         CAST(CASE WHEN all_manufacturers THEN 1 ELSE 0 END AS TEXT) || \
         CAST(CASE WHEN all_models THEN 1 ELSE 0 END AS TEXT) || \
         CAST(CASE WHEN all_categories THEN 1 ELSE 0 END AS TEXT) AS v \
         FROM subscriptions WHERE CAST(id AS TEXT) = '{id}'"
    ))[0]
        .clone()
}

fn token(app: &TestApp, purpose: LinkPurpose, email: &str, id: Uuid) -> String {
    app.links.issue(&LinkClaims::new(
        purpose,
        email,
        LinkSubject::Subscription(id),
        Utc::now(),
    ))
}

async fn open(app: &TestApp, method: Method, path: &str, accept: Option<&str>) -> Response {
    let mut request = app.request(method, path, None);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    request.send().await.expect("request sent")
}

async fn confirm(app: &TestApp, token: &str, accept: Option<&str>) -> Response {
    let path = format!("{SUBSCRIPTIONS}/confirm?token={token}");
    open(app, Method::GET, &path, accept).await
}

async fn one_click(app: &TestApp, token: &str) -> Response {
    app.request(Method::POST, &format!("/unsubscribe?token={token}"), None)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("request sent")
}

/// Subscribes `email` and confirms it; returns the subscription id.
async fn confirmed(app: &TestApp, email: &str) -> Uuid {
    accepted(app, email, json!({})).await;
    let (id, _) = subscription(app, email);
    let response = confirm(app, &token(app, LinkPurpose::Confirm, email, id), None).await;
    assert_eq!(response.status(), 200);
    id
}

/// The body of a page with `status`, after its headers.
async fn html_of(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    response.text().await.unwrap()
}

async fn every_request_gets_the_same_202_and_a_confirmed_address_is_never_changed(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;

    // A new address: pending, and a mail to confirm.
    let new = accepted(&app, "ada@example.org", json!({})).await;
    let (id, state) = subscription(&app, "ada@example.org");
    assert_eq!(state, "pending");
    assert_eq!(app.outbox_count("confirm"), 1);

    // Pending: the new filter, and another confirmation.
    let pending = accepted(
        &app,
        "ADA@example.org",
        json!({"manufacturer_ids": [maker], "min_severity": "high"}),
    )
    .await;
    assert_eq!(pending, new);
    assert_eq!(
        subscription(&app, "ada@example.org"),
        (id, "pending".into())
    );
    assert_eq!(stored_filter(&app, id), "immediate 3 011");
    assert_eq!(app.outbox_count("confirm"), 2);

    // Confirmed: nothing changes but a mail to manage it.
    let response = confirm(
        &app,
        &token(&app, LinkPurpose::Confirm, "ada@example.org", id),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let before = stored_filter(&app, id);
    let confirmed = app
        .post(
            SUBSCRIPTIONS,
            None,
            &json!({"email": "Ada@Example.org", "filter": {"min_severity": "none"}, "delivery": "daily"}),
        )
        .await;
    assert_eq!(confirmed.status(), 202);
    assert_eq!(body(confirmed).await, new);
    assert_eq!(
        subscription(&app, "ada@example.org"),
        (id, "confirmed".into())
    );
    assert_eq!(stored_filter(&app, id), before, "the filter is untouched");
    assert_eq!(
        app.query_count(&format!(
            "SELECT COUNT(*) FROM subscription_manufacturers WHERE CAST(subscription_id AS TEXT) = '{id}'"
        )),
        1
    );
    assert_eq!(app.outbox_count("confirm"), 2);
    assert_eq!(app.outbox_count("manage"), 1);
    let manage_to = app.query_texts(
        "SELECT email || ' ' || audience || ' ' || state || ' ' || CAST(subscription_id AS TEXT) AS v \
         FROM outbox WHERE kind = 'manage'",
    );
    assert_eq!(
        manage_to,
        [format!("ADA@example.org subscriber queued {id}")],
        "to the address as confirmed (the pending request's spelling), not the new request's"
    );

    // Unsubscribed: back to pending with the new filter, and a confirmation.
    let response = one_click(
        &app,
        &token(&app, LinkPurpose::Unsubscribe, "ada@example.org", id),
    )
    .await;
    assert_eq!(response.status(), 200);
    let unsubscribed = accepted(&app, "ada@example.org", json!({"categories": ["phone"]})).await;
    assert_eq!(unsubscribed, new);
    assert_eq!(
        subscription(&app, "ada@example.org"),
        (id, "pending".into())
    );
    assert_eq!(stored_filter(&app, id), "immediate 0 110");
    assert_eq!(app.outbox_count("confirm"), 3);
    assert_eq!(
        app.query_count("SELECT COUNT(*) FROM subscriptions"),
        1,
        "one subscription per address"
    );
}

async fn the_filter_is_stored_and_unknown_ids_are_refused(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let model_id = model["id"].as_str().unwrap();
    let response = app
        .post(
            SUBSCRIPTIONS,
            None,
            &json!({
                "email": "ada@example.org",
                "filter": {
                    "manufacturer_ids": [maker, maker],
                    "model_ids": [model_id],
                    "categories": ["phone", "tablet"],
                    "min_severity": "critical",
                },
                "delivery": "daily",
            }),
        )
        .await;
    assert_eq!(response.status(), 202);
    let (id, _) = subscription(&app, "ada@example.org");
    assert_eq!(stored_filter(&app, id), "daily 4 000");
    let count = |table: &str| {
        app.query_count(&format!(
            "SELECT COUNT(*) FROM {table} WHERE CAST(subscription_id AS TEXT) = '{id}'"
        ))
    };
    assert_eq!(
        count("subscription_manufacturers"),
        1,
        "repeats are dropped"
    );
    assert_eq!(count("subscription_models"), 1);
    assert_eq!(count("subscription_categories"), 2);

    let unknown = Uuid::now_v7();
    let refused = subscribe(
        &app,
        "bob@example.org",
        json!({"manufacturer_ids": [maker], "model_ids": [model_id, unknown]}),
    )
    .await;
    let refused = problem(refused, 422).await;
    assert_eq!(
        refused["errors"],
        json!([{"field": "filter.model_ids[1]", "message": "no model has this id"}])
    );
    let refused = problem(
        subscribe(
            &app,
            "bob@example.org",
            json!({"manufacturer_ids": [unknown]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "filter.manufacturer_ids[0]");
    for (request, field) in [
        (json!({"email": "not an address"}), "email"),
        (
            json!({"email": "bob@example.org", "delivery": "hourly"}),
            "delivery",
        ),
        (
            json!({"email": "bob@example.org", "filter": {"min_severity": "severe"}}),
            "filter.min_severity",
        ),
        (
            json!({"email": "bob@example.org", "filter": {"categories": ["toaster"]}}),
            "filter.categories[0]",
        ),
        (
            json!({"email": "bob@example.org", "filter": {"colour": "red"}}),
            "filter.colour",
        ),
    ] {
        let refused = problem(app.post(SUBSCRIPTIONS, None, &request).await, 422).await;
        assert_eq!(refused["errors"][0]["field"], field, "{request}");
    }
    assert_eq!(app.query_count("SELECT COUNT(*) FROM subscriptions"), 1);
    assert_eq!(
        app.outbox_count("confirm"),
        1,
        "a refused request queues nothing"
    );
}

async fn a_good_token_confirms_and_confirming_again_is_harmless(app: TestApp) {
    accepted(&app, "ada@example.org", json!({})).await;
    let (id, _) = subscription(&app, "ada@example.org");
    let good = token(&app, LinkPurpose::Confirm, "Ada@Example.org", id);
    for _ in 0..2 {
        let response = confirm(&app, &good, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body(response).await, json!({"state": "confirmed"}));
    }
    assert_eq!(subscription(&app, "ada@example.org").1, "confirmed");
    let confirmed_at = app.query_texts(
        "SELECT CAST(confirmed_at AS TEXT) AS v FROM subscriptions WHERE confirmed_at IS NOT NULL",
    );
    assert_eq!(confirmed_at.len(), 1);
}

/// The confirmation mail links to a page: opening it (as a mail scanner
/// does) subscribes nobody; its button does, on a phone too.
async fn the_mailed_link_asks_first_and_only_its_button_confirms(app: TestApp) {
    accepted(&app, "ada@example.org", json!({})).await;
    let (id, _) = subscription(&app, "ada@example.org");
    let good = token(&app, LinkPurpose::Confirm, "ada@example.org", id);
    let link = format!("/confirm?token={good}");
    for accept in [Some(BROWSER), None, Some("application/json")] {
        let page = html_of(open(&app, Method::GET, &link, accept).await, 200).await;
        assert!(page.contains("<strong>ada@example.org</strong>"), "{page}");
        let button = format!(
            "<form method=\"get\" action=\"{SUBSCRIPTIONS}/confirm\">\n  \
             <input type=\"hidden\" name=\"token\" value=\"{good}\">"
        );
        assert!(page.contains(&button), "{page}");
    }
    assert_eq!(subscription(&app, "ada@example.org").1, "pending");

    let browser = Browser::start().await;
    browser.open(&app, &link).await;
    browser.fits_the_phone().await;
    browser.press("button[type=submit]").await;
    wait_for(
        "the page that says it is confirmed",
        std::time::Duration::from_secs(10),
        async || {
            let heading = "return document.querySelector('h1')?.textContent";
            browser.script(heading).await == "Subscription confirmed"
        },
    )
    .await;
    assert_eq!(subscription(&app, "ada@example.org").1, "confirmed");

    let again = html_of(open(&app, Method::GET, &link, Some(BROWSER)).await, 200).await;
    assert!(again.contains("ada@example.org is subscribed"), "{again}");
    assert!(!again.contains("<form"), "{again}");

    let unsubscribe = token(&app, LinkPurpose::Unsubscribe, "ada@example.org", id);
    assert_eq!(one_click(&app, &unsubscribe).await.status(), 200);
    let ended = html_of(open(&app, Method::GET, &link, Some(BROWSER)).await, 200).await;
    assert!(ended.contains("was ended"), "{ended}");
    assert!(ended.contains("href=\"/subscribe\""), "{ended}");
    problem(confirm(&app, &good, None).await, 409).await;
    assert_eq!(subscription(&app, "ada@example.org").1, "unsubscribed");

    let refused = open(&app, Method::GET, "/confirm?token=x.y", Some(BROWSER)).await;
    assert!(html_of(refused, 400).await.contains("link"));
}

async fn bad_expired_foreign_and_tampered_tokens_are_400_never_500(app: TestApp) {
    accepted(&app, "ada@example.org", json!({})).await;
    let (ada, _) = subscription(&app, "ada@example.org");
    accepted(&app, "bob@example.org", json!({})).await;

    let mut expired = LinkClaims::new(
        LinkPurpose::Confirm,
        "ada@example.org",
        LinkSubject::Subscription(ada),
        Utc::now(),
    );
    expired.expires_at = Utc::now() - Duration::minutes(1);
    let expired = app.links.issue(&expired);
    let wrong_purpose = token(&app, LinkPurpose::Unsubscribe, "ada@example.org", ada);
    // Bob's address on Ada's subscription: signed, but not Ada's link.
    let other_address = token(&app, LinkPurpose::Confirm, "bob@example.org", ada);
    let unknown_subscription = token(
        &app,
        LinkPurpose::Confirm,
        "ada@example.org",
        Uuid::now_v7(),
    );
    let good = token(&app, LinkPurpose::Confirm, "ada@example.org", ada);
    let (payload, signature) = good.split_once('.').unwrap();
    let tampered = format!("{payload}x.{signature}");
    let acknowledge = app.links.issue(&LinkClaims::new(
        LinkPurpose::Acknowledge,
        "ada@example.org",
        LinkSubject::Revision {
            advisory_id: ada,
            revision: 1,
        },
        Utc::now(),
    ));
    let foreign_key = clearance::links::LinkTokens::new(
        b"some-other-service-link-secret-0123456789",
    )
    .issue(&LinkClaims::new(
        LinkPurpose::Confirm,
        "ada@example.org",
        LinkSubject::Subscription(ada),
        Utc::now(),
    ));

    for (name, bad) in [
        ("expired", expired.as_str()),
        ("wrong purpose", &wrong_purpose),
        ("other address", &other_address),
        ("unknown subscription", &unknown_subscription),
        ("tampered", &tampered),
        ("acknowledge", &acknowledge),
        ("foreign key", &foreign_key),
        ("garbage", "not-a-token"),
        ("empty", ""),
    ] {
        let refused = problem(confirm(&app, bad, None).await, 400).await;
        assert!(
            refused["detail"].as_str().unwrap().contains("link"),
            "{name}: {refused}"
        );
        let page = html_of(confirm(&app, bad, Some(BROWSER)).await, 400).await;
        assert!(page.contains("link"), "{name}: {page}");
    }
    let expired_problem = problem(confirm(&app, &expired, None).await, 400).await;
    assert!(
        expired_problem["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let no_token = open(&app, Method::GET, &format!("{SUBSCRIPTIONS}/confirm"), None).await;
    problem(no_token, 400).await;
    let unsubscribe_with_confirm_token = one_click(&app, &good).await;
    problem(unsubscribe_with_confirm_token, 400).await;
    let page = open(
        &app,
        Method::GET,
        &format!("/unsubscribe?token={tampered}"),
        None,
    )
    .await;
    html_of(page, 400).await;
    let page = open(&app, Method::GET, &format!("/manage?token={good}"), None).await;
    html_of(page, 400).await;

    assert_eq!(
        subscription(&app, "ada@example.org").1,
        "pending",
        "nothing confirmed"
    );
}

async fn browsers_get_pages_and_programs_get_json(app: TestApp) {
    accepted(&app, "ada@example.org", json!({})).await;
    let (id, _) = subscription(&app, "ada@example.org");
    let good = token(&app, LinkPurpose::Confirm, "ada@example.org", id);
    let page = html_of(confirm(&app, &good, Some(BROWSER)).await, 200).await;
    assert!(page.contains("Subscription confirmed"), "{page}");
    assert!(page.contains("name=\"viewport\""), "readable on a phone");
    assert!(
        !page.contains("<script") && !page.contains("http"),
        "no script, no external asset"
    );
    let json = confirm(&app, &good, Some("application/json")).await;
    assert_eq!(json.headers()["content-type"], "application/json");
    assert_eq!(body(json).await, json!({"state": "confirmed"}));
    let any = confirm(&app, &good, Some("*/*")).await;
    assert_eq!(
        body(any).await,
        json!({"state": "confirmed"}),
        "a tie goes to JSON"
    );
}

async fn the_unsubscribe_link_shows_a_form_and_changes_nothing(app: TestApp) {
    let id = confirmed(&app, "ada@example.org").await;
    let unsubscribe = token(&app, LinkPurpose::Unsubscribe, "ada@example.org", id);
    for accept in [Some(BROWSER), None] {
        let page = open(
            &app,
            Method::GET,
            &format!("/unsubscribe?token={unsubscribe}"),
            accept,
        )
        .await;
        let page = html_of(page, 200).await;
        assert!(page.contains("<form method=\"post\""), "{page}");
        assert!(
            page.contains(&format!("action=\"?token={unsubscribe}\"")),
            "{page}"
        );
        assert!(
            page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
            "{page}"
        );
        assert!(page.contains("ada@example.org"), "{page}");
    }
    assert_eq!(
        subscription(&app, "ada@example.org").1,
        "confirmed",
        "a GET changes nothing"
    );
    let head = open(
        &app,
        Method::HEAD,
        &format!("/unsubscribe?token={unsubscribe}"),
        None,
    )
    .await;
    assert!(head.status().as_u16() < 500);
    assert_eq!(subscription(&app, "ada@example.org").1, "confirmed");
}

async fn one_click_unsubscribes_and_twice_is_still_200(app: TestApp) {
    let id = confirmed(&app, "ada@example.org").await;
    let unsubscribe = token(&app, LinkPurpose::Unsubscribe, "ada@example.org", id);
    for _ in 0..2 {
        let response = one_click(&app, &unsubscribe).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body(response).await, json!({"state": "unsubscribed"}));
        assert_eq!(subscription(&app, "ada@example.org").1, "unsubscribed");
    }
    // The page's button: an empty body, from a browser.
    let from_page = app
        .request(
            Method::POST,
            &format!("/unsubscribe?token={unsubscribe}"),
            None,
        )
        .header("Accept", BROWSER)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    let page = html_of(from_page, 200).await;
    assert!(page.contains("Unsubscribed"), "{page}");
    let audit = body(
        app.get("/api/v1/audit?entity=subscription", Some(Role::Admin))
            .await,
    )
    .await;
    let unsubscribes = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["action"] == "subscription.unsubscribe")
        .count();
    assert_eq!(
        unsubscribes, 1,
        "repeating changes nothing, so records nothing"
    );

    // The page now says so, without a button.
    let page = open(
        &app,
        Method::GET,
        &format!("/unsubscribe?token={unsubscribe}"),
        None,
    )
    .await;
    let page = html_of(page, 200).await;
    assert!(
        page.contains("is unsubscribed") && !page.contains("<form"),
        "{page}"
    );

    // An old confirmation link does not revive it.
    let old_confirm = token(&app, LinkPurpose::Confirm, "ada@example.org", id);
    let refused = problem(confirm(&app, &old_confirm, None).await, 409).await;
    assert_eq!(refused["current_state"], "unsubscribed");
    assert_eq!(subscription(&app, "ada@example.org").1, "unsubscribed");
}

async fn the_manage_link_shows_the_subscription_and_how_to_end_it(app: TestApp) {
    let maker = app.manufacturer("Xiaomi <Global>").await;
    app.manufacturer("Apple").await;
    accepted(
        &app,
        "ada@example.org",
        json!({"manufacturer_ids": [maker], "categories": ["phone"], "min_severity": "medium"}),
    )
    .await;
    let (id, _) = subscription(&app, "ada@example.org");
    let manage = token(&app, LinkPurpose::Manage, "ada@example.org", id);
    let page = open(
        &app,
        Method::GET,
        &format!("/manage?token={manage}"),
        Some(BROWSER),
    )
    .await;
    let page = html_of(page, 200).await;
    for expected in [
        &format!("value=\"{maker}\" checked> Xiaomi &#60;Global&#62;"),
        "value=\"phone\" checked> Phones",
        "value=\"tablet\"> Tablets",
        "<option value=\"medium\" selected>Medium severity and above</option>",
        "value=\"immediate\" checked>",
        "waiting for you to confirm it",
        &format!("action=\"?token={manage}\""),
        "TLP:CLEAR",
    ] {
        assert!(page.contains(expected), "{expected}: {page}");
    }
    assert!(
        page.contains("> Apple</label>"),
        "every maker offered: {page}"
    );
    let link_start = page
        .find("/unsubscribe?token=")
        .expect("a link to unsubscribe");
    let link_token: String = page[link_start + "/unsubscribe?token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    let response = one_click(&app, &link_token).await;
    assert_eq!(response.status(), 200, "the page's link unsubscribes");
    assert_eq!(subscription(&app, "ada@example.org").1, "unsubscribed");
    let page = open(&app, Method::GET, &format!("/manage?token={manage}"), None).await;
    let page = html_of(page, 200).await;
    assert!(!page.contains("/unsubscribe?token="), "{page}");
    assert!(!page.contains("<form"), "nothing to change: {page}");
    assert!(page.contains("This subscription has ended"), "{page}");
}

/// Posts a form's fields to `path`, as a browser does.
async fn post_form(app: &TestApp, path: &str, fields: &str) -> Response {
    app.request(Method::POST, path, None)
        .header("Accept", BROWSER)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(fields.to_owned())
        .send()
        .await
        .expect("request sent")
}

/// The rows of one filter list of a subscription, sorted.
fn listed(app: &TestApp, table: &str, column: &str, id: Uuid) -> Vec<String> {
    let mut rows = app.query_texts(&format!(
        "SELECT CAST({column} AS TEXT) AS v FROM {table} WHERE CAST(subscription_id AS TEXT) = '{id}'"
    ));
    rows.sort();
    rows
}

async fn the_owner_changes_what_a_subscription_receives(app: TestApp) {
    let xiaomi = app.manufacturer("Xiaomi").await;
    let apple = app.manufacturer("Apple").await;
    let model = app.model(&xiaomi, "Redmi 1S", &[]).await;
    let model_id = model["id"].as_str().unwrap().to_owned();
    accepted(&app, "ada@example.org", json!({"model_ids": [model_id]})).await;
    let (id, _) = subscription(&app, "ada@example.org");
    let confirmation = token(&app, LinkPurpose::Confirm, "ada@example.org", id);
    assert_eq!(confirm(&app, &confirmation, None).await.status(), 200);
    let manage = token(&app, LinkPurpose::Manage, "ada@example.org", id);
    let path = format!("/manage?token={manage}");
    let page = html_of(open(&app, Method::GET, &path, Some(BROWSER)).await, 200).await;
    assert!(
        page.contains(&format!("name=\"model\" value=\"{model_id}\"")),
        "{page}"
    );
    assert!(
        page.contains("these models, as you asked: Redmi 1S"),
        "{page}"
    );

    let fields = format!(
        "delivery=daily&min_severity=high&category=phone&category=tablet&maker={apple}&maker={xiaomi}&model={model_id}"
    );
    let page = html_of(post_form(&app, &path, &fields).await, 200).await;
    assert!(page.contains("Saved: from now on you receive"), "{page}");
    assert!(page.contains("<option value=\"high\" selected>"), "{page}");
    assert_eq!(stored_filter(&app, id), "daily 3 000");
    let mut makers = vec![apple.clone(), xiaomi.clone()];
    makers.sort();
    assert_eq!(
        listed(&app, "subscription_manufacturers", "manufacturer_id", id),
        makers
    );
    assert_eq!(
        listed(&app, "subscription_categories", "category", id),
        ["phone", "tablet"]
    );
    assert_eq!(
        listed(&app, "subscription_models", "model_id", id),
        std::slice::from_ref(&model_id)
    );
    assert_eq!(
        subscription(&app, "ada@example.org").1,
        "confirmed",
        "still confirmed"
    );

    // A mistake keeps what was sent and changes nothing.
    let gone = Uuid::now_v7();
    let page = html_of(
        post_form(
            &app,
            &path,
            &format!("delivery=immediate&category=router&maker={gone}"),
        )
        .await,
        422,
    )
    .await;
    assert!(
        page.contains("A maker you chose is no longer in the register"),
        "{page}"
    );
    assert!(page.contains("value=\"router\" checked>"), "{page}");
    assert!(page.contains("value=\"immediate\" checked>"), "{page}");
    assert_eq!(stored_filter(&app, id), "daily 3 000");
    // Nothing ticked: everything again.
    html_of(
        post_form(&app, &path, "delivery=immediate&min_severity=none").await,
        200,
    )
    .await;
    assert_eq!(stored_filter(&app, id), "immediate 0 111");

    // Only the manage link may change it, and not once it has ended.
    let unsubscribe = token(&app, LinkPurpose::Unsubscribe, "ada@example.org", id);
    let refused = post_form(
        &app,
        &format!("/manage?token={unsubscribe}"),
        "delivery=daily",
    )
    .await;
    html_of(refused, 400).await;
    assert_eq!(one_click(&app, &unsubscribe).await.status(), 200);
    let ended = html_of(post_form(&app, &path, "delivery=daily").await, 409).await;
    assert!(ended.contains("subscribe again"), "{ended}");
    assert_eq!(stored_filter(&app, id), "immediate 0 111");
    let audit = body(
        app.get("/api/v1/audit?entity=subscription", Some(Role::Admin))
            .await,
    )
    .await;
    let changes = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["action"] == "subscription.change_filter")
        .count();
    assert_eq!(changes, 2);
}

async fn audit_rows_never_carry_the_address(app: TestApp) {
    let id = confirmed(&app, "Secret.Person@example.org").await;
    accepted(&app, "secret.person@example.org", json!({})).await;
    let response = one_click(
        &app,
        &token(
            &app,
            LinkPurpose::Unsubscribe,
            "secret.person@example.org",
            id,
        ),
    )
    .await;
    assert_eq!(response.status(), 200);
    let audit = body(
        app.get("/api/v1/audit?entity=subscription", Some(Role::Admin))
            .await,
    )
    .await;
    let rows = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "subscription.create",
            "subscription.confirm",
            "subscription.manage_link",
            "subscription.unsubscribe"
        ]
    );
    for row in rows {
        assert_eq!(row["actor"], "public");
        assert_eq!(row["entity_id"], id.to_string());
    }
    let text = audit.to_string().to_lowercase();
    assert!(!text.contains("secret.person"), "{text}");
    let verified = body(app.get("/api/v1/audit/verify", Some(Role::Admin)).await).await;
    assert_eq!(verified["ok"], true);
}

async fn subscribing_needs_a_token_when_public_lookup_is_off(app: TestApp) {
    let request = json!({"email": "ada@example.org"});
    problem(app.post(SUBSCRIPTIONS, None, &request).await, 401).await;
    assert_eq!(app.query_count("SELECT COUNT(*) FROM subscriptions"), 0);
    let response = app.post(SUBSCRIPTIONS, Some(Role::Reader), &request).await;
    assert_eq!(response.status(), 202);
    assert_eq!(app.outbox_count("confirm"), 1);
}

/// The form for people without an API client: the lookup page links to it,
/// it offers the API's filter, a mistake is explained in plain words with
/// everything kept, and a good address gets the confirmation mail.
async fn a_family_member_subscribes_from_the_form(app: TestApp) {
    let xiaomi = app.manufacturer("Xiaomi").await;
    let lookup = app.get("/lookup", None).await.text().await.unwrap();
    assert!(lookup.contains("href=\"/subscribe\""));
    let form = html_of(app.get("/subscribe", None).await, 200).await;
    for offered in [
        "<form method=\"post\" action=\"/subscribe\" novalidate>",
        "href=\"/static/pages.css\"",
        "name=\"delivery\" value=\"daily\"",
        "<option value=\"critical\">Critical only</option>",
        "name=\"category\" value=\"wearable\"",
        &format!("name=\"maker\" value=\"{xiaomi}\"> Xiaomi"),
    ] {
        assert!(form.contains(offered), "{offered}: {form}");
    }
    let filled = format!("delivery=daily&min_severity=high&category=phone&maker={xiaomi}");
    let typo = post_form(
        &app,
        "/subscribe",
        &format!("email=family%40example&{filled}"),
    )
    .await;
    let typo = html_of(typo, 422).await;
    for kept in [
        "“family@example” is not an email address. Enter an address like name@example.org.",
        "value=\"family@example\"",
        "value=\"daily\" checked>",
        "<option value=\"high\" selected>",
        "value=\"phone\" checked>",
        &format!("value=\"{xiaomi}\" checked>"),
    ] {
        assert!(typo.contains(kept), "{kept}: {typo}");
    }
    let missing = html_of(post_form(&app, "/subscribe", &filled).await, 422).await;
    assert!(
        missing.contains("Your email address is missing."),
        "{missing}"
    );
    assert_eq!(app.outbox_count("confirm"), 0);

    let done = post_form(
        &app,
        "/subscribe",
        &format!("email=family%40example.org&{filled}"),
    )
    .await;
    let done = html_of(done, 200).await;
    assert!(
        done.contains("we sent a message to <strong>family@example.org</strong>"),
        "{done}"
    );
    assert_eq!(app.outbox_count("confirm"), 1);
    let (id, state) = subscription(&app, "family@example.org");
    assert_eq!(state, "pending");
    assert_eq!(stored_filter(&app, id), "daily 3 010");
    assert_eq!(
        listed(&app, "subscription_manufacturers", "manufacturer_id", id),
        [xiaomi]
    );
    assert_eq!(
        listed(&app, "subscription_categories", "category", id),
        ["phone"]
    );
}

/// On a phone: a mistyped address is explained in plain words above the
/// form, and everything chosen is still chosen.
async fn a_phone_keeps_the_form_when_the_address_is_mistyped(app: TestApp) {
    let xiaomi = app.manufacturer("Xiaomi").await;
    let browser = Browser::start().await;
    browser.open(&app, "/subscribe").await;
    browser.fits_the_phone().await;
    browser.type_into("#email", "family@example").await;
    browser.press("input[name=delivery][value=daily]").await;
    browser.press("input[name=category][value=phone]").await;
    browser.press("details summary").await;
    browser
        .press(&format!("input[name=maker][value='{xiaomi}']"))
        .await;
    browser.press("button[type=submit]").await;
    browser.wait_for_element("[role=alert]").await;

    let alert = browser.text("[role=alert]").await;
    assert_eq!(
        alert,
        "“family@example” is not an email address. Enter an address like name@example.org."
    );
    let kept = browser
        .script(
            "return [document.querySelector('#email').value, \
             document.querySelector('input[name=delivery]:checked').value, \
             [...document.querySelectorAll('input[type=checkbox]:checked')].map(e => e.value)];",
        )
        .await;
    assert_eq!(kept, json!(["family@example", "daily", ["phone", xiaomi]]));
    browser.fits_the_phone().await;
    assert_eq!(app.outbox_count("confirm"), 0);
}
