//! Every public page ends with whom to ask: the deployment's contact
//! (`CLEARANCE_CONTACT`) when it names one, else the security office — the
//! lookup, an advisory, the subscription forms, every page a mailed link
//! opens, and the page of a link that cannot be used. One layout, so one
//! line, on both backends.

use chrono::Utc;
use clearance::links::{LinkClaims, LinkPurpose, LinkSubject};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::backend_tests;
use crate::csaf::{CSAF, PROVIDER};
use clearance::auth::Role;

use crate::helpers::{Backend, PAGE_POLICY, SpawnOptions, TestApp, body, page, page_parts};
use crate::workflow::{draft, prohibition, publish, redmi_with_evidence};

const CONTACT: &str = "Security office, ext. 4242, security@example.org";
const ADDRESS: &str = "ada@example.org";
/// A valid IMEI that no model claims.
const UNKNOWN_IMEI: &str = "490154203237518";

backend_tests!(each backend => every_page_names_the_contact_or_the_security_office);

async fn every_page_names_the_contact_or_the_security_office(backend: Backend) {
    let office = TestApp::spawn_with(
        backend,
        SpawnOptions {
            contact: Some(CONTACT),
            ..SpawnOptions::default()
        },
    )
    .await;
    let links = Links::prepare(&office).await;
    let line = format!("<p class=\"contact\">Questions? {CONTACT}</p>");
    for (kind, html) in every_kind_of_page(&office, &links).await {
        assert_eq!(
            html.matches("class=\"contact\"").count(),
            1,
            "{kind}: {html}"
        );
        assert!(html.contains(&line), "{kind}: {html}");
    }
    let (_, _, unknown) = page(&office, "/lookup", &[("q", UNKNOWN_IMEI)]).await;
    let not_assessed = format!(
        "This phone is not in the register — it has not been assessed. \
         Ask before you use it: {CONTACT}."
    );
    assert!(
        unknown.contains(&not_assessed),
        "the unknown IMEI's answer names the contact: {unknown}"
    );
    let answer = json_of(
        &office,
        &format!("/api/v1/lookup?imei={UNKNOWN_IMEI}"),
        None,
    )
    .await;
    assert_eq!(
        answer["message"],
        not_assessed.as_str(),
        "the API says it too"
    );
    // A CSAF consumer learns whom to ask from the document's publisher.
    for publisher in csaf_publishers(&office, &links).await {
        assert_eq!(publisher["contact_details"], CONTACT, "{publisher}");
    }

    // The same pages from a server of the same deployment without a contact.
    let unnamed = office.spawn_beside().await;
    let fallback = "<p class=\"contact\">Questions? Ask your security office.</p>";
    for (kind, html) in every_kind_of_page(&unnamed, &links).await {
        assert_eq!(
            html.matches("class=\"contact\"").count(),
            1,
            "{kind}: {html}"
        );
        assert!(html.contains(fallback), "{kind}: {html}");
        assert!(!html.contains("ext. 4242"), "{kind}: {html}");
    }
    for publisher in csaf_publishers(&unnamed, &links).await {
        assert!(publisher.get("contact_details").is_none(), "{publisher}");
    }
    let (_, _, unknown) = page(&unnamed, "/lookup", &[("q", UNKNOWN_IMEI)]).await;
    assert!(
        unknown.contains(
            "This phone is not in the register — it has not been assessed. \
             Ask your security office before you use it."
        ),
        "{unknown}"
    );
}

/// The pages of a published advisory and of a good link of each purpose
/// (to one subscription, and to acknowledge the advisory).
struct Links {
    advisory: String,
    /// The published advisory's id, for its CSAF document.
    advisory_id: String,
    confirm: String,
    unsubscribe: String,
    manage: String,
    acknowledge: String,
}

