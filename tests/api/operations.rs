//! Operations: liveness, readiness, metrics, request ids, the API docs.

use clearance::auth::Role;
use reqwest::Method;

use crate::helpers::{Backend, TestApp, body, wait_for};
use crate::workflow::{draft, prohibition, publish, redmi_with_evidence};

crate::backend_tests!(
    the_process_reports_healthy_and_ready,
    every_response_carries_a_request_id,
    metrics_count_requests_by_route_and_status,
    swagger_ui_is_served_from_the_binary,
    the_served_openapi_document_is_the_committed_one,
    head_answers_every_get_as_get_would_without_a_body,
    the_root_sends_people_to_the_lookup,
    a_client_can_follow_the_documents_links,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_database_is_gone() {
    let mut app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    app.lose_database();
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(body(response).await["status"], "unavailable");
    assert_eq!(
        app.get("/healthz", None).await.status(),
        200,
        "the process itself is still alive"
    );
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    assert!(
        committed == clearance::openapi::to_json(),
        "openapi/openapi.json is out of date: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

/// Every operation of the document, by operation id: (method, path, the
/// names of its path parameters).
fn operations_by_id(
    document: &serde_json::Value,
) -> std::collections::HashMap<String, (String, String, Vec<String>)> {
    let mut by_id = std::collections::HashMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            let params = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(String::from)
                .collect();
            let earlier = by_id.insert(id.clone(), (method.clone(), path.clone(), params));
            assert!(earlier.is_none(), "operation id {id} is used twice");
        }
    }
    by_id
}

#[test]
fn every_link_leads_to_an_operation_and_fills_its_path() {
    let document: serde_json::Value = serde_json::from_str(&clearance::openapi::to_json()).unwrap();
    let operations = operations_by_id(&document);
    let mut links = 0;
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for response in operation["responses"].as_object().unwrap().values() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap();
                    let (_, path, params) = operations
                        .get(target)
                        .unwrap_or_else(|| panic!("link {name} names no operation"));
                    for param in params {
                        assert!(
                            link["parameters"].get(format!("path.{param}")).is_some(),
                            "link {name} to {path} leaves {{{param}}} unfilled"
                        );
                    }
                }
            }
        }
    }
    assert!(links > 50, "{links} links");
}

/// A generated client needs every path parameter described, in the
/// path's order; a record's `{id}` is a UUID wherever it stands.
#[test]
fn every_operation_describes_its_path_parameters_in_order() {
    let document: serde_json::Value = serde_json::from_str(&clearance::openapi::to_json()).unwrap();
    for (id, (method, path, names)) in operations_by_id(&document) {
        let operation = &document["paths"][&path][&method];
        let described: Vec<&serde_json::Value> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .collect();
        let described_names: Vec<&str> = described
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(described_names, names, "{id}: {method} {path}");
        for parameter in described.iter().filter(|p| p["name"] == "id") {
            assert_eq!(parameter["schema"]["format"], "uuid", "{id}");
            assert_eq!(parameter["required"], true, "{id}");
        }
        let first = &operation["parameters"][0];
        if !names.is_empty() {
            assert_eq!(first["in"], "path", "{id}: path parameters come first");
        }
    }
}

