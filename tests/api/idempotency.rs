//! `Idempotency-Key` on creating requests: a retry replays the first answer
//! instead of creating twice.

use chrono::{SecondsFormat, Utc};
use clearance::api::idempotency::fingerprint;
use clearance::auth::Role;
use reqwest::{Method, Response};
use serde_json::json;

use crate::helpers::{TestApp, body, problem};

crate::backend_tests!(
    the_same_key_and_body_replay_the_first_answer,
    the_same_json_with_keys_in_another_order_is_the_same_request,
    the_same_key_with_another_request_is_a_422_and_creates_nothing,
    keys_belong_to_their_caller,
    a_refusal_is_replayed_as_it_was,
    without_a_key_every_request_runs,
    creating_a_model_is_idempotent_too,
    concurrent_retries_create_once,
    a_malformed_key_is_a_400,
    requests_without_a_valid_token_leave_no_trace,
    a_key_in_use_is_a_409_until_its_claim_is_abandoned,
    an_expired_key_is_forgotten,
    an_oversized_body_is_a_413,
    evidence_advisories_reviews_and_responses_are_created_once,
);

const MANUFACTURERS: &str = "/api/v1/manufacturers";
const XIAOMI: &str = r#"{"name": "Xiaomi", "country": "CN", "aliases": ["小米"]}"#;

