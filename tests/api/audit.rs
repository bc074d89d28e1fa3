//! The audit log: what it records, how it pages, and that tampering with it
//! is refused by the database and, when forced, found by the chain.

use std::collections::HashSet;

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, body, problem};

crate::backend_tests!(
    registry_writes_are_recorded_with_their_actor,
    the_entity_filters_narrow_the_log,
    pagination_walks_the_log_once_in_chain_order,
    an_intact_log_verifies,
    the_database_refuses_to_alter_or_remove_rows,
    an_altered_row_is_named_by_verify,
    a_removed_row_is_found_at_its_successor,
    only_admins_read_the_log,
    removing_the_last_row_is_found_by_the_signed_head,
    removing_the_last_rows_is_found_by_the_signed_head,
    a_chain_recomputed_without_the_key_is_found,
    a_forged_row_is_found_however_its_hash_is_computed,
    a_head_rolled_back_with_the_rows_is_found_without_the_key,
    the_chain_goes_on_after_a_restart_and_its_head_is_a_metric,
);

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

async fn audit(app: &TestApp, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/audit{query}"), Some(Role::Admin))
        .await;
    assert_eq!(response.status(), 200, "GET /audit{query}");
    body(response).await
}

async fn verify(app: &TestApp) -> Value {
    let response = app.get("/api/v1/audit/verify", Some(Role::Admin)).await;
    assert_eq!(response.status(), 200);
    body(response).await
}

/// What verify answers for an intact chain of `rows` rows.
fn intact(rows: u64) -> Value {
    json!({"ok": true, "rows": rows, "first_broken": null, "first_broken_seq": null, "reason": null})
}

/// What verify answers for a chain of `rows` rows that first breaks at
/// `seq` (the row `id`, when the row is there).
fn broken(rows: u64, seq: i64, id: Option<&str>, reason: &str) -> Value {
    json!({"ok": false, "rows": rows, "first_broken": id, "first_broken_seq": seq, "reason": reason})
}

/// A manufacturer, a model of it and a change to that model: three rows.
/// Returns the manufacturer's and the model's ids.
async fn three_changes(app: &TestApp) -> (String, String) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let id = model["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/models/{id}");
    let etag = app.get(&path, Some(Role::Reader)).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let patched = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"aliases": ["Hongmi 1S"]}),
            Some(&etag),
        )
        .await;
    assert_eq!(patched.status(), 200);
    (maker, id)
}

/// The id of the row at `seq`.
async fn row_id(app: &TestApp, seq: i64) -> String {
    let items = audit(app, "").await["items"].clone();
    let row = items
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["seq"] == seq)
        .unwrap_or_else(|| panic!("a row {seq}"))
        .clone();
    row["id"].as_str().unwrap().to_owned()
}

fn actions(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["action"].as_str().unwrap())
        .collect()
}

/// SQL that switches off the trigger refusing `UPDATE` (`DELETE` with
/// `delete`) on the audit log.
fn disable_trigger(app: &TestApp, delete: bool) -> &'static str {
    match (app.backend(), delete) {
        (Backend::Sqlite, false) => "DROP TRIGGER audit_log_no_update",
        (Backend::Sqlite, true) => "DROP TRIGGER audit_log_no_delete",
        (Backend::Postgres, _) => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    }
}

