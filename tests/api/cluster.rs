//! Past one machine, on one: `scripts/cluster.sh` starts two API replicas
//! (`serve`, CLEARANCE_WORKER=false; B reads through DATABASE_READ_URL, a
//! read-only role on the same database) and three `clearance worker`s on one
//! PostgreSQL database, sending to an SMTP sink that logs each delivery with
//! its Message-ID. Through it:
//!
//! - a model registered through replica A is answered by replica B's lookup
//!   within the lookup refresh period (plus the same again for the rebuild
//!   on a loaded machine);
//! - an advisory published through B to 10,000 personnel, with one worker
//!   killed by SIGKILL mid-delivery, reaches every one of them; a recipient
//!   receives it more than once only if their mail was claimed (`sending`)
//!   at the moment of the kill, and then every copy carries the same
//!   Message-ID;
//! - SIGTERM on replica A lets an upload it is receiving finish (201, the
//!   bytes intact, served by B from the shared data directory), then A exits
//!   and refuses new connections.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clearance::auth::Role;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, EmptyDatabase, JWT_SECRET, LINK_SECRET, TestApp, body, wait_for};
use crate::workflow::{draft, prohibition, publish, redmi_with_evidence};

const RECIPIENTS: usize = 10_000;
const LOOKUP_REFRESH: Duration = Duration::from_millis(1000);

