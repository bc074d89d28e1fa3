//! Holding up in public: per-client rate limits (with the shipped
//! defaults, from loopback), the client behind a trusted proxy, the daily
//! mail limit of one address, the body deadline and the connection cap, the
//! database timeout, and metrics whose size no request can grow.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend_tests;
use crate::helpers::{Backend, SpawnOptions, TestApp, body, problem};
use clearance::auth::Role;

backend_tests!(each backend =>
    one_address_is_sent_at_most_three_mails_a_day_with_the_same_answer,
    a_locked_table_fails_the_request_fast_with_503,
);

async fn production(options: SpawnOptions) -> TestApp {
    TestApp::spawn_with(
        Backend::Sqlite,
        SpawnOptions {
            production_limits: true,
            ..options
        },
    )
    .await
}

/// Sends `request` until it is refused with 429 (at most `tries` times);
/// the refusal.
async fn until_limited(tries: usize, request: impl Fn() -> reqwest::RequestBuilder) -> Response {
    for _ in 0..tries {
        let response = request().send().await.expect("request sent");
        if response.status() == 429 {
            return response;
        }
    }
    panic!("{tries} requests and no 429");
}

fn retry_after(response: &Response) -> u64 {
    let seconds: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(seconds >= 1);
    seconds
}

async fn limited_page(response: Response) -> String {
    assert_eq!(response.status(), 429);
    retry_after(&response);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("Too many requests"), "{page}");
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_hammering_lookups_is_refused_with_429_and_retry_after() {
    let app = production(SpawnOptions::default()).await;
    let first = app.get("/api/v1/lookup?tac=12345678", None).await;
    assert_eq!(first.status(), 200);
    let api = || app.request(Method::GET, "/api/v1/lookup?tac=12345678", None);
    let refused = until_limited(2000, api).await;
    retry_after(&refused);
    let problem = problem(refused, 429).await;
    assert_eq!(problem["type"], "urn:clearance:problem:rate-limited");
    // The page shares the bucket and answers a browser in HTML.
    let page = || {
        app.request(Method::GET, "/lookup?q=redmi", None)
            .header("Accept", "text/html")
    };
    limited_page(until_limited(2000, page).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_and_the_pages_of_mailed_links_are_limited() {
    let app = production(SpawnOptions::default()).await;
    let subscribe = || {
        app.request(Method::POST, "/api/v1/subscriptions", None)
            .json(&json!({"email": "family@example.org", "filter": {}}))
    };
    problem(until_limited(100, subscribe).await, 429).await;
    // The form counts with the API: the bucket is empty already.
    let form = app
        .request(Method::POST, "/subscribe", None)
        .form(&[("email", "family@example.org")])
        .send()
        .await
        .unwrap();
    limited_page(form).await;
    let empty_form = app.get("/subscribe", None).await;
    assert_eq!(empty_form.status(), 200, "showing the form is not limited");
    // Bad tokens are 400s; hammering them is refused too.
    let links = || {
        app.request(Method::GET, "/unsubscribe?token=x.y", None)
            .header("Accept", "text/html")
    };
    limited_page(until_limited(1000, links).await).await;
    let confirm = app
        .get("/api/v1/subscriptions/confirm?token=x.y", None)
        .await;
    retry_after(&confirm);
    problem(confirm, 429).await;
    let confirm_page = app
        .request(Method::GET, "/confirm?token=x.y", None)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    limited_page(confirm_page).await;
}

fn subscribe_from(app: &TestApp, client: &str) -> reqwest::RequestBuilder {
    app.request(Method::POST, "/api/v1/subscriptions", None)
        .header("X-Forwarded-For", format!("198.51.100.99, {client}"))
        .json(&json!({"email": "family@example.org", "filter": {}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let app = production(SpawnOptions {
        trusted_proxies: vec!["127.0.0.1/32"],
        ..SpawnOptions::default()
    })
    .await;
    until_limited(100, || subscribe_from(&app, "203.0.113.5")).await;
    let other = subscribe_from(&app, "203.0.113.6").send().await.unwrap();
    assert_eq!(other.status(), 202, "another client behind the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let app = production(SpawnOptions::default()).await;
    until_limited(100, || subscribe_from(&app, "203.0.113.5")).await;
    let forged = subscribe_from(&app, "203.0.113.6").send().await.unwrap();
    assert_eq!(forged.status(), 429, "the header is the client's own claim");
}

/// The shipped limits, with the proxy trusted so that each request can
/// come from a client of its own: only the mail limit is under test.
fn mail_limit_only() -> SpawnOptions {
    SpawnOptions {
        production_limits: true,
        trusted_proxies: vec!["127.0.0.1/32"],
        ..SpawnOptions::default()
    }
}

async fn one_address_is_sent_at_most_three_mails_a_day_with_the_same_answer(backend: Backend) {
    let app = TestApp::spawn_with(backend, mail_limit_only()).await;
    let request = json!({"email": "victim@example.org", "filter": {}});
    let mut answers = std::collections::HashSet::new();
    for i in 0..200 {
        let response = app
            .request(Method::POST, "/api/v1/subscriptions", None)
            // A client of its own each time, as a botnet would.
            .header("X-Forwarded-For", format!("203.0.{}.{}", i / 200, i % 200))
            .json(&request)
            .send()
            .await
            .unwrap();
        answers.insert((response.status().as_u16(), body(response).await));
    }
    assert_eq!(answers.len(), 1, "every answer the same: {answers:?}");
    assert_eq!(answers.iter().next().unwrap().0, 202);
    let mails = || app.outbox_count("confirm") + app.outbox_count("manage");
    assert_eq!(mails(), 3);
    // The form and another server on the same database count along.
    let beside = app.spawn_beside_with(mail_limit_only()).await;
    for i in 0..20 {
        let form = beside
            .request(Method::POST, "/subscribe", None)
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .form(&[("email", "Victim@example.org")])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200);
    }
    assert_eq!(mails(), 3);
    // Other spellings of the same address (full-width letters) count along.
    for i in 0..20 {
        let response = app
            .request(Method::POST, "/api/v1/subscriptions", None)
            .header("X-Forwarded-For", format!("192.0.2.{i}"))
            .json(&json!({"email": "victim@\u{ff45}xample.org", "filter": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    assert_eq!(mails(), 3);
    // A confirmed address is offered its manage link no more often.
    app.execute_sql("UPDATE subscriptions SET state = 'confirmed'")
        .unwrap();
    let owner = json!({"email": "owner@example.org", "filter": {}});
    for i in 0..40 {
        let response = app
            .request(Method::POST, "/api/v1/subscriptions", None)
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .json(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        if i == 0 {
            app.execute_sql("UPDATE subscriptions SET state = 'confirmed'")
                .unwrap();
        }
    }
    assert_eq!(
        app.outbox_count("manage"),
        2,
        "one confirm, then two manage"
    );
    assert_eq!(mails(), 6);
}

async fn a_locked_table_fails_the_request_fast_with_503(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        SpawnOptions {
            db_timeout: Some(Duration::from_secs(1)),
            ..SpawnOptions::default()
        },
    )
    .await;
    let create = |name: &str| {
        app.request(Method::POST, "/api/v1/manufacturers", Some(Role::Analyst))
            .json(&json!({"name": name, "country": "CN", "aliases": []}))
            // Far longer than the database timeout, shorter than waiting
            // for the lock: the request must give up on its own.
            .timeout(Duration::from_secs(8))
    };
    let lock = app.hold_write_lock("manufacturers");
    let blocked = create("Xiaomi")
        .send()
        .await
        .expect("an answer, not a wait");
    problem(blocked, 503).await;
    drop(lock);
    let created = create("Xiaomi").send().await.unwrap();
    assert_eq!(created.status(), 201);
}

/// Opens a connection that sends `request_head` and one byte of the body it
/// announces, then nothing.
async fn slow_body(app: &TestApp, request_head: &str) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("{request_head}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{").as_bytes())
        .await
        .unwrap();
    stream
}

/// Everything the server sends until it closes the connection.
async fn until_closed(mut stream: TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_are_cut_off_while_lookups_keep_answering() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        SpawnOptions {
            body_timeout: Some(Duration::from_secs(1)),
            max_connections: Some(16),
            ..SpawnOptions::default()
        },
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(slow_body(&app, "POST /api/v1/subscriptions HTTP/1.1").await);
    }
    for _ in 0..5 {
        let lookup = app
            .request(Method::GET, "/api/v1/lookup?tac=12345678", None)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("a lookup answered despite the slow clients");
        assert_eq!(lookup.status(), 200);
    }
    for stream in slow {
        let answer = until_closed(stream).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    // A route that does not read the body answers, and closes rather than
    // wait for the rest.
    let unread = slow_body(&app, "GET /api/v1/lookup?tac=12345678 HTTP/1.1").await;
    let answer = until_closed(unread).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The request series in a scrape of `/metrics`.
async fn request_series(app: &TestApp) -> Vec<String> {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("clearance_http_requests_total"))
        .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
        .collect()
}

async fn odd_requests(app: &TestApp, round: u32) {
    for i in 0..20 {
        let method = Method::from_bytes(format!("X{round}Q{i}").as_bytes()).unwrap();
        app.request(method, "/healthz", None).send().await.unwrap();
        let path = format!("/nothing-{round}-{i}/here");
        app.get(&path, None).await;
        app.request(Method::DELETE, &path, None)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_methods_and_paths_do_not_grow_metrics() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    odd_requests(&app, 1).await;
    request_series(&app).await;
    let before = request_series(&app).await;
    odd_requests(&app, 2).await;
    request_series(&app).await;
    let after = request_series(&app).await;
    assert_eq!(before, after, "no new series");
    let text = after.join("\n");
    assert!(
        !text.contains("X1Q") && !text.contains("nothing-"),
        "{text}"
    );
    assert!(
        text.contains(r#"endpoint="/healthz",method="other",status="405""#)
            && text.contains(r#"endpoint="other",method="DELETE",status="404""#),
        "{text}"
    );
}