async fn registry_writes_are_recorded_with_their_actor(app: TestApp) {
    let (maker, model) = three_changes(&app).await;
    let page = audit(&app, "").await;
    assert_eq!(
        actions(&page),
        ["manufacturer.create", "model.create", "model.update"]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    let rows = page["items"].as_array().unwrap();
    for (n, row) in rows.iter().enumerate() {
        assert_eq!(row["seq"], n as i64 + 1);
        assert_eq!(row["actor"], "analyst-1");
        assert!(row["at"].is_string() && row["id"].is_string(), "{row}");
        assert_eq!(row["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(rows[0]["prev_hash"], GENESIS);
    assert_eq!(rows[1]["prev_hash"], rows[0]["hash"]);
    assert_eq!(rows[2]["prev_hash"], rows[1]["hash"]);
    assert_eq!(
        (&rows[0]["entity"], &rows[0]["entity_id"]),
        (&json!("manufacturer"), &json!(maker))
    );
    assert_eq!(rows[0]["payload"]["name"], "Xiaomi", "the payload is JSON");
    assert_eq!(
        (&rows[2]["entity"], &rows[2]["entity_id"]),
        (&json!("model"), &json!(model))
    );
    assert_eq!(rows[2]["payload"]["aliases"], json!(["Hongmi 1S"]));
}

async fn the_entity_filters_narrow_the_log(app: TestApp) {
    let (maker, model) = three_changes(&app).await;
    let other = app.manufacturer("Apple").await;
    assert_eq!(
        actions(&audit(&app, "?entity=model").await),
        ["model.create", "model.update"]
    );
    assert_eq!(
        actions(&audit(&app, &format!("?entity=model&entity_id={model}")).await),
        ["model.create", "model.update"]
    );
    let makers = audit(&app, "?entity=manufacturer").await;
    assert_eq!(actions(&makers), ["manufacturer.create"; 2]);
    let one = audit(&app, &format!("?entity=manufacturer&entity_id={other}")).await;
    assert_eq!(one["items"][0]["entity_id"], json!(other));
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        actions(&audit(&app, &format!("?entity=model&entity_id={maker}")).await),
        Vec::<&str>::new()
    );
}

async fn pagination_walks_the_log_once_in_chain_order(app: TestApp) {
    for n in 0..7 {
        app.manufacturer(&format!("Maker {n}")).await;
    }
    let mut seqs = Vec::new();
    let mut pages = 0;
    let mut query = "?limit=3".to_owned();
    loop {
        let page = audit(&app, &query).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seqs.extend(items.iter().map(|row| row["seq"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert_eq!(seqs.iter().collect::<HashSet<_>>().len(), 7);
    let bad = app
        .get("/api/v1/audit?cursor=not-a-cursor", Some(Role::Admin))
        .await;
    assert_eq!(problem(bad, 422).await["errors"][0]["field"], "cursor");
}

async fn an_intact_log_verifies(app: TestApp) {
    assert_eq!(verify(&app).await, intact(0));
    three_changes(&app).await;
    assert_eq!(verify(&app).await, intact(3));
}

async fn the_database_refuses_to_alter_or_remove_rows(app: TestApp) {
    three_changes(&app).await;
    let update = app.execute_sql("UPDATE audit_log SET payload = '{}' WHERE seq = 2");
    assert!(
        update.is_err_and(|e| e.contains("append-only")),
        "an UPDATE is refused"
    );
    let delete = app.execute_sql("DELETE FROM audit_log WHERE seq = 2");
    assert!(
        delete.is_err_and(|e| e.contains("append-only")),
        "a DELETE is refused"
    );
    assert_eq!(verify(&app).await["ok"], true);
}

async fn an_altered_row_is_named_by_verify(app: TestApp) {
    three_changes(&app).await;
    let second = row_id(&app, 2).await;
    app.execute_sql(disable_trigger(&app, false)).unwrap();
    app.execute_sql(r#"UPDATE audit_log SET payload = '{"name":"forged"}' WHERE seq = 2"#)
        .unwrap();
    assert_eq!(
        verify(&app).await,
        broken(
            3,
            2,
            Some(&second),
            "its hash is not the keyed hash of its content: the row was changed"
        )
    );
    let shown = audit(&app, "").await;
    assert_eq!(shown["items"][1]["payload"], json!({"name": "forged"}));
}

async fn a_removed_row_is_found_at_its_successor(app: TestApp) {
    three_changes(&app).await;
    let third = row_id(&app, 3).await;
    app.execute_sql(disable_trigger(&app, true)).unwrap();
    app.execute_sql("DELETE FROM audit_log WHERE seq = 2")
        .unwrap();
    assert_eq!(
        verify(&app).await,
        broken(
            2,
            3,
            Some(&third),
            "it follows seq 1: the rows between are missing"
        )
    );
}

/// The issue's reproduction: with the append-only trigger off, delete the
/// last `removed` rows of a chain of 5.
async fn remove_the_last_rows(app: &TestApp, removed: i64) {
    three_changes(app).await;
    app.manufacturer("Apple").await;
    app.manufacturer("Fairphone").await;
    app.execute_sql(disable_trigger(app, true)).unwrap();
    app.execute_sql(&format!(
        "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) FROM audit_log) - {removed}"
    ))
    .unwrap();
}

async fn removing_the_last_row_is_found_by_the_signed_head(app: TestApp) {
    remove_the_last_rows(&app, 1).await;
    assert_eq!(
        verify(&app).await,
        broken(
            4,
            5,
            None,
            "the signed head counts 5 rows but the log ends at seq 4: rows were removed"
        )
    );
    // The next change goes on from the head: the gap stays visible.
    app.manufacturer("Nokia").await;
    let report = verify(&app).await;
    assert_eq!(
        (&report["ok"], &report["first_broken_seq"]),
        (&json!(false), &json!(6))
    );
}

async fn removing_the_last_rows_is_found_by_the_signed_head(app: TestApp) {
    remove_the_last_rows(&app, 3).await;
    assert_eq!(
        verify(&app).await,
        broken(
            2,
            3,
            None,
            "the signed head counts 5 rows but the log ends at seq 2: rows were removed"
        )
    );
}

/// Every row's `hash` and `prev_hash` as an attacker without the key would
/// recompute them: plain SHA-256 over the row as stored, as before keying.
async fn recompute_plain_hashes(app: &TestApp) {
    use sha2::{Digest, Sha256};
    let payloads = app.query_texts("SELECT payload AS v FROM audit_log ORDER BY seq");
    let rows = audit(app, "?limit=500").await["items"].clone();
    let mut prev = GENESIS.to_owned();
    for (row, payload) in rows.as_array().unwrap().iter().zip(payloads) {
        let at = chrono::DateTime::parse_from_rfc3339(row["at"].as_str().unwrap())
            .unwrap()
            .to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let canonical = json!([
            row["seq"],
            row["id"],
            at,
            row["actor"],
            row["action"],
            row["entity"],
            row["entity_id"],
            payload
        ]);
        let mut hasher = Sha256::new();
        hasher.update(prev.as_bytes());
        hasher.update(canonical.to_string().as_bytes());
        let hash = hex::encode(hasher.finalize());
        app.execute_sql(&format!(
            "UPDATE audit_log SET prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
            row["seq"]
        ))
        .unwrap();
        prev = hash;
    }
}

async fn a_chain_recomputed_without_the_key_is_found(app: TestApp) {
    three_changes(&app).await;
    let first = row_id(&app, 1).await;
    app.execute_sql(disable_trigger(&app, false)).unwrap();
    app.execute_sql(r#"UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"#)
        .unwrap();
    recompute_plain_hashes(&app).await;
    // Every hash was rewritten: the very first row no longer carries the
    // keyed hash of its content.
    assert_eq!(
        verify(&app).await,
        broken(
            3,
            1,
            Some(&first),
            "its hash is not the keyed hash of its content: the row was changed"
        )
    );
}

async fn a_forged_row_is_found_however_its_hash_is_computed(app: TestApp) {
    three_changes(&app).await;
    let third = row_id(&app, 3).await;
    app.execute_sql(disable_trigger(&app, false)).unwrap();
    // The row claims the hash of its real content: the content changed.
    app.execute_sql(r#"UPDATE audit_log SET payload = '{"aliases":[]}' WHERE seq = 3"#)
        .unwrap();
    assert_eq!(
        verify(&app).await,
        broken(
            3,
            3,
            Some(&third),
            "its hash is not the keyed hash of its content: the row was changed"
        )
    );
    // Re-hashed without the key, it is found all the same.
    recompute_plain_hashes(&app).await;
    assert_eq!(verify(&app).await["first_broken_seq"], 1);
}

async fn a_head_rolled_back_with_the_rows_is_found_without_the_key(app: TestApp) {
    three_changes(&app).await;
    let second_hash = audit(&app, "").await["items"][1]["hash"].clone();
    app.execute_sql(disable_trigger(&app, true)).unwrap();
    app.execute_sql("DELETE FROM audit_log WHERE seq = 3")
        .unwrap();
    app.execute_sql(&format!(
        "UPDATE audit_head SET seq = 2, hash = '{}'",
        second_hash.as_str().unwrap()
    ))
    .unwrap();
    let report = verify(&app).await;
    assert_eq!(
        (&report["ok"], &report["first_broken_seq"]),
        (&json!(false), &json!(2))
    );
    assert!(
        report["reason"].as_str().unwrap().contains("signature"),
        "{report}"
    );
    // Writes refuse to sign over a head changed behind the service's back.
    let refused = app
        .post(
            "/api/v1/manufacturers",
            Some(Role::Analyst),
            &json!({"name": "Nokia", "country": "FI"}),
        )
        .await;
    assert_eq!(refused.status(), 500);
    assert_eq!(
        app.query_count("SELECT COUNT(*) FROM manufacturers WHERE name = 'Nokia'"),
        0
    );
}

async fn the_chain_goes_on_after_a_restart_and_its_head_is_a_metric(app: TestApp) {
    three_changes(&app).await;
    let again = app.spawn_beside().await;
    again.manufacturer("Apple").await;
    assert_eq!(verify(&app).await, intact(4));
    let metrics = again.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("clearance_audit_head_seq 3"),
        "the checkpoint at start: {metrics}"
    );
}

async fn only_admins_read_the_log(app: TestApp) {
    for path in ["/api/v1/audit", "/api/v1/audit/verify"] {
        for role in [Role::Reader, Role::Analyst, Role::Approver] {
            problem(app.get(path, Some(role)).await, 403).await;
        }
        let anonymous = app.get(path, None).await;
        assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
        problem(anonymous, 401).await;
    }
}

/// Concurrent writers must queue for the chain's end, never fork it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_keep_one_chain_on_postgres() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let token = app.token(Role::Analyst);
    let requests = (0..20).map(|n| {
        app.client
            .post(format!("{}/api/v1/manufacturers", app.address))
            .bearer_auth(&token)
            .json(&json!({"name": format!("Maker {n}"), "country": "CN"}))
            .send()
    });
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.expect("request sent").status(), 201);
    }
    assert_eq!(verify(&app).await, intact(20));
}
