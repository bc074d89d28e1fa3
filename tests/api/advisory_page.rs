//! The advisory page, `GET /advisories/{reference}`, over plain HTTP on both
//! backends: what it shows of a TLP:CLEAR advisory, how little of a
//! restricted one, how a withdrawal and a supersession read, its headers,
//! and the page for a reference nobody published. The links that lead
//! here (lookup answers, the lookup page) too.

use clearance::auth::Role;
use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::browser::Browser;
use crate::helpers::{Backend, PAGE_POLICY, TestApp, body, page};
use crate::workflow::{Story, draft, prohibition, publish, redmi_with_evidence, withdraw};

pub const MARKDOWN_BODY: &str = "## What the lab found\n\n\
    The phone sends **personal data** abroad: see [the report](https://example.org/report).\n\n\
    <script>alert('body')</script>\n\n\
    - contacts\n- text messages\n\n\
    A [trap](javascript:alert(1)).";

/// Every Xiaomi phone prohibited, the Redmi 1S allowed from firmware 6.3.1:
/// a maker-wide decision and a firmware split in one TLP:CLEAR advisory.
pub fn maker_wide_with_a_split(story: &Story, maker_id: &str) -> Value {
    json!({
        "title": "Xiaomi phones: refrain, except an updated Redmi 1S",
        "summary": "Officers and their families are to refrain from using Xiaomi phones.",
        "body": MARKDOWN_BODY,
        "severity": "high",
        "tlp": "clear",
        "decisions": [
            {"manufacturer_id": maker_id, "category": "phone", "decision": "prohibited"},
            {"model_id": story.model_id, "decision": "prohibited", "firmware": "<6.3.1"},
            {"model_id": story.model_id, "decision": "approved", "firmware": ">=6.3.1"},
        ],
        "evidence_ids": [story.evidence_id],
    })
}

/// The id of the one manufacturer registered so far.
pub async fn only_maker(app: &TestApp) -> String {
    let makers = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await;
    makers["items"][0]["id"].as_str().unwrap().to_owned()
}

/// Publishes `advisory`; its reference.
pub async fn published(app: &TestApp, advisory: &Value) -> String {
    let answer = publish(app, &draft(app, advisory).await).await;
    answer["reference"].as_str().unwrap().to_owned()
}

