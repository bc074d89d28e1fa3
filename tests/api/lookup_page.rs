//! The lookup page, `GET /lookup`: over plain HTTP (headers, the answer
//! without JavaScript, on both backends) and in a real headless Chromium
//! driven through chromedriver (typing, a phone-sized screen, escaping).

use clearance::auth::Role;
use fantoccini::Locator;

use crate::backend_tests;
use crate::browser::Browser;
use crate::helpers::{Backend, SpawnOptions, TestApp, page_parts};
use crate::workflow::{draft, prohibition, publish, redmi_with_evidence};

const IMEI: &str = "864521021234562";
const MISTYPED_IMEI: &str = "864521021234563";
const SCRIPT_NAME: &str = "<script>alert(1)</script>";
const POLICY: &str = "default-src 'none'; style-src 'self'; form-action 'self'; img-src 'self'";

/// The Redmi 1S under a published TLP:CLEAR prohibition; its reference.
async fn prohibited_redmi(app: &TestApp) -> String {
    let story = redmi_with_evidence(app).await;
    let id = draft(app, &prohibition(&story)).await;
    let published = publish(app, &id).await;
    published["reference"].as_str().unwrap().to_owned()
}

async fn page(app: &TestApp, query: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, String) {
    let response = app
        .client
        .get(format!("{}/lookup", app.address))
        .query(query)
        .send()
        .await
        .unwrap();
    page_parts(response).await
}

async fn answers_in_plain_words_without_javascript(app: TestApp) {
    let reference = prohibited_redmi(&app).await;

    let (status, headers, html) = page(&app, &[("q", IMEI)]).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers["content-security-policy"], POLICY);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for expected in [
        "<h2>Not allowed</h2>",
        "Xiaomi Redmi 1S",
        &reference,
        "Do not use Xiaomi Redmi 1S phones",
        "role=\"status\"",
        "<label for=\"q\">",
        "<label for=\"firmware\">",
        "href=\"/static/lookup.css\"",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    assert_eq!(html.matches("<h1").count(), 1, "{html}");

    let (status, _, html) = page(&app, &[("q", MISTYPED_IMEI)]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("The last digit doesn&#39;t match — check the number."),
        "{html}"
    );
    let (_, _, html) = page(&app, &[("q", "86452102123456")]).await;
    assert!(
        html.contains("An IMEI has 15 digits; this has 14"),
        "{html}"
    );
    let (status, _, html) = page(&app, &[("q", "490154203237518")]).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("No phone with this number is registered."),
        "{html}"
    );
    let (status, _, html) = page(&app, &[("q", "redmi 1s"), ("firmware", "six")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("software version"), "{html}");

    // The bare page is the form; the stylesheet is its only other resource.
    let (status, _, html) = page(&app, &[]).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("method=\"get\"") && !html.contains("class=\"verdict"),
        "{html}"
    );
    let css = app
        .client
        .get(format!("{}/static/lookup.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("overflow-wrap"));
}

async fn lists_every_model_an_ambiguous_name_matches(app: TestApp) {
    let xiaomi = app.manufacturer("Xiaomi").await;
    app.model(&xiaomi, "Redmi 1S", &["86452102"]).await;
    app.model(&xiaomi, "Redmi Note 3", &[]).await;
    let (status, _, html) = page(&app, &[("q", "redmi")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("2 models match “redmi”"), "{html}");
    assert_eq!(html.matches("<h2>Not assessed</h2>").count(), 2, "{html}");
    let (_, _, html) = page(&app, &[("q", "Nokia 3310")]).await;
    assert!(
        html.contains("No phone called “Nokia 3310” is registered"),
        "{html}"
    );
}

async fn escapes_a_model_name(app: TestApp) {
    let maker = app.manufacturer("Mallory & Sons").await;
    app.model(&maker, SCRIPT_NAME, &[]).await;
    let (_, _, html) = page(&app, &[("q", SCRIPT_NAME)]).await;
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("Mallory &#38; Sons &#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
}

backend_tests!(
    answers_in_plain_words_without_javascript,
    lists_every_model_an_ambiguous_name_matches,
    escapes_a_model_name,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_for_a_sign_in_when_lookup_is_not_public() {
    let options = SpawnOptions {
        public_lookup: false,
        ..SpawnOptions::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;
    let (status, headers, html) = page(&app, &[("q", IMEI)]).await;
    assert_eq!(status, 401);
    assert_eq!(headers["content-security-policy"], POLICY);
    assert!(html.contains("needs a sign-in"), "{html}");
    let reader = app.request(reqwest::Method::GET, "/lookup?q=redmi", Some(Role::Reader));
    assert_eq!(reader.send().await.unwrap().status(), 200);
}

impl Browser {
    /// Opens the page, types `q` into the box and submits the form.
    async fn ask(&self, app: &TestApp, q: &str) {
        self.client
            .goto(&format!("{}/lookup", app.address))
            .await
            .unwrap();
        let input = self.client.find(Locator::Css("#q")).await.unwrap();
        input.send_keys(q).await.unwrap();
        self.client
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.client
            .wait()
            .for_url(&url_with_query(app, q))
            .await
            .unwrap();
    }

    async fn status_text(&self) -> String {
        self.text("[role=status]").await
    }
}

/// The URL the form submits `q` (and an empty firmware) to.
fn url_with_query(app: &TestApp, q: &str) -> url::Url {
    let mut url = url::Url::parse(&format!("{}/lookup", app.address)).unwrap();
    url.query_pairs_mut()
        .append_pair("q", q)
        .append_pair("firmware", "");
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_browser_reads_not_allowed_for_a_prohibited_imei() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let reference = prohibited_redmi(&app).await;
    let browser = Browser::start().await;

    browser.ask(&app, IMEI).await;
    let answer = browser.status_text().await;
    assert!(answer.contains("Not allowed"), "{answer}");
    assert!(answer.contains(&reference), "{answer}");
    assert!(answer.contains("Xiaomi Redmi 1S"), "{answer}");
    // The phone's screen: 360 px, and nothing wider than it.
    browser.assert_fits_the_phone().await;
    // The stylesheet loaded under the policy (its colour is on the heading).
    let colour = browser
        .script("return getComputedStyle(document.querySelector('.verdict h2')).color;")
        .await;
    assert_eq!(colour, "rgb(138, 28, 20)");
    let png = browser.client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    // `CLEARANCE_LOOKUP_SCREENSHOT=docs/lookup-phone.png` refreshes the
    // README's picture.
    if let Ok(path) = std::env::var("CLEARANCE_LOOKUP_SCREENSHOT") {
        std::fs::write(&path, &png).unwrap();
    }

    browser.ask(&app, MISTYPED_IMEI).await;
    let answer = browser.status_text().await;
    assert!(
        answer.contains("The last digit doesn't match — check the number."),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shows_a_script_in_a_model_name_as_text() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let maker = app.manufacturer("Mallory").await;
    app.model(&maker, SCRIPT_NAME, &[]).await;
    let browser = Browser::start().await;

    browser.ask(&app, SCRIPT_NAME).await;
    let answer = browser.status_text().await;
    assert!(
        answer.contains(&format!("Mallory {SCRIPT_NAME}")),
        "{answer}"
    );
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no alert opened"
    );
    assert_eq!(browser.script("return document.scripts.length;").await, 0);
}
