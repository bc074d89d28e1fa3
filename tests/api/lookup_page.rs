//! The lookup page, `GET /lookup`: over plain HTTP (headers, the answer
//! without JavaScript, on both backends) and in a real headless Chromium
//! on a phone-sized screen ([`Browser`]: typing, escaping, the answers
//! people meet).

use clearance::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::browser::Browser;
use crate::helpers::{Backend, PAGE_POLICY, SpawnOptions, TestApp, body, page};
use crate::workflow::{
    Story, draft, every_phone_of, evidence, prohibition, publish, redmi_with_evidence,
};

const IMEI: &str = "864521021234562";
const MISTYPED_IMEI: &str = "864521021234563";
const SCRIPT_NAME: &str = "<script>alert(1)</script>";

/// The Redmi 1S under a published TLP:CLEAR prohibition; its reference.
async fn prohibited_redmi(app: &TestApp) -> String {
    let story = redmi_with_evidence(app).await;
    let id = draft(app, &prohibition(&story)).await;
    let published = publish(app, &id).await;
    published["reference"].as_str().unwrap().to_owned()
}

async fn answers_in_plain_words_without_javascript(app: TestApp) {
    let reference = prohibited_redmi(&app).await;

    let (status, headers, html) = page(&app, "/lookup", &[("q", IMEI)]).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers["content-security-policy"], PAGE_POLICY);
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
        "href=\"/static/pages.css\"",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    assert_eq!(html.matches("<h1").count(), 1, "{html}");

    // Thirteen digits are no name: the page says what an IMEI has.
    let (status, _, html) = page(&app, "/lookup", &[("q", &IMEI[..13])]).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("an IMEI has 15 digits; this has 13"),
        "{html}"
    );

    let (status, _, html) = page(&app, "/lookup", &[("q", MISTYPED_IMEI)]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("The last digit doesn&#39;t match — check the number."),
        "{html}"
    );
    let (_, _, html) = page(&app, "/lookup", &[("q", "86452102123456")]).await;
    assert!(
        html.contains("An IMEI has 15 digits; this has 14"),
        "{html}"
    );
    let (status, _, html) = page(&app, "/lookup", &[("q", "490154203237518")]).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(
            "This phone is not in the register — it has not been assessed. \
             Ask your security office before you use it."
        ),
        "{html}"
    );
    let (status, _, html) = page(&app, "/lookup", &[("q", "redmi 1s"), ("firmware", "six")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("software version"), "{html}");

    // The bare page is the form; the stylesheet is its only other resource.
    let (status, _, html) = page(&app, "/lookup", &[]).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("method=\"get\"") && !html.contains("class=\"verdict"),
        "{html}"
    );
    let css = app
        .client
        .get(format!("{}/static/pages.css", app.address))
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
    let (status, _, html) = page(&app, "/lookup", &[("q", "redmi")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("2 models match “redmi”"), "{html}");
    assert_eq!(html.matches("<h2>Not assessed</h2>").count(), 2, "{html}");
    let (_, _, html) = page(&app, "/lookup", &[("q", "Nokia 3310")]).await;
    assert!(
        html.contains("No phone called “Nokia 3310” is registered"),
        "{html}"
    );
}

