//! `DATABASE_READ_URL`: lookups and lists read through a second URL to the
//! database (here the same PostgreSQL database as a role that may only
//! `SELECT`), while every write goes to the primary.

use clearance::auth::Role;
use serde_json::json;

use crate::helpers::{Backend, READ_ONLY_ROLE, SpawnOptions, TestApp, body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_lists_read_through_the_read_url_and_writes_go_to_the_primary() {
    let options = SpawnOptions {
        read_replica: true,
        ..SpawnOptions::default()
    };
    let app = TestApp::spawn_with(Backend::Postgres, options).await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    // Writes succeed: the read-only role could not have made them.
    let maker = app.manufacturer("Xiaomi").await;
    app.model(&maker, "Redmi 1S", &["86452102"]).await;
    assert_eq!(app.count("/api/v1/models").await, 1);
    let answer = body(app.get("/api/v1/lookup?tac=86452102", None).await).await;
    assert_eq!(
        answer["matches"][0]["model"]["name"], "Redmi 1S",
        "{answer}"
    );
    let readers = app.query_count(&format!(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE usename = '{READ_ONLY_ROLE}' \
         AND datname = current_database()"
    ));
    assert!(
        readers > 0,
        "the service holds connections as {READ_ONLY_ROLE}"
    );

    // Take the read URL's right to read manufacturers away: listing them
    // fails, creating one still works.
    app.execute_sql(&format!(
        "REVOKE SELECT ON manufacturers FROM {READ_ONLY_ROLE}"
    ))
    .unwrap();
    let list = app.get("/api/v1/manufacturers", Some(Role::Reader)).await;
    assert!(
        list.status().is_server_error(),
        "a list reads through DATABASE_READ_URL: {}",
        list.status()
    );
    let created = app
        .post(
            "/api/v1/manufacturers",
            Some(Role::Analyst),
            &json!({"name": "Huawei", "country": "CN", "aliases": []}),
        )
        .await;
    assert_eq!(created.status(), 201, "a write goes to DATABASE_URL");
}