impl Links {
    async fn prepare(app: &TestApp) -> Self {
        let story = redmi_with_evidence(app).await;
        let advisory_id = draft(app, &prohibition(&story)).await;
        let published = publish(app, &advisory_id).await;
        let subscribed = app
            .post(
                "/api/v1/subscriptions",
                None,
                &json!({"email": ADDRESS, "filter": {}}),
            )
            .await;
        assert_eq!(subscribed.status(), 202);
        let [subscription] = app
            .query_texts("SELECT CAST(id AS TEXT) AS v FROM subscriptions")
            .try_into()
            .expect("one subscription");
        let subscription = LinkSubject::Subscription(subscription.parse().unwrap());
        let link = |path: &str, purpose, subject| {
            let claims = LinkClaims::new(purpose, ADDRESS, subject, Utc::now());
            format!("{path}?token={}", app.links.issue(&claims))
        };
        let revision = LinkSubject::Revision {
            advisory_id: advisory_id.parse::<Uuid>().unwrap(),
            revision: 1,
        };
        Self {
            advisory: format!("/advisories/{}", published["reference"].as_str().unwrap()),
            advisory_id: advisory_id.clone(),
            confirm: link("/confirm", LinkPurpose::Confirm, subscription),
            unsubscribe: link("/unsubscribe", LinkPurpose::Unsubscribe, subscription),
            manage: link("/manage", LinkPurpose::Manage, subscription),
            acknowledge: link("/acknowledge", LinkPurpose::Acknowledge, revision),
        }
    }
}

/// Each kind of public page as a browser gets it from `app`, checked for
/// its status and policy: (what it is, its HTML).
async fn every_kind_of_page(app: &TestApp, links: &Links) -> Vec<(&'static str, String)> {
    let gets = [
        ("the lookup", "/lookup", 200),
        ("an advisory", &links.advisory, 200),
        ("no such advisory", "/advisories/CLR-2099-9999", 404),
        ("the subscribe form", "/subscribe", 200),
        ("a confirmation", &links.confirm, 200),
        ("the unsubscribe page", &links.unsubscribe, 200),
        ("the manage page", &links.manage, 200),
        ("the acknowledge page", &links.acknowledge, 200),
        (
            "a link that cannot be used",
            "/unsubscribe?token=not-a-token",
            400,
        ),
    ];
    let mut pages = Vec::new();
    for (kind, path, expected) in gets {
        let (status, headers, html) = page(app, path, &[]).await;
        assert_eq!(status, expected, "{kind}: {html}");
        assert_eq!(headers["content-security-policy"], PAGE_POLICY, "{kind}");
        pages.push((kind, html));
    }
    let mistyped = app
        .request(Method::POST, "/subscribe", None)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("email=ada%40example")
        .send()
        .await
        .expect("request sent");
    let (status, headers, html) = page_parts(mistyped).await;
    assert_eq!(status, 422, "the subscribe form with a mistake: {html}");
    assert_eq!(headers["content-security-policy"], PAGE_POLICY);
    assert!(html.contains("is not an email address"), "{html}");
    pages.push(("the subscribe form with a mistake", html));
    pages
}

/// The publisher of the advisory's CSAF document and of the provider
/// metadata, as `app` serves them.
async fn csaf_publishers(app: &TestApp, links: &Links) -> [serde_json::Value; 2] {
    let document = format!("/api/v1/advisories/{}/csaf", links.advisory_id);
    let document = json_of(app, &document, Some(Role::Reader)).await;
    let metadata = json_of(app, "/.well-known/csaf/provider-metadata.json", None).await;
    // With or without a contact, both stay valid against the CSAF schemas.
    assert!(CSAF.is_valid(&document), "{document}");
    assert!(PROVIDER.is_valid(&metadata), "{metadata}");
    [
        document["document"]["publisher"].clone(),
        metadata["publisher"].clone(),
    ]
}

async fn json_of(app: &TestApp, path: &str, role: Option<Role>) -> serde_json::Value {
    let response = app.get(path, role).await;
    assert_eq!(response.status(), 200, "{path}");
    body(response).await
}