async fn escapes_a_model_name(app: TestApp) {
    let maker = app.manufacturer("Mallory & Sons").await;
    app.model(&maker, SCRIPT_NAME, &[]).await;
    let (_, _, html) = page(&app, "/lookup", &[("q", SCRIPT_NAME)]).await;
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("Mallory &#38; Sons &#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
}

/// A model named after its maker reads as people say it ("Fairphone 2",
/// never "Fairphone Fairphone 2"): on the lookup page, on the advisory
/// page and in the CSAF document.
async fn a_model_named_after_its_maker_is_not_named_twice(app: TestApp) {
    let maker = app.manufacturer("Fairphone").await;
    let model = app.model(&maker, "Fairphone 2", &["35123406"]).await;
    let model_id = model["id"].as_str().unwrap().to_owned();
    let evidence_id = evidence(&app, &[&model_id]).await;
    let mut advisory = prohibition(&Story {
        model_id,
        evidence_id,
    });
    advisory["title"] = json!("Do not use this phone");
    advisory["summary"] = json!("It sends personal data abroad.");
    let id = draft(&app, &advisory).await;
    let reference = publish(&app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let csaf = app
        .get(&format!("/api/v1/advisories/{id}/csaf"), Some(Role::Reader))
        .await
        .text()
        .await
        .unwrap();
    let (_, _, lookup) = page(&app, "/lookup", &[("q", "fairphone 2")]).await;
    let (_, _, advisory_page) = page(&app, &format!("/advisories/{reference}"), &[]).await;
    for (what, text) in [
        ("lookup", lookup),
        ("advisory", advisory_page),
        ("csaf", csaf),
    ] {
        assert!(text.contains("Fairphone 2"), "{what}: {text}");
        assert!(!text.contains("Fairphone Fairphone"), "{what}: {text}");
    }
}

backend_tests!(
    a_model_named_after_its_maker_is_not_named_twice,
    a_phone_reads_firmware_maker_wide_and_unknown_answers,
    answers_in_plain_words_without_javascript,
    lists_every_model_an_ambiguous_name_matches,
    escapes_a_model_name,
    a_browser_is_refused_with_a_page_not_json,
    an_answer_split_by_version_names_each_advisory_behind_it,
);

/// Every Xiaomi phone prohibited by one advisory, the Redmi 1S allowed
/// from 6.3.1 by another: the answer names both, each once.
async fn an_answer_split_by_version_names_each_advisory_behind_it(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let maker = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await["items"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let circular = draft(&app, &every_phone_of(&maker, &story)).await;
    let circular = publish(&app, &circular).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut approval = prohibition(&story);
    approval["title"] = json!("The updated Redmi 1S may be used");
    approval["decisions"] = json!([
        {"model_id": story.model_id, "decision": "approved", "firmware": ">=6.3.1"},
    ]);
    let approval = draft(&app, &approval).await;
    let approval = publish(&app, &approval).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, html) = page(&app, "/lookup", &[("q", "redmi 1s")]).await;
    assert_eq!(status, 200);
    for said in [
        format!("<strong>{circular}</strong></a>: Refrain from using Xiaomi phones"),
        format!("<strong>{approval}</strong></a>: The updated Redmi 1S may be used"),
    ] {
        assert_eq!(html.matches(&said).count(), 1, "{said}: {html}");
    }
}

/// Requests refused before any handler runs — a repeated field, a broken
/// token, a path nothing serves, a wrong method — still give a browser a
/// page, and keep the API's problem documents for programs.
async fn a_browser_is_refused_with_a_page_not_json(app: TestApp) {
    let browser = |method, path: &str| {
        app.request(method, path, None)
            .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
    };
    let refused = [
        (browser(reqwest::Method::GET, "/lookup?q=redmi&q=mi"), 400),
        (
            browser(reqwest::Method::GET, "/lookup?q=redmi").header("Authorization", "Basic x"),
            401,
        ),
        (browser(reqwest::Method::GET, "/no-such-page"), 404),
        (browser(reqwest::Method::DELETE, "/lookup"), 405),
    ];
    for (request, status) in refused {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{status}: {html}"
        );
        assert_eq!(headers["content-security-policy"], PAGE_POLICY, "{status}");
        assert!(html.contains("<h1>"), "{status}: {html}");
        if status == 405 {
            assert!(headers.contains_key("allow"), "{headers:?}");
        }
    }
    let api = browser(reqwest::Method::GET, "/api/v1/lookup?q=redmi&q=mi")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 400);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_for_a_sign_in_when_lookup_is_not_public() {
    let options = SpawnOptions {
        public_lookup: false,
        ..SpawnOptions::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;
    let (status, headers, html) = page(&app, "/lookup", &[("q", IMEI)]).await;
    assert_eq!(status, 401);
    assert_eq!(headers["content-security-policy"], PAGE_POLICY);
    assert!(html.contains("needs a sign-in"), "{html}");
    let reader = app.request(reqwest::Method::GET, "/lookup?q=redmi", Some(Role::Reader));
    assert_eq!(reader.send().await.unwrap().status(), 200);
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
    browser.fits_the_phone().await;
    // The stylesheet loaded under the policy (its colour is on the heading).
    let colour = browser
        .script("return getComputedStyle(document.querySelector('.verdict h2')).color;")
        .await;
    assert_eq!(colour, "rgb(138, 28, 20)");
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

/// The iPhone 5s approved from firmware 7.1.2 only, as the demo has it.
async fn iphone_approved_from_7_1_2(app: &TestApp) {
    let apple = app.manufacturer("Apple").await;
    let iphone = app.model(&apple, "iPhone 5s", &["35203506"]).await;
    let iphone = iphone["id"].as_str().unwrap();
    let evidence_id = evidence(app, &[iphone]).await;
    let approval = json!({
        "title": "iPhone 5s approved for official use",
        "summary": "The iPhone 5s may be used, on iOS 7.1.2 or later.",
        "severity": "low", "tlp": "clear",
        "decisions": [{"model_id": iphone, "decision": "approved", "firmware": ">=7.1.2"}],
        "evidence_ids": [evidence_id],
    });
    publish(app, &draft(app, &approval).await).await;
}

/// Every Xiaomi phone prohibited (the 2014 circular); its reference.
async fn every_xiaomi_phone_prohibited(app: &TestApp) -> String {
    let story = redmi_with_evidence(app).await;
    let makers = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await;
    let xiaomi = makers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|maker| maker["name"] == "Xiaomi")
        .and_then(|maker| maker["id"].as_str())
        .unwrap()
        .to_owned();
    let circular = draft(app, &every_phone_of(&xiaomi, &story)).await;
    let reference = publish(app, &circular).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    // A phone registered after the circular: it covers it too.
    app.model(&xiaomi, "Redmi Note 2", &["86716402"]).await;
    reference
}

/// The answers people meet, on a phone: one that depends on the software
/// version, a maker-wide prohibition of a phone registered after it, and a
/// number the register does not know — each in words, none wider than the
/// screen.
async fn a_phone_reads_firmware_maker_wide_and_unknown_answers(app: TestApp) {
    iphone_approved_from_7_1_2(&app).await;
    let reference = every_xiaomi_phone_prohibited(&app).await;
    let browser = Browser::start().await;

    browser.ask(&app, "iphone 5s").await;
    let answer = browser.status_text().await;
    for said in [
        "Allowed from 7.1.2",
        "Apple iPhone 5s",
        "Versions before 7.1.2 are not assessed.",
        "Check the version in Settings.",
    ] {
        assert!(answer.contains(said), "{said}: {answer}");
    }
    assert!(
        !answer.contains("\nAllowed\n"),
        "never a plain Allowed: {answer}"
    );
    browser.fits_the_phone().await;

    browser.ask(&app, "867164021234568").await;
    let answer = browser.status_text().await;
    for said in [
        "Not allowed",
        "Xiaomi Redmi Note 2",
        &reference,
        "Refrain from using Xiaomi phones",
    ] {
        assert!(answer.contains(said), "{said}: {answer}");
    }
    browser.fits_the_phone().await;

    browser.ask(&app, "490154203237518").await;
    let answer = browser.status_text().await;
    assert_eq!(
        answer,
        "This phone is not in the register — it has not been assessed. \
         Ask your security office before you use it."
    );
    browser.fits_the_phone().await;
}
