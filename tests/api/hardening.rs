//! Input an attacker sends at the edge: control characters in query
//! strings, oversized and unusual tokens, addresses and bodies that do not
//! fit. Each is a clear problem (or page) with the right status, never a 500.

use clearance::auth::Role;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, problem};

crate::backend_tests!(
    control_characters_in_any_query_are_a_422_naming_the_parameter,
    a_quoted_local_part_is_a_422_naming_the_email,
    a_boolean_where_an_enumeration_belongs_is_a_422_naming_the_field,
);

/// Asserts a 422 problem whose first error names `field`.
async fn invalid(response: Response, field: &str, why: &str) -> Value {
    let status = response.status().as_u16();
    assert_eq!(
        status,
        422,
        "{why}: {}",
        response.text().await.unwrap_or_default()
    );
    let problem = problem(response, 422).await;
    assert_eq!(problem["errors"][0]["field"], field, "{why}: {problem}");
    problem
}

async fn control_characters_in_any_query_are_a_422_naming_the_parameter(app: TestApp) {
    app.manufacturer("Xiaomi").await;
    for (path, field) in [
        ("/api/v1/models?q=%00", "q"),
        ("/api/v1/models?limit=5&q=redmi%0D%0A", "q"),
        ("/api/v1/manufacturers?q=a%00b", "q"),
        ("/api/v1/personnel?q=a%00b", "q"),
        ("/api/v1/audit?entity=%00", "entity"),
        ("/api/v1/audit?entity_id=%00", "entity_id"),
        ("/api/v1/lookup?q=%00", "q"),
        ("/api/v1/lookup?tac=8645210%00", "tac"),
        ("/api/v1/lookup?q=redmi&firmware=1.0%00", "firmware"),
        ("/api/v1/evidence?model_id=%00", "model_id"),
        ("/api/v1/advisories?state=%07", "state"),
        ("/api/v1/models.csv?status=%00", "status"),
        ("/api/v1/subscriptions/confirm?token=%00", "token"),
    ] {
        invalid(app.get(path, Some(Role::Admin)).await, field, path).await;
    }
    // A browser gets the page, with the same status.
    let page = app
        .request(reqwest::Method::GET, "/lookup?q=%00", None)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 422);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Nothing broke: the same lists answer without the character.
    let models = app.get("/api/v1/models?q=redmi", Some(Role::Reader)).await;
    assert_eq!(body(models).await["items"], serde_json::json!([]));
    let audit = app
        .get("/api/v1/audit?entity=manufacturer", Some(Role::Admin))
        .await;
    assert_eq!(audit.status(), 200);
}

async fn a_quoted_local_part_is_a_422_naming_the_email(app: TestApp) {
    for address in [r#""a\"b"@example.org"#, r#""ada"@example.org"#] {
        let person = app
            .post(
                "/api/v1/personnel",
                Some(Role::Admin),
                &json!({"email": address, "name": "Ada", "unit": "North"}),
            )
            .await;
        invalid(person, "email", address).await;
        let subscription = app
            .post(
                "/api/v1/subscriptions",
                None,
                &json!({"email": address, "filter": {}}),
            )
            .await;
        invalid(subscription, "email", address).await;
    }
    assert_eq!(app.query_count("SELECT COUNT(*) FROM personnel"), 0);
    assert_eq!(app.query_count("SELECT COUNT(*) FROM subscriptions"), 0);
}

async fn a_boolean_where_an_enumeration_belongs_is_a_422_naming_the_field(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &[]).await;
    let evidence = json!({
        "model_ids": [model["id"]], "title": "Lab test", "source": "Lab", "kind": "lab_test",
        "observed_at": "2014-07-01T00:00:00Z", "summary": "Sends the IMEI", "severity": "high",
        "findings": [{"data": "imei", "destination": "api.example.cn", "consent": false}],
    });
    let response = app
        .post("/api/v1/evidence", Some(Role::Analyst), &evidence)
        .await;
    invalid(response, "findings[0].consent", "consent: false").await;
    // Text that is not JSON at all stays a 400.
    let garbage = app
        .request(
            reqwest::Method::POST,
            "/api/v1/evidence",
            Some(Role::Analyst),
        )
        .header("Content-Type", "application/json")
        .body(r#"{"findings": [{"consent": fals}]}"#)
        .send()
        .await
        .unwrap();
    problem(garbage, 400).await;
    assert_eq!(app.query_count("SELECT COUNT(*) FROM evidence"), 0);
}

/// A bearer token of 100 KB: the service answers 431 with a problem body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_token_is_a_431_problem() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await;
    let token = "a".repeat(100 * 1024);
    let response = app
        .client
        .get(format!("{}/api/v1/models", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let problem = problem(response, 431).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("header"),
        "{problem}"
    );
}

/// A request head over 128 KiB never reaches the service: the HTTP layer
/// (actix-http's fixed buffer) answers a bare 431 and closes that
/// connection, and everyone else is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_128_kib_is_refused_and_the_service_goes_on() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await;
    let mut request = app.client.get(format!("{}/api/v1/models", app.address));
    for n in 0..20 {
        request = request.header(format!("x-padding-{n}"), "a".repeat(8 * 1024));
    }
    assert_eq!(request.send().await.unwrap().status(), 431);
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

/// RFC 7515 §4.1.11: a token whose `crit` header names an extension the
/// service does not understand is refused, signature or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_a_critical_extension_is_a_401() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await;
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["exp-extension".into()]);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": "admin-1", "email": "admin-1@example.org", "name": "Admin", "roles": ["admin"],
        "iss": "clearance", "aud": "clearance", "iat": now, "exp": now + 600,
    });
    let key = EncodingKey::from_secret(crate::helpers::JWT_SECRET.as_bytes());
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let response = app
        .client
        .get(format!("{}/api/v1/personnel", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let problem = problem(response, 401).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("exp-extension"),
        "{problem}"
    );
}