/// A client that knows only the document registers a model, then follows
/// the 201's `models_update` link (the id from the body, If-Match from the
/// ETag) to rename it.
async fn a_client_can_follow_the_documents_links(app: TestApp) {
    let document = body(app.get("/openapi.json", None).await).await;
    let operations = operations_by_id(&document);
    let maker = app.manufacturer("Xiaomi").await;
    let created = app
        .post(
            "/api/v1/models",
            Some(Role::Analyst),
            &serde_json::json!({"manufacturer_id": maker, "name": "Redmi 2", "category": "phone", "tacs": []}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let etag = created.headers()["ETag"].to_str().unwrap().to_owned();
    let model = body(created).await;
    let link =
        &document["paths"]["/api/v1/models"]["post"]["responses"]["201"]["links"]["models_update"];
    let (method, path, _) = &operations[link["operationId"].as_str().unwrap()];
    assert_eq!(link["parameters"]["path.id"], "$response.body#/id");
    assert_eq!(
        link["parameters"]["header.If-Match"],
        "$response.header.ETag"
    );
    let url = path.replace("{id}", model["id"].as_str().unwrap());
    assert_eq!(method, "patch");
    let renamed = app
        .patch(
            &url,
            Some(Role::Analyst),
            &serde_json::json!({"name": "Redmi 2A"}),
            Some(&etag),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(body(renamed).await["name"], "Redmi 2A");
}

async fn the_process_reports_healthy_and_ready(app: TestApp) {
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    assert_eq!(body(health).await["status"], "ok");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(body(ready).await["status"], "ok");
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let generated = app.get("/healthz", None).await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let echoed = app
        .request(reqwest::Method::GET, "/nowhere", None)
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 404);
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");
}

async fn metrics_count_requests_by_route_and_status(app: TestApp) {
    app.get("/api/v1/lookup?tac=12345678", None).await;
    app.get("/api/v1/lookup?tac=1", None).await;
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let count_line = |status: &str| {
        text.lines().any(|l| {
            l.starts_with("clearance_http_requests_total")
                && l.contains("endpoint=\"/api/v1/lookup\"")
                && l.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(count_line("200") && count_line("422"), "{text}");
    assert!(
        text.contains("clearance_http_requests_duration_seconds_bucket"),
        "latency histogram"
    );
}

async fn swagger_ui_is_served_from_the_binary(app: TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let script = app.get("/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(script.status(), 200);
    assert!(
        script.text().await.unwrap().len() > 100_000,
        "the bundle is embedded, not fetched"
    );
    let config = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(config.contains("/openapi.json"), "{config}");
}

async fn the_served_openapi_document_is_the_committed_one(app: TestApp) {
    let served = app.get("/openapi.json", None).await.text().await.unwrap();
    assert_eq!(served, clearance::openapi::to_json());
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[test]
fn a_bad_configuration_is_one_line_and_exit_status_2() {
    for (variable, value, mentions) in [
        (
            "DATABASE_URL",
            "mysql://root@localhost/x",
            "unknown scheme `mysql`",
        ),
        ("CLEARANCE_BIND", "localhost:eighty", "CLEARANCE_BIND"),
        ("CLEARANCE_JWT_SECRET", "short", "CLEARANCE_JWT_SECRET"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_clearance"))
            .arg("migrate")
            .env(variable, value)
            .output()
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "one line for {variable}: {stderr}"
        );
        assert!(stderr.contains(mentions), "{variable}: {stderr}");
    }
}

/// A service on a fresh SQLite file in `dir`, not yet serving.
async fn demo_service(dir: &std::path::Path) -> clearance::app::Application {
    let url = clearance::config::DatabaseUrl::Sqlite(dir.join("clearance.db"));
    let mut settings = clearance::config::Settings::for_database(url, dir);
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.mail_dir = dir.join("mail");
    settings.worker_tuning.poll = std::time::Duration::from_millis(100);
    clearance::app::Application::build(settings).await.unwrap()
}

#[tokio::test]
async fn loading_the_demo_twice_adds_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let app = demo_service(dir.path()).await;
    let workflow = app.workflow().clone();
    clearance::demo::load(&workflow).await.unwrap();
    let db = workflow.db().clone();
    let count = |db: &clearance::db::Db| {
        db.write_blocking(|conn| {
            let every = clearance::db::models::ModelFilter::default();
            let models = clearance::db::models::list(conn, &every, None, 500)?.len();
            let filter = clearance::db::advisories::AdvisoryFilter::default();
            let advisories = clearance::db::advisories::list(conn, &filter, None, 100)?;
            let prohibited = clearance::db::clearance::decisions_in_force(conn, None)?;
            Ok::<_, clearance::db::DbError>((models, advisories.len(), prohibited.len()))
        })
        .unwrap()
    };
    let first = count(&db);
    assert!(
        first.0 >= 6,
        "the demo holds the Xiaomi models and others: {first:?}"
    );
    assert_eq!(
        (first.1, first.2),
        (3, 4),
        "the circular (every Xiaomi phone: three models), the Mi 3's conditions and the \
         iPhone 5s's approval"
    );
    clearance::demo::load(&workflow).await.unwrap();
    assert_eq!(count(&db), first);
    let key = workflow.audit_key().clone();
    let verified = db
        .write_blocking::<_, clearance::db::DbError, _>(|conn| {
            clearance::db::audit::verify(conn, &key)
        })
        .unwrap();
    assert_eq!(verified.first_broken, None);
}

/// The README's walk-through: after `clearance demo`, the Redmi 1S is
/// prohibited, by name and by IMEI, with the circular's reference — and so
/// is a Xiaomi phone registered after the demo loaded; the Mi 3 is allowed
/// with conditions, the iPhone 5s from 7.1.2.
#[tokio::test]
async fn the_demo_answers_prohibited_for_the_redmi_1s() {
    let dir = tempfile::tempdir().unwrap();
    let app = demo_service(dir.path()).await;
    clearance::demo::load(app.workflow()).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    for query in [
        "q=redmi%201s".to_owned(),
        format!("imei={}", clearance::demo::example_imei()),
    ] {
        let answer: serde_json::Value = reqwest::get(format!("{base}/api/v1/lookup?{query}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let clearance = &answer["matches"][0]["clearance"];
        assert_eq!(clearance["status"], "prohibited", "{query}");
        assert_eq!(clearance["advisories"][0]["scope"], "manufacturer");
        assert!(
            clearance["advisories"][0]["reference"]
                .as_str()
                .unwrap()
                .starts_with("CLR-")
        );
    }
    let status_of = |query: &'static str| {
        let base = base.clone();
        async move {
            let answer: serde_json::Value = reqwest::get(format!("{base}/api/v1/lookup?{query}"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["matches"][0]["clearance"]["status"].clone()
        }
    };
    assert_eq!(status_of("q=mi%203").await, "approved_with_conditions");
    assert_eq!(status_of("q=iphone%205s").await, "depends_on_firmware");
    assert_eq!(
        status_of("q=mi%20pad").await,
        "unassessed",
        "a tablet, not a phone"
    );
    // The embedded default mails into a folder: one .eml per recipient.
    let prohibitions = || -> Vec<String> {
        std::fs::read_dir(dir.path().join("mail"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .filter(|m| {
                        m.contains("Subject:") && m.contains("Not allowed: All Xiaomi phones")
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // Three officers and the confirmed family member.
    let four = async || prohibitions().len() == 4;
    wait_for("four mails", std::time::Duration::from_secs(20), four).await;
    let mails = prohibitions();
    assert!(mails.iter().any(|m| m.contains("family@example.org")));
}

/// Every `GET` path of the OpenAPI document, with its parameters filled in
/// from one published advisory so that most answer 200; plus the routes
/// the document leaves out (the stylesheet, Swagger UI, metrics).
async fn every_get_path(app: &TestApp) -> Vec<String> {
    let story = redmi_with_evidence(app).await;
    let advisory = draft(app, &prohibition(&story)).await;
    let reference = publish(app, &advisory).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let maker = app.manufacturer("Apple").await;
    let document: serde_json::Value = serde_json::from_str(&clearance::openapi::to_json()).unwrap();
    let mut paths: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, operations)| operations.get("get").is_some())
        .map(|(path, _)| {
            let id = match path.split('/').nth(3) {
                Some("advisories") => &advisory,
                Some("evidence") => &story.evidence_id,
                Some("models") => &story.model_id,
                Some("manufacturers") => &maker,
                _ => "0190b6c3-0000-7000-8000-000000000000",
            };
            path.replace("{id}", id)
                .replace("{sha256}", &"0".repeat(64))
                .replace("{year}", &reference[4..8])
                .replace("{file}", &format!("{}.json", reference.to_lowercase()))
        })
        .collect();
    paths.extend(
        [
            "/static/pages.css",
            "/docs",
            "/docs/",
            "/docs/swagger-ui.css",
            "/metrics",
        ]
        .map(String::from),
    );
    paths
}

async fn head_answers_every_get_as_get_would_without_a_body(app: TestApp) {
    let paths = every_get_path(&app).await;
    assert!(paths.len() > 40, "{paths:?}");
    for path in paths {
        let send = |method| {
            app.request(method, &path, Some(Role::Admin))
                .header("Accept", "text/html")
                .send()
        };
        let get = send(Method::GET).await.expect("GET sent");
        let head = send(Method::HEAD).await.expect("HEAD sent");
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_ne!(head.status(), 405, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path}: no body"
        );
    }
}

async fn the_root_sends_people_to_the_lookup(app: TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for method in [Method::GET, Method::HEAD] {
        let response = client
            .request(method.clone(), format!("{}/", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{method}");
        assert_eq!(response.headers()["location"], "/lookup", "{method}");
    }
    // Followed, as a browser does, it opens the lookup page.
    let page = app.get("/", None).await;
    assert_eq!(page.url().path(), "/lookup");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Is this phone allowed?")
    );
}