/// `scripts/cluster.sh`, running; stopped (SIGTERM) when dropped.
struct Cluster {
    script: Child,
    env: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(database: &EmptyDatabase) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut script =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh"))
                .arg(dir.path())
                .env("CLEARANCE_BIN", env!("CARGO_BIN_EXE_clearance"))
                .env("DATABASE_URL", database.database_url())
                .env("CLUSTER_READ_URL_B", database.read_only_url())
                .env("CLEARANCE_JWT_SECRET", JWT_SECRET)
                .env("CLEARANCE_LINK_SECRET", LINK_SECRET)
                // A claim of the killed worker returns within the test's time.
                .env("CLEARANCE_WORKER_LEASE_SECS", "5")
                // Batches that take well under the lease to send, so that
                // only the killed worker's claims are ever claimed again.
                .env("CLEARANCE_WORKER_BATCH", "50")
                .env(
                    "CLEARANCE_LOOKUP_REFRESH_MS",
                    LOOKUP_REFRESH.as_millis().to_string(),
                )
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .spawn()
                .expect("scripts/cluster.sh runs");
        let stdout = script.stdout.take().unwrap();
        let first_line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .unwrap();
        if !first_line.starts_with("ready") {
            // The folder goes with the test: show what the replicas said.
            let logs: String = ["api-a.log", "api-b.log", "migrate.log"]
                .iter()
                .map(|log| {
                    let text = std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(20).collect();
                    format!(
                        "--- {log}\n{}\n",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!("scripts/cluster.sh did not start: `{first_line}`\n{logs}");
        }
        let env = std::fs::read_to_string(dir.path().join("cluster.env"))
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        Self {
            script,
            env,
            _dir: dir,
        }
    }

    fn get(&self, key: &str) -> &str {
        &self.env[key]
    }

    fn sink_log(&self) -> PathBuf {
        PathBuf::from(self.get("SINK_LOG"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        signal("TERM", &self.script.id().to_string());
        let _ = self.script.wait();
    }
}

fn signal(name: &str, pid: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid)
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn alive(pid: &str) -> bool {
    Command::new("kill")
        .args(["-0", pid])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Each complete line of the sink's log: (recipient, Message-ID).
fn deliveries(log: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(rcpt, id)| (rcpt.to_owned(), id.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_and_three_workers_share_one_database() {
    let database = EmptyDatabase::create(Backend::Postgres);
    let cluster = Cluster::start(&database).await;
    let a = TestApp::attach(database, cluster.get("API_A"));
    let b = a.replica(cluster.get("API_B"));

    // A model registered through A is answered by B.
    let maker = a.manufacturer("Huawei").await;
    let registered = Instant::now();
    a.model(&maker, "Mate 7", &["86718302"]).await;
    wait_for("B to answer the lookup", LOOKUP_REFRESH * 2, async || {
        let answer = body(b.get("/api/v1/lookup?tac=86718302", None).await).await;
        answer["matches"][0]["model"]["name"] == "Mate 7"
    })
    .await;
    eprintln!(
        "B answered {:?} after A registered the model",
        registered.elapsed()
    );

    let evidence = fan_out_survives_a_killed_worker(&cluster, &b).await;
    sigterm_finishes_in_flight_requests(&cluster, &a, &b, &evidence).await;
}

/// Returns the id of the evidence the advisory cites.
async fn fan_out_survives_a_killed_worker(cluster: &Cluster, b: &TestApp) -> String {
    let mut roster = String::from("email,name,unit\n");
    for i in 0..RECIPIENTS {
        roster.push_str(&format!(
            "officer{i:05}@example.org,Officer {i},Unit {}\n",
            i % 20
        ));
    }
    let imported = b
        .request(
            reqwest::Method::POST,
            "/api/v1/personnel/import",
            Some(Role::Admin),
        )
        .header("Content-Type", "text/csv")
        .body(roster)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200, "{}", imported.text().await.unwrap());
    let story = redmi_with_evidence(b).await;
    let id = draft(b, &prohibition(&story)).await;
    publish(b, &id).await;

    let log = cluster.sink_log();
    wait_for(
        "the first 1,500 deliveries",
        Duration::from_secs(60),
        async || deliveries(&log).len() >= 1_500,
    )
    .await;
    let workers: Vec<&str> = cluster.get("WORKER_PIDS").split(' ').collect();
    signal("KILL", workers[0]);
    let delivered_at_kill = deliveries(&log).len();
    // What was claimed at the kill: the killed worker's claims among them.
    let in_flight: HashSet<String> = b
        .query_texts(&format!(
            "SELECT email AS v FROM outbox WHERE advisory_id = '{id}' AND claim_token IS NOT NULL"
        ))
        .into_iter()
        .collect();
    assert!(
        delivered_at_kill < RECIPIENTS,
        "the kill came after the last delivery: the test proves nothing"
    );

    let path = format!("/api/v1/advisories/{id}/deliveries?limit=1");
    let mut summary = Value::Null;
    wait_for("every delivery", Duration::from_secs(90), async || {
        summary = body(b.get(&path, Some(Role::Admin)).await).await["summary"].clone();
        summary["delivered"] == true
    })
    .await;
    assert_eq!(summary["sent"], RECIPIENTS, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");

    let mut by_recipient: HashMap<String, Vec<String>> = HashMap::new();
    for (rcpt, message_id) in deliveries(&log) {
        by_recipient.entry(rcpt).or_default().push(message_id);
    }
    assert_eq!(
        by_recipient.len(),
        RECIPIENTS,
        "every officer got the advisory"
    );
    let mut repeats = 0;
    for (rcpt, ids) in &by_recipient {
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 1, "{rcpt} got different messages: {ids:?}");
        if ids.len() > 1 {
            assert!(
                in_flight.contains(rcpt),
                "{rcpt} got the advisory {} times but was not in flight at the kill",
                ids.len()
            );
            repeats += ids.len() - 1;
        }
    }
    assert!(
        repeats <= in_flight.len(),
        "{repeats} repeats, {} mails in flight at the kill",
        in_flight.len()
    );
    eprintln!(
        "killed a worker after {delivered_at_kill} deliveries with {} mails claimed; {repeats} repeated (same Message-ID)",
        in_flight.len()
    );
    story.evidence_id
}

async fn sigterm_finishes_in_flight_requests(
    cluster: &Cluster,
    a: &TestApp,
    b: &TestApp,
    evidence_id: &str,
) {
    const CHUNKS: u8 = 5;
    let chunk = |i: u8| vec![i; 64 * 1024];
    let bytes: Vec<u8> = (0..CHUNKS).flat_map(chunk).collect();
    // An upload that takes 1.2 s to arrive: a chunk every 300 ms.
    let slowly = futures_util::stream::unfold(0u8, move |i| async move {
        if i == CHUNKS {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Some((Ok::<_, std::io::Error>(chunk(i)), i + 1))
    });
    let path = format!("/api/v1/evidence/{evidence_id}/artifacts");
    let upload = a
        .request(reqwest::Method::POST, &path, Some(Role::Analyst))
        .query(&[("filename", "capture.bin")])
        .body(reqwest::Body::wrap_stream(slowly))
        .send();
    let upload = tokio::spawn(upload);
    // SIGTERM once A is handling the upload (the scrape is in flight too).
    wait_for(
        "A receiving the upload",
        Duration::from_secs(10),
        async || a.metric("clearance_http_requests_in_flight").await >= Some(2.0),
    )
    .await;
    let pid_a = cluster.get("PID_A");
    signal("TERM", pid_a);
    let response = upload
        .await
        .unwrap()
        .expect("A answers the request it was receiving");
    assert_eq!(response.status(), 201, "the upload in flight at SIGTERM");
    let stored = body(response).await;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    assert_eq!(stored["sha256"], sha256.as_str());
    assert_eq!(stored["size"], bytes.len());

    let terminated = Instant::now();
    wait_for(
        "A to exit after SIGTERM",
        Duration::from_secs(15),
        async || !alive(pid_a),
    )
    .await;
    eprintln!("A exited {:?} after its last request", terminated.elapsed());
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", a.address))
        .send()
        .await;
    assert!(refused.is_err(), "A is gone: {refused:?}");
    let served = b.get(&format!("{path}/{sha256}"), Some(Role::Reader)).await;
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.bytes().await.unwrap(),
        bytes,
        "B serves what A received"
    );
}
