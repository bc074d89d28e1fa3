//! Backup and restore as `deploy/README.md` tells an operator to do it:
//! the database (`clearance backup FILE` on SQLite, `pg_dump`/`pg_restore`
//! on PostgreSQL) taken while the service writes, then the data
//! directory's artifacts; restored into an empty database, the service
//! starts on it, its audit chain verifies and every artifact comes back
//! with its SHA-256.

use std::path::Path;
use std::process::{Command, Output};

use clearance::auth::Role;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::helpers::{Backend, EmptyDatabase, SpawnOptions, TestApp, body, wait_for};
use crate::workflow::redmi_with_evidence;

/// Evidence artifacts of all kinds of bytes; returns (evidence, sha256, bytes).
async fn artifacts(app: &TestApp, evidence_id: &str) -> Vec<(String, String, Vec<u8>)> {
    let files: [(&str, Vec<u8>); 3] = [
        ("capture.pcap", (0..=255u8).cycle().take(70_000).collect()),
        ("report.txt", b"Sends the IMEI to Beijing.\n".to_vec()),
        ("empty.bin", Vec::new()),
    ];
    let mut stored = Vec::new();
    for (filename, bytes) in files {
        let response = app
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/evidence/{evidence_id}/artifacts"),
                Some(Role::Analyst),
            )
            .query(&[("filename", filename)])
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "uploading {filename}");
        let sha256 = body(response).await["sha256"].as_str().unwrap().to_owned();
        stored.push((evidence_id.to_owned(), sha256, bytes));
    }
    stored
}

/// Writes manufacturers until told to stop, so that the backup is taken
/// while the service is busy; returns how many it wrote.
fn keep_writing(
    app: &TestApp,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = usize> + use<> {
    let client = app.client.clone();
    let url = format!("{}/api/v1/manufacturers", app.address);
    let token = app.token(Role::Analyst);
    async move {
        let mut written = 0;
        while !*stop.borrow_and_update() {
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"name": format!("Maker {written}"), "country": "CN", "aliases": []}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            written += 1;
        }
        written
    }
}

/// Returns once [`keep_writing`] has written (the demo story's maker aside).
async fn until_writing(app: &TestApp) {
    let writing = async || app.count("/api/v1/manufacturers").await > 1;
    wait_for(
        "the writer to write",
        std::time::Duration::from_secs(10),
        writing,
    )
    .await;
}

/// The restored service's audit verdict and how many artifacts came back
/// intact; panics on the first one that does not.
async fn check_restored(restored: &TestApp, artifacts: &[(String, String, Vec<u8>)]) -> usize {
    let verdict = body(
        restored
            .get("/api/v1/audit/verify", Some(Role::Admin))
            .await,
    )
    .await;
    assert_eq!(verdict["ok"], true, "the restored audit chain: {verdict}");
    assert_eq!(verdict["first_broken"], serde_json::Value::Null);
    for (evidence, sha256, bytes) in artifacts {
        let response = restored
            .get(
                &format!("/api/v1/evidence/{evidence}/artifacts/{sha256}"),
                Some(Role::Reader),
            )
            .await;
        assert_eq!(response.status(), 200, "artifact {sha256}");
        let served = response.bytes().await.unwrap();
        assert_eq!(hex::encode(Sha256::digest(&served)), *sha256);
        assert_eq!(&served[..], &bytes[..]);
    }
    verdict["rows"].as_u64().unwrap() as usize
}

/// Checks the restored service (see [`check_restored`]) and that the copy
/// is of one moment: each manufacturer written while the backup ran has its
/// audit row in it, or neither is there. `other_rows` is the audit rows
/// of everything but manufacturers.
async fn assert_one_moment(
    restored: &TestApp,
    artifacts: &[(String, String, Vec<u8>)],
    other_rows: usize,
    written: usize,
) {
    let rows = check_restored(restored, artifacts).await;
    let makers = restored.count("/api/v1/manufacturers").await;
    assert_eq!(
        rows,
        other_rows + makers,
        "one audit row per manufacturer in the copy ({makers} of them; {written} written while it was taken)"
    );
}