async fn a_clear_advisory_is_shown_in_full_and_in_words(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let maker = only_maker(&app).await;
    let reference = published(&app, &maker_wide_with_a_split(&story, &maker)).await;

    let (status, headers, html) = page(&app, &format!("/advisories/{reference}"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers["content-security-policy"], PAGE_POLICY);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for expected in [
        "<h1>Xiaomi phones: refrain, except an updated Redmi 1S</h1>",
        &format!("<dd>{reference}</dd>"),
        "<dd>In force</dd>",
        "<dd>high</dd>",
        "Officers and their families are to refrain from using Xiaomi phones.",
        // The decisions, per maker and model, in words.
        "<h3>All Xiaomi phones</h3>",
        "<li>Not allowed</li>",
        "<h3>Xiaomi Redmi 1S</h3>",
        "<li>Not allowed before 6.3.1</li>",
        "<li>Allowed from 6.3.1</li>",
        // What to do, said once per target and never both ways.
        "All Xiaomi phones: Not allowed. Do not use one.",
        "Xiaomi Redmi 1S: Allowed from 6.3.1 — Versions before 6.3.1 are not allowed.",
        // The Markdown body, rendered and sanitised.
        "<h2>What the lab found</h2>",
        "<strong>personal data</strong>",
        "<a href=\"https://example.org/report\" rel=\"noopener noreferrer\">the report</a>",
        // Evidence, history, references.
        "F-Secure Labs",
        "https://www.f-secure.com/weblog/archives/00002731.html",
        "Initial publication.",
        "/.well-known/csaf/clear/",
        "href=\"/lookup\"",
        "href=\"/static/pages.css\"",
        "Questions? Ask your security office.",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    for absent in ["<script", "alert(", "javascript:", "style=", "**", "##"] {
        assert!(!html.contains(absent), "{absent}: {html}");
    }
    assert_eq!(html.matches("<h1").count(), 1, "{html}");

    // A link may spell the reference in lower case; HEAD answers too.
    let (status, _, lower) = page(
        &app,
        &format!("/advisories/{}", reference.to_lowercase()),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(lower.contains("<h3>All Xiaomi phones</h3>"));
    let head = app
        .request(Method::HEAD, &format!("/advisories/{reference}"), None)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-security-policy"], PAGE_POLICY);
    assert!(head.bytes().await.unwrap().is_empty());

    // Lookup answers link here: the API's `page`, the page's link.
    let answer = body(app.get("/api/v1/lookup?q=redmi%201s", None).await).await;
    let deciding = &answer["matches"][0]["clearance"]["by_firmware"][0]["advisories"][0];
    assert_eq!(deciding["reference"], reference.as_str());
    let url = deciding["page"].as_str().unwrap();
    assert!(url.ends_with(&format!("/advisories/{reference}")), "{url}");
    let (_, _, lookup) = page(&app, "/lookup", &[("q", "redmi 1s")]).await;
    assert!(
        lookup.contains(&format!(
            "<a href=\"{url}\"><strong>{reference}</strong></a>"
        )),
        "{lookup}"
    );
}

async fn a_restricted_advisory_shows_only_its_reference(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let mut amber = prohibition(&story);
    amber["title"] = json!("MARKERAMBER title");
    amber["summary"] = json!("MARKERAMBER summary");
    amber["body"] = json!("MARKERAMBER body");
    amber["tlp"] = json!("amber");
    let reference = published(&app, &amber).await;

    let (status, headers, html) = page(&app, &format!("/advisories/{reference}"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-security-policy"], PAGE_POLICY);
    assert!(html.contains("<h1>Restricted advisory</h1>"), "{html}");
    assert!(
        html.contains(&format!(
            "{reference} is a restricted advisory — ask your security office."
        )),
        "{html}"
    );
    for absent in ["MARKERAMBER", "Redmi", "Not allowed", "F-Secure", "csaf"] {
        assert!(!html.contains(absent), "{absent}: {html}");
    }
    // Someone of the organisation, signed in, reads it.
    let signed_in = app
        .request(
            Method::GET,
            &format!("/advisories/{reference}"),
            Some(Role::Reader),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let html = signed_in.text().await.unwrap();
    assert!(html.contains("<h1>MARKERAMBER title</h1>"), "{html}");
    assert!(html.contains("<dd>TLP:AMBER</dd>"), "{html}");
}

/// Published today, effective in two days: the page does not call it in
/// force before then, and says from when it must be followed.
async fn a_decision_still_to_come_says_from_when(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let mut later = prohibition(&story);
    let effective = app.clock.now() + chrono::Duration::days(2);
    later["effective_at"] = json!(effective.to_rfc3339());
    let id = draft(&app, &later).await;
    let reference = publish(&app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/advisories/{reference}");
    let day = effective.format("%-d %B %Y").to_string();
    let (_, _, html) = page(&app, &path, &[]).await;
    assert!(
        html.contains(&format!("<dd>Takes effect on {day}</dd>")),
        "{html}"
    );
    assert!(
        html.contains(&format!("What you must do from {day}:")),
        "{html}"
    );
    assert!(!html.contains("In force"), "{html}");

    app.clock.advance(chrono::Duration::days(2));
    let (_, _, html) = page(&app, &path, &[]).await;
    assert!(html.contains("<dd>In force</dd>"), "{html}");
    assert!(html.contains("What you must do:"), "{html}");
}

async fn withdrawn_and_superseded_advisories_say_so(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let first = draft(&app, &prohibition(&story)).await;
    let withdrawn = publish(&app, &first).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    withdraw(&app, &first, "The lab retested an update.").await;
    let (status, _, html) = page(&app, &format!("/advisories/{withdrawn}"), &[]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Withdrawn on "), "{html}");
    assert!(
        html.contains("its decisions no longer apply. Why: The lab retested an update."),
        "{html}"
    );
    assert!(html.contains("<dd>No longer in force</dd>"), "{html}");
    assert!(html.contains("What it decided"), "{html}");
    assert!(!html.contains("What you must do"), "{html}");
    assert!(
        html.contains("Withdrawn: The lab retested an update."),
        "the history: {html}"
    );

    let old = draft(&app, &prohibition(&story)).await;
    let old_reference = publish(&app, &old).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut replacement = prohibition(&story);
    replacement["title"] = json!("Redmi 1S: allowed from firmware 6.3.1");
    replacement["decisions"] = json!([
        {"model_id": story.model_id, "decision": "prohibited", "firmware": "<6.3.1"},
        {"model_id": story.model_id, "decision": "approved", "firmware": ">=6.3.1"},
    ]);
    replacement["supersedes"] = json!([old]);
    let successor = published(&app, &replacement).await;
    let (status, _, html) = page(&app, &format!("/advisories/{old_reference}"), &[]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Superseded on "), "{html}");
    assert!(
        html.contains(&format!("/advisories/{successor}\">{successor}</a>")),
        "a link to the successor: {html}"
    );
}

async fn an_unknown_reference_is_a_page_saying_so(app: TestApp) {
    for path in [
        "/advisories/CLR-2099-9999",
        "/advisories/nonsense",
        "/advisories/%3Cscript%3E",
    ] {
        let (status, headers, html) = page(&app, path, &[]).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert_eq!(headers["content-security-policy"], PAGE_POLICY);
        assert!(html.contains("<h1>No such advisory</h1>"), "{path}: {html}");
        assert!(!html.contains("<script>"), "{path}: {html}");
    }
    // Even a program asking for JSON gets the page: this is a page's URL.
    let json = app
        .request(Method::GET, "/advisories/CLR-2099-9999", None)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 404);
    assert!(
        json.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

backend_tests!(
    a_clear_advisory_is_shown_in_full_and_in_words,
    a_restricted_advisory_shows_only_its_reference,
    withdrawn_and_superseded_advisories_say_so,
    an_unknown_reference_is_a_page_saying_so,
);

/// Starts its own app, on a clock the test moves.
mod effective_dates {
    use super::*;
    use crate::helpers::SpawnOptions;
    use chrono::SubsecRound;
    use clearance::clock::Clock;
    backend_tests!(with SpawnOptions {
        clock: Clock::stopped_at(chrono::Utc::now().trunc_subsecs(0)),
        ..SpawnOptions::default()
    } => a_decision_still_to_come_says_from_when);
}

/// The three pages as a phone's browser shows them: a TLP:CLEAR advisory
/// (decisions in words, the Markdown rendered), an AMBER one seen without
/// signing in, and a superseded one whose successor is a tap away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_browser_reads_advisory_pages() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let story = redmi_with_evidence(&app).await;
    let maker = only_maker(&app).await;
    let clear_id = draft(&app, &maker_wide_with_a_split(&story, &maker)).await;
    let clear = publish(&app, &clear_id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut amber = prohibition(&story);
    amber["title"] = json!("MARKERAMBER title");
    amber["tlp"] = json!("amber");
    let amber = published(&app, &amber).await;
    let browser = Browser::start().await;

    browser.open(&app, &format!("/advisories/{clear}")).await;
    let shown = browser.text("main").await;
    for expected in [
        "All Xiaomi phones",
        "Not allowed before 6.3.1",
        "Allowed from 6.3.1",
        "What you must do",
        "What the lab found",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    assert!(!shown.contains("**") && !shown.contains("##"), "{shown}");
    let bold = browser
        .script("return document.querySelector('.body strong').textContent;")
        .await;
    assert_eq!(bold, "personal data", "the Markdown is rendered");
    assert_eq!(browser.script("return document.scripts.length;").await, 0);
    assert!(browser.client.get_alert_text().await.is_err(), "no alert");
    browser.fits_the_phone().await;
    // The stylesheet loaded under the policy (its colour marks a decision).
    let colour = browser
        .script("return getComputedStyle(document.querySelector('.decision')).borderLeftColor;")
        .await;
    assert_eq!(colour, "rgb(91, 101, 112)");

    // Superseded: it says so, and its successor is one tap away.
    let mut replacement = prohibition(&story);
    replacement["title"] = json!("Redmi 1S: the national agency's decision");
    replacement["supersedes"] = json!([clear_id]);
    let successor = published(&app, &replacement).await;
    browser.open(&app, &format!("/advisories/{clear}")).await;
    let notice = browser.text(".ended").await;
    assert!(notice.contains("Superseded on"), "{notice}");
    browser
        .client
        .find(Locator::LinkText(&successor))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let reached = format!("{}/advisories/{successor}", app.address);
    browser
        .client
        .wait()
        .for_url(&url::Url::parse(&reached).unwrap())
        .await
        .unwrap();
    let shown = browser.text("h1").await;
    assert_eq!(shown, "Redmi 1S: the national agency's decision");
    browser.fits_the_phone().await;

    browser.open(&app, &format!("/advisories/{amber}")).await;
    let shown = browser.text("main").await;
    assert!(
        shown.contains(&format!(
            "{amber} is a restricted advisory — ask your security office."
        )),
        "{shown}"
    );
    assert!(
        !shown.contains("MARKERAMBER") && !shown.contains("Redmi"),
        "{shown}"
    );
    browser.fits_the_phone().await;
}

/// A withdrawn advisory, in the browser: the notice comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_browser_sees_a_withdrawal_first() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let reference = publish(&app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    withdraw(&app, &id, "The lab retested an update.").await;
    let browser = Browser::start().await;
    browser
        .open(&app, &format!("/advisories/{reference}"))
        .await;
    let first = browser
        .script("return document.querySelector('h1').nextElementSibling.textContent;")
        .await;
    let first = first.as_str().unwrap();
    assert!(first.starts_with("Withdrawn on"), "{first}");
    assert!(first.contains("The lab retested an update."), "{first}");
    let shown = browser.text("main").await;
    assert!(!shown.contains("What you must do"), "{shown}");
    browser.fits_the_phone().await;
}