/// POSTs raw JSON text (so that its key order is exactly as written) with
/// a key, as `token`'s caller.
async fn post_with_key(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    key: &str,
    json_text: &str,
) -> Response {
    let mut request = app
        .request(Method::POST, path, None)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(json_text.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

async fn as_analyst(app: &TestApp, path: &str, key: &str, json_text: &str) -> Response {
    post_with_key(app, path, Some(&app.token(Role::Analyst)), key, json_text).await
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// SQL text for a time `seconds_ago`, in the format both backends read.
fn sql_time(seconds_ago: i64) -> String {
    (Utc::now() - chrono::Duration::seconds(seconds_ago))
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn the_same_key_and_body_replay_the_first_answer(app: TestApp) {
    let first = as_analyst(&app, MANUFACTURERS, "key-1", XIAOMI).await;
    assert_eq!(first.status(), 201);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    let (location, etag, content_type) = (
        header(&first, "location"),
        header(&first, "etag"),
        header(&first, "content-type"),
    );
    let created = body(first).await;

    let second = as_analyst(&app, MANUFACTURERS, "key-1", XIAOMI).await;
    assert_eq!(second.status(), 201);
    assert_eq!(
        header(&second, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header(&second, "location"), location);
    assert_eq!(header(&second, "etag"), etag);
    assert_eq!(header(&second, "content-type"), content_type);
    assert_eq!(body(second).await, created);
    assert_eq!(app.count(MANUFACTURERS).await, 1);
}

async fn the_same_json_with_keys_in_another_order_is_the_same_request(app: TestApp) {
    let first = as_analyst(&app, MANUFACTURERS, "key-1", XIAOMI).await;
    assert_eq!(first.status(), 201);
    let created = body(first).await;
    let reordered = "{\"aliases\":[\"小米\"],\n  \"country\":\"CN\", \"name\":\"Xiaomi\"}";
    let second = as_analyst(&app, MANUFACTURERS, "key-1", reordered).await;
    assert_eq!(second.status(), 201);
    assert_eq!(
        header(&second, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(body(second).await, created);
    assert_eq!(app.count(MANUFACTURERS).await, 1);
}

async fn the_same_key_with_another_request_is_a_422_and_creates_nothing(app: TestApp) {
    assert_eq!(
        as_analyst(&app, MANUFACTURERS, "key-1", XIAOMI)
            .await
            .status(),
        201
    );
    let other_body = r#"{"name": "Apple", "country": "US"}"#;
    let refused = as_analyst(&app, MANUFACTURERS, "key-1", other_body).await;
    let p = problem(refused, 422).await;
    assert!(
        p["detail"].as_str().unwrap().contains("different request"),
        "{p}"
    );
    let other_path = as_analyst(&app, "/api/v1/models", "key-1", XIAOMI).await;
    problem(other_path, 422).await;
    assert_eq!(app.count(MANUFACTURERS).await, 1);
    assert_eq!(app.count("/api/v1/models").await, 0);
}

async fn keys_belong_to_their_caller(app: TestApp) {
    let mine = as_analyst(&app, MANUFACTURERS, "shared-key", XIAOMI).await;
    assert_eq!(mine.status(), 201);
    // Another body under the same key is no mismatch for another caller…
    let someone_else = app.token_for(Role::Analyst, "someone-else");
    let apple = r#"{"name": "Apple", "country": "US"}"#;
    let theirs = post_with_key(
        &app,
        MANUFACTURERS,
        Some(&someone_else),
        "shared-key",
        apple,
    )
    .await;
    assert_eq!(theirs.status(), 201);
    assert_eq!(header(&theirs, "idempotent-replayed"), None);
    // …and the same key and body from a third caller is not my replay: it
    // runs, and meets the manufacturer my call created.
    let third = app.token_for(Role::Analyst, "a-third");
    let same = post_with_key(&app, MANUFACTURERS, Some(&third), "shared-key", XIAOMI).await;
    assert_eq!(header(&same, "idempotent-replayed"), None);
    problem(same, 409).await;
    assert_eq!(app.count(MANUFACTURERS).await, 2);
}

async fn a_refusal_is_replayed_as_it_was(app: TestApp) {
    app.manufacturer("Xiaomi").await;
    let conflict = as_analyst(&app, MANUFACTURERS, "dup", XIAOMI).await;
    let first = problem(conflict, 409).await;
    let again = as_analyst(&app, MANUFACTURERS, "dup", XIAOMI).await;
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(problem(again, 409).await, first);

    let invalid = r#"{"name": "Acme", "country": "Atlantis"}"#;
    let first = problem(as_analyst(&app, MANUFACTURERS, "bad", invalid).await, 422).await;
    assert_eq!(first["errors"][0]["field"], "country");
    let again = as_analyst(&app, MANUFACTURERS, "bad", invalid).await;
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(problem(again, 422).await, first);
    assert_eq!(app.count(MANUFACTURERS).await, 1);
}

async fn without_a_key_every_request_runs(app: TestApp) {
    let manufacturer = json!({"name": "Xiaomi", "country": "CN"});
    let first = app
        .post(MANUFACTURERS, Some(Role::Analyst), &manufacturer)
        .await;
    assert_eq!(first.status(), 201);
    let second = app
        .post(MANUFACTURERS, Some(Role::Analyst), &manufacturer)
        .await;
    assert_eq!(header(&second, "idempotent-replayed"), None);
    problem(second, 409).await;
}

async fn creating_a_model_is_idempotent_too(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = format!(
        r#"{{"manufacturer_id": "{maker}", "name": "Redmi 1S", "category": "phone", "tacs": ["86452102"]}}"#
    );
    let first = as_analyst(&app, "/api/v1/models", "model-key", &model).await;
    assert_eq!(first.status(), 201);
    let location = header(&first, "location");
    let created = body(first).await;
    let second = as_analyst(&app, "/api/v1/models", "model-key", &model).await;
    assert_eq!(second.status(), 201);
    assert_eq!(
        header(&second, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header(&second, "location"), location);
    assert_eq!(body(second).await["id"], created["id"]);
    assert_eq!(app.count("/api/v1/models").await, 1);
}

async fn concurrent_retries_create_once(app: TestApp) {
    let attempts = (0..6).map(|_| as_analyst(&app, MANUFACTURERS, "racing", XIAOMI));
    let mut originals = 0;
    for response in futures_util::future::join_all(attempts).await {
        match response.status().as_u16() {
            201 if header(&response, "idempotent-replayed").is_none() => originals += 1,
            201 => {}
            409 => {
                let p = problem(response, 409).await;
                assert_eq!(
                    p["detail"],
                    "a request with this key is still being processed"
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(originals, 1, "exactly one attempt ran");
    assert_eq!(app.count(MANUFACTURERS).await, 1);
}

async fn a_malformed_key_is_a_400(app: TestApp) {
    for key in ["with space".to_owned(), "k".repeat(256)] {
        let response = as_analyst(&app, MANUFACTURERS, &key, XIAOMI).await;
        problem(response, 400).await;
    }
    assert_eq!(app.count(MANUFACTURERS).await, 0);
}

async fn requests_without_a_valid_token_leave_no_trace(app: TestApp) {
    // Who is asking comes first, even before a malformed key.
    problem(
        post_with_key(&app, MANUFACTURERS, None, "not a key", XIAOMI).await,
        401,
    )
    .await;
    problem(
        post_with_key(&app, MANUFACTURERS, None, "key-1", XIAOMI).await,
        401,
    )
    .await;
    problem(
        post_with_key(&app, MANUFACTURERS, Some("not-a-jwt"), "key-1", XIAOMI).await,
        401,
    )
    .await;
    let response = as_analyst(&app, MANUFACTURERS, "key-1", XIAOMI).await;
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "idempotent-replayed"), None);
}

async fn a_key_in_use_is_a_409_until_its_claim_is_abandoned(app: TestApp) {
    // A claim as a request in flight (or one whose process died) leaves it.
    let claim = |seconds_ago: i64| {
        format!(
            "INSERT INTO idempotency_keys (principal, key, fingerprint, created_at) \
             VALUES ('analyst-1', 'busy', '{}', '{}')",
            fingerprint("POST", MANUFACTURERS, XIAOMI.as_bytes()),
            sql_time(seconds_ago),
        )
    };
    app.execute_sql(&claim(1)).unwrap();
    let busy = as_analyst(&app, MANUFACTURERS, "busy", XIAOMI).await;
    let p = problem(busy, 409).await;
    assert_eq!(
        p["detail"],
        "a request with this key is still being processed"
    );
    assert_eq!(app.count(MANUFACTURERS).await, 0);

    app.execute_sql("DELETE FROM idempotency_keys").unwrap();
    app.execute_sql(&claim(120)).unwrap();
    let taken_over = as_analyst(&app, MANUFACTURERS, "busy", XIAOMI).await;
    assert_eq!(taken_over.status(), 201);
    let replayed = as_analyst(&app, MANUFACTURERS, "busy", XIAOMI).await;
    assert_eq!(
        header(&replayed, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(app.count(MANUFACTURERS).await, 1);
}

async fn an_expired_key_is_forgotten(app: TestApp) {
    let day_and_a_bit = 25 * 3600;
    app.execute_sql(&format!(
        "INSERT INTO idempotency_keys (principal, key, fingerprint, status, created_at) \
         VALUES ('analyst-1', 'old', 'another request', 201, '{}')",
        sql_time(day_and_a_bit),
    ))
    .unwrap();
    let response = as_analyst(&app, MANUFACTURERS, "old", XIAOMI).await;
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "idempotent-replayed"), None);
}

async fn an_oversized_body_is_a_413(app: TestApp) {
    let huge = format!(
        r#"{{"name": "Xiaomi", "country": "CN", "aliases": ["{}"]}}"#,
        "x".repeat(300 * 1024)
    );
    problem(as_analyst(&app, MANUFACTURERS, "big", &huge).await, 413).await;
    // Nothing was claimed: a fitting body under that key runs.
    assert_eq!(
        as_analyst(&app, MANUFACTURERS, "big", XIAOMI)
            .await
            .status(),
        201
    );
}

/// Every other creating POST: a retry with the same key creates nothing new
/// and answers the first response.
async fn evidence_advisories_reviews_and_responses_are_created_once(app: TestApp) {
    let story = crate::workflow::redmi_with_evidence(&app).await;
    let advisory = crate::workflow::prohibition(&story).to_string();
    let review = json!({"model_id": story.model_id, "reason": "independent tests",
                        "due_at": "2030-01-01T00:00:00Z"})
    .to_string();
    let response = json!({"kind": "vendor_response", "author": "Xiaomi",
                          "received_at": "2014-08-10T00:00:00Z", "text": "Fixed."})
    .to_string();
    let responses = format!("/api/v1/evidence/{}/responses", story.evidence_id);
    for (path, json_text) in [
        ("/api/v1/advisories", advisory.as_str()),
        ("/api/v1/reviews", review.as_str()),
        (responses.as_str(), response.as_str()),
    ] {
        let first = as_analyst(&app, path, &format!("key-{}", path.len()), json_text).await;
        assert_eq!(first.status(), 201, "{path}");
        let first = body(first).await;
        let again = as_analyst(&app, path, &format!("key-{}", path.len()), json_text).await;
        assert_eq!(again.status(), 201, "{path}");
        assert_eq!(
            header(&again, "idempotent-replayed").as_deref(),
            Some("true")
        );
        assert_eq!(body(again).await, first, "{path}");
    }
    assert_eq!(
        app.count("/api/v1/advisories").await,
        0,
        "readers see no drafts"
    );
    let drafts = body(
        app.get("/api/v1/advisories?state=draft", Some(Role::Analyst))
            .await,
    )
    .await;
    assert_eq!(drafts["items"].as_array().unwrap().len(), 1);
    let reviews = body(app.get("/api/v1/reviews", Some(Role::Reader)).await).await;
    assert_eq!(reviews["items"].as_array().unwrap().len(), 1);
    let evidence = body(
        app.get(
            &format!("/api/v1/evidence/{}", story.evidence_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(evidence["responses"].as_array().unwrap().len(), 1);
}