/// `cp -a DATA_DIR/artifacts TARGET/`, the documented second step.
fn copy_artifacts(from: &Path, to: &Path) {
    run(Command::new("cp")
        .arg("-a")
        .arg(from.join("artifacts"))
        .arg(to));
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `clearance backup FILE` against `database_url`.
fn clearance_backup(database_url: &str, data_dir: &Path, file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clearance"))
        .arg("backup")
        .arg(file)
        .env("CLEARANCE_CONFIG", "/nonexistent/clearance.toml")
        .env("DATABASE_URL", database_url)
        .env("CLEARANCE_DATA_DIR", data_dir)
        .output()
        .expect("the clearance binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_while_writing_restores_with_its_audit_chain_and_artifacts() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let story = redmi_with_evidence(&app).await;
    let artifacts = artifacts(&app, &story.evidence_id).await;
    let rows_before = app.query_count("SELECT COUNT(*) FROM audit_log");
    assert_eq!(app.count("/api/v1/manufacturers").await, 1);
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("clearance-backup.db");

    let (stop, stopped) = watch::channel(false);
    let writer = tokio::spawn(keep_writing(&app, stopped));
    until_writing(&app).await;
    let database_url = app.database_url();
    let data_dir = app.data_dir().to_owned();
    let backup_file = file.clone();
    let output = tokio::task::spawn_blocking(move || {
        clearance_backup(&database_url, &data_dir, &backup_file)
    })
    .await
    .unwrap();
    stop.send(true).unwrap();
    let written = writer.await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("copy") && said.contains("artifacts"),
        "{said}"
    );
    copy_artifacts(app.data_dir(), backups.path());

    // Restore: the copy becomes the database of a fresh data directory.
    let empty = EmptyDatabase::create(Backend::Sqlite);
    let restored_db = empty.database_url().replacen("sqlite://", "", 1);
    std::fs::copy(&file, &restored_db).unwrap();
    copy_artifacts(backups.path(), empty.data_dir());
    let restored = TestApp::spawn_on(empty, SpawnOptions::default()).await;
    assert_one_moment(&restored, &artifacts, rows_before - 1, written).await;

    // A second backup to the same file is refused and leaves it alone.
    let before = std::fs::read(&file).unwrap();
    let again = clearance_backup(&app.database_url(), app.data_dir(), &file);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_taken_while_writing_restores_with_its_audit_chain_and_artifacts() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let story = redmi_with_evidence(&app).await;
    let artifacts = artifacts(&app, &story.evidence_id).await;
    let other_rows = app.query_count("SELECT COUNT(*) FROM audit_log") - 1;
    let backups = tempfile::tempdir().unwrap();
    let dump = backups.path().join("clearance.dump");

    // On PostgreSQL the backup command points to pg_dump.
    let refused = clearance_backup(&app.database_url(), app.data_dir(), &dump);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));
    assert!(!dump.exists());

    let (stop, stopped) = watch::channel(false);
    let writer = tokio::spawn(keep_writing(&app, stopped));
    until_writing(&app).await;
    let database_url = app.database_url();
    let dump_file = dump.clone();
    tokio::task::spawn_blocking(move || {
        run(Command::new("pg_dump")
            .arg("--format=custom")
            .arg(format!("--file={}", dump_file.display()))
            .arg(format!("--dbname={database_url}")))
    })
    .await
    .unwrap();
    stop.send(true).unwrap();
    let written = writer.await.unwrap();
    copy_artifacts(app.data_dir(), backups.path());

    let empty = EmptyDatabase::create(Backend::Postgres);
    run(Command::new("pg_restore")
        .arg("--no-owner")
        .arg("--exit-on-error")
        .arg(format!("--dbname={}", empty.database_url()))
        .arg(&dump));
    copy_artifacts(backups.path(), empty.data_dir());
    let restored = TestApp::spawn_on(empty, SpawnOptions::default()).await;
    assert_one_moment(&restored, &artifacts, other_rows, written).await;
}
