//! Advisory mail end to end, through a real SMTP server: who receives what,
//! exactly once; what the messages say and carry; retries, failures, an
//! absent relay; unsubscribing, confirming, acknowledging; and workers that
//! are killed or run side by side.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use clearance::auth::Role;
use clearance::links::{LinkClaims, LinkPurpose, LinkSubject};
use serde_json::{Value, json};

use crate::helpers::{Backend, SpawnOptions, TestApp, body, wait_for};
use crate::mail_server::{MailServer, ReceivedMail};
use crate::workflow::{draft, prohibition, publish, redmi_with_evidence, withdraw};

async fn mailing_app(backend: Backend, server: &MailServer) -> TestApp {
    TestApp::spawn_with(
        backend,
        SpawnOptions {
            worker: true,
            smtp_url: Some(server.url()),
            ..SpawnOptions::default()
        },
    )
    .await
}

/// Imports personnel `p000@example.org`… as the admin.
async fn personnel(app: &TestApp, count: usize) {
    let mut csv = String::from("email,name,unit\n");
    for i in 0..count {
        csv.push_str(&format!("p{i:03}@example.org,Officer {i},Unit {}\n", i % 5));
    }
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/personnel/import",
            Some(Role::Admin),
        )
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Subscribes `email` (public) and, unless `confirm` is false, confirms it.
async fn subscribe(app: &TestApp, email: &str, confirm: bool) -> String {
    subscribe_for(app, email, confirm, "immediate").await
}

async fn subscribe_for(app: &TestApp, email: &str, confirm: bool, delivery: &str) -> String {
    let response = app
        .post(
            "/api/v1/subscriptions",
            None,
            &json!({"email": email, "filter": {}, "delivery": delivery}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let key = email.to_lowercase();
    let id = app.query_texts(&format!(
        "SELECT CAST(id AS TEXT) AS v FROM subscriptions WHERE email_key = '{key}'"
    ));
    let id: uuid::Uuid = id[0].parse().unwrap();
    if confirm {
        let token = app.links.issue(&LinkClaims::new(
            LinkPurpose::Confirm,
            email,
            LinkSubject::Subscription(id),
            chrono::Utc::now(),
        ));
        let confirmed = app
            .get(
                &format!("/api/v1/subscriptions/confirm?token={token}"),
                None,
            )
            .await;
        assert_eq!(confirmed.status(), 200);
    }
    id.to_string()
}

/// The delivery summary of an advisory.
async fn deliveries(app: &TestApp, id: &str) -> Value {
    body(
        app.get(
            &format!("/api/v1/advisories/{id}/deliveries?limit=500"),
            Some(Role::Admin),
        )
        .await,
    )
    .await
}

async fn wait_delivered(app: &TestApp, id: &str, limit: Duration) -> Value {
    wait_for("every mail delivered", limit, async || {
        let page = deliveries(app, id).await;
        if page["summary"]["delivered"] == true {
            Ok(page)
        } else {
            Err(page["summary"].clone())
        }
    })
    .await
}

/// The mails about an advisory reference, by recipient.
fn about<'a>(
    messages: &'a [ReceivedMail],
    reference: &str,
) -> HashMap<String, Vec<&'a ReceivedMail>> {
    let mut by_rcpt: HashMap<String, Vec<&ReceivedMail>> = HashMap::new();
    for message in messages {
        if message.subject().is_some_and(|s| s.contains(reference)) {
            for rcpt in &message.to {
                by_rcpt
                    .entry(rcpt.to_lowercase())
                    .or_default()
                    .push(message);
            }
        }
    }
    by_rcpt
}

fn header(message: &ReceivedMail, name: &str) -> Option<String> {
    let raw = &message.raw;
    let head = &raw[..raw
        .find("\r\n\r\n")
        .or_else(|| raw.find("\n\n"))
        .unwrap_or(raw.len())];
    let prefix = format!("{}:", name.to_lowercase());
    head.lines()
        .find(|l| l.to_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
}

/// A link of `path` in a message's text part, pointed at the test's server
/// (mail links use the configured public URL, whose port is not the test's).
fn link(app: &TestApp, message: &ReceivedMail, path: &str) -> String {
    let text = message.text().expect("a text part");
    let url = text
        .split_whitespace()
        .find(|w| w.contains(path) && w.contains("token="))
        .unwrap_or_else(|| panic!("no {path} link in {text}"))
        .trim_end_matches(['.', ')']);
    local(app, url)
}

fn local(app: &TestApp, url: &str) -> String {
    url.replacen("http://127.0.0.1:8080", &app.address, 1)
}

async fn the_right_people_get_exactly_one_mail_each(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    personnel(&app, 500).await;
    let mut expected: HashSet<String> = (0..500).map(|i| format!("p{i:03}@example.org")).collect();
    for i in 0..100 {
        // Ten subscribers are also personnel (in other case), ten never
        // confirm, ten unsubscribe again.
        let email = if i < 10 {
            format!("P{i:03}@Example.org")
        } else {
            format!("s{i:03}@example.org")
        };
        let id = subscribe(&app, &email, !(10..20).contains(&i)).await;
        if (20..30).contains(&i) {
            app.execute_sql(&format!(
                "UPDATE subscriptions SET state = 'unsubscribed' WHERE email_key = '{}'",
                email.to_lowercase()
            ))
            .unwrap();
            let _ = id;
        } else if i >= 30 {
            expected.insert(email.to_lowercase());
        }
    }
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let published = publish(&app, &id).await;
    let reference = published["reference"].as_str().unwrap().to_owned();
    let page = wait_delivered(&app, &id, Duration::from_secs(60)).await;
    assert_eq!(page["summary"]["sent"], expected.len());
    wait_for(
        "every mail at the server",
        Duration::from_secs(10),
        async || about(&server.messages(), &reference).len() == expected.len(),
    )
    .await;
    let messages = server.messages();
    let received = about(&messages, &reference);
    let got: HashSet<String> = received.keys().cloned().collect();
    assert_eq!(got, expected);
    assert!(received.values().all(|m| m.len() == 1), "someone got two");

    // A person's mail: both alternatives, headers, a personal acknowledge
    // link, no list headers.
    let officer = received["p042@example.org"][0];
    assert_eq!(
        officer.subject().unwrap(),
        format!("[{reference}] Not allowed: Xiaomi Redmi 1S")
    );
    assert!(header(officer, "Message-ID").is_some());
    assert_eq!(
        header(officer, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(header(officer, "List-Unsubscribe").is_none());
    let text = officer.text().unwrap();
    assert!(text.contains("Xiaomi Redmi 1S: Not allowed"), "{text}");
    // Its link opens the advisory's page, not the API.
    let read = text
        .lines()
        .find_map(|l| l.strip_prefix("Read the advisory: "))
        .expect("a link to the advisory");
    assert!(
        read.ends_with(&format!("/advisories/{reference}")),
        "{read}"
    );
    let page = app.client.get(local(&app, read)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Do not use Xiaomi Redmi 1S phones")
    );
    assert!(text.contains("F-Secure Labs"), "{text}");
    assert!(officer.html().unwrap().contains("<li>"));
    let acknowledge = link(&app, officer, "/acknowledge");
    let page = app.client.get(&acknowledge).send().await.unwrap();
    assert_eq!(page.status(), 200);

    // A subscriber's mail: RFC 8058 one-click unsubscription.
    let subscriber = received["s050@example.org"][0];
    let unsubscribe = header(subscriber, "List-Unsubscribe").expect("List-Unsubscribe");
    assert_eq!(
        header(subscriber, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(header(subscriber, "List-Id").is_some());
    assert!(link(&app, subscriber, "/unsubscribe").len() > 20);
    let url = local(
        &app,
        unsubscribe.trim_start_matches('<').trim_end_matches('>'),
    );
    let one_click = app
        .client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    // The next advisory does not go to the address that left.
    let second = draft(&app, &prohibition(&story)).await;
    let published = publish(&app, &second).await;
    let reference = published["reference"].as_str().unwrap().to_owned();
    wait_delivered(&app, &second, Duration::from_secs(60)).await;
    let received = about(&server.messages(), &reference).len();
    assert_eq!(received, expected.len() - 1);
}

async fn a_red_advisory_mails_no_content_and_no_subscriber(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    personnel(&app, 3).await;
    subscribe(&app, "family@example.org", true).await;
    let story = redmi_with_evidence(&app).await;
    let mut red = prohibition(&story);
    red["tlp"] = json!("red");
    let id = draft(&app, &red).await;
    let reference = publish(&app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_delivered(&app, &id, Duration::from_secs(30)).await;
    let messages = server.messages();
    let received = about(&messages, &reference);
    assert_eq!(received.len(), 3, "personnel only");
    let mail = received["p001@example.org"][0];
    for part in [mail.text().unwrap(), mail.html().unwrap()] {
        assert!(part.contains("TLP:RED"));
        assert!(!part.contains("refrain"), "{part}");
        assert!(!part.contains("F-Secure"), "{part}");
    }
    // The queue in /metrics: outcomes, latency, and depth by state.
    wait_for(
        "the queue in /metrics",
        Duration::from_secs(10),
        async || {
            let metrics = app.get("/metrics", None).await.text().await.unwrap();
            let sent = metrics
                .lines()
                .find(|l| l.starts_with("clearance_mail_outcomes_total{outcome=\"sent\"}"))
                .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
            let shown = sent >= Some(3)
                && metrics.contains("clearance_mail_send_duration_seconds_count")
                && metrics.contains("clearance_outbox_rows{state=\"sent\"}");
            if shown { Ok(()) } else { Err(metrics) }
        },
    )
    .await;
}

async fn transient_refusals_retry_and_permanent_ones_fail_until_retried(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    personnel(&app, 3).await;
    server.respond("p001@example.org", 451);
    server.respond("p002@example.org", 550);
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    publish(&app, &id).await;
    let wanted = "p002 failed and p001 retrying";
    let states = wait_for(wanted, Duration::from_secs(30), async || {
        let page = deliveries(&app, &id).await;
        let states: HashMap<String, Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["email"].as_str().unwrap().to_owned(), d.clone()))
            .collect();
        if states["p002@example.org"]["state"] == "failed"
            && states["p001@example.org"]["state"] == "retrying"
        {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    assert_eq!(states["p000@example.org"]["state"], "sent");
    assert!(
        states["p002@example.org"]["last_reply"]
            .as_str()
            .unwrap()
            .starts_with("550"),
        "{}",
        states["p002@example.org"]
    );
    assert_eq!(deliveries(&app, &id).await["summary"]["delivered"], false);
    server.respond("p001@example.org", 250);
    server.respond("p002@example.org", 250);
    wait_for("the 451 retried", Duration::from_secs(30), async || {
        deliveries(&app, &id).await["summary"]["retrying"] == 0
    })
    .await;
    let retried = body(
        app.post(
            &format!("/api/v1/advisories/{id}/deliveries/retry"),
            Some(Role::Admin),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(retried["requeued"], 1);
    let page = wait_delivered(&app, &id, Duration::from_secs(30)).await;
    assert_eq!(page["summary"]["sent"], 3);
}

async fn mail_waits_while_the_relay_is_down(app_backend: Backend) {
    let mut server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    personnel(&app, 5).await;
    server.stop();
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    publish(&app, &id).await;
    wait_for("a first attempt", Duration::from_secs(30), async || {
        deliveries(&app, &id).await["summary"]["retrying"] != 0
    })
    .await;
    assert_eq!(deliveries(&app, &id).await["summary"]["sent"], 0);
    server.restart();
    let page = wait_delivered(&app, &id, Duration::from_secs(60)).await;
    assert_eq!(page["summary"]["sent"], 5);
    assert_eq!(server.messages().len(), 5);
}

async fn a_subscription_is_confirmed_from_its_mail(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    subscribe(&app, "family@example.org", false).await;
    wait_for(
        "the confirmation mail",
        Duration::from_secs(20),
        async || !server.messages().is_empty(),
    )
    .await;
    let confirmation = &server.messages()[0];
    assert!(confirmation.subject().unwrap().contains("Confirm"));
    let url = link(&app, confirmation, "/confirm");
    // A mail scanner opening the link confirms nothing: only the page's
    // button does.
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    let story = redmi_with_evidence(&app).await;
    // Before confirmation nothing is delivered.
    let first = draft(&app, &prohibition(&story)).await;
    let reference = publish(&app, &first).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_delivered(&app, &first, Duration::from_secs(20)).await;
    assert!(about(&server.messages(), &reference).is_empty());
    // The page's button.
    let confirm = url.replacen("/confirm", "/api/v1/subscriptions/confirm", 1);
    assert_eq!(app.client.get(&confirm).send().await.unwrap().status(), 200);
    let second = draft(&app, &prohibition(&story)).await;
    let reference = publish(&app, &second).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_delivered(&app, &second, Duration::from_secs(20)).await;
    assert_eq!(about(&server.messages(), &reference).len(), 1);
}

async fn acknowledgements_are_counted_and_the_rest_reminded(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    let (id, reference) = publish_to_personnel(&app, 3).await;
    wait_delivered(&app, &id, Duration::from_secs(30)).await;
    let messages = server.messages();
    let received = about(&messages, &reference);
    let url = link(&app, received["p000@example.org"][0], "/acknowledge");
    for _ in 0..2 {
        let done = app.client.post(&url).send().await.unwrap();
        assert_eq!(done.status(), 200);
    }
    let path = format!("/api/v1/advisories/{id}/acknowledgements");
    let status = body(app.get(&path, Some(Role::Admin)).await).await;
    assert_eq!(status["required"], true);
    assert_eq!(status["recipients"], 3);
    assert_eq!(status["acknowledged"], 1);
    assert_eq!(
        status["outstanding"],
        json!(["p001@example.org", "p002@example.org"])
    );
    let reminded = body(
        app.post(
            &format!("/api/v1/advisories/{id}/remind"),
            Some(Role::Admin),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(reminded["queued"], 2);
    wait_for("two reminders", Duration::from_secs(20), async || {
        server
            .messages()
            .iter()
            .filter(|m| {
                m.subject()
                    .is_some_and(|s| s.contains("Please acknowledge"))
            })
            .count()
            == 2
    })
    .await;
    let again = body(
        app.post(
            &format!("/api/v1/advisories/{id}/remind"),
            Some(Role::Admin),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(again["queued"], 0, "one reminder per person and revision");
}

async fn amendments_say_what_changed_and_withdrawals_why(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    personnel(&app, 2).await;
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let reference = publish(&app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let decisions = json!({"decisions": [
        {"model_id": story.model_id, "decision": "prohibited", "firmware": "<6.3.1"},
        {"model_id": story.model_id, "decision": "approved", "firmware": ">=6.3.1"},
    ]});
    crate::workflow::amend(&app, &id, &decisions).await;
    publish(&app, &id).await;
    crate::workflow::withdraw(&app, &id, "Superseded by the national agency's decision.").await;
    wait_for("three mails each", Duration::from_secs(30), async || {
        about(&server.messages(), &reference)
            .get("p001@example.org")
            .is_some_and(|m| m.len() == 3)
    })
    .await;
    let messages = server.messages();
    let mails = &about(&messages, &reference)["p001@example.org"];
    // (Sent concurrently, they may arrive in any order.)
    let find = |prefix: &str| {
        let prefix = format!("[{reference}] {prefix}");
        mails
            .iter()
            .find(|m| m.subject().unwrap().starts_with(&prefix))
            .unwrap_or_else(|| panic!("no mail starting {prefix}"))
    };
    let update = find("Updated:").text().unwrap();
    assert!(
        update.contains("Xiaomi Redmi 1S, versions from 6.3.1: no decision → allowed"),
        "{update}"
    );
    assert!(
        update.contains("Xiaomi Redmi 1S: not allowed → no decision"),
        "{update}"
    );
    let withdrawal = find("Withdrawn:").text().unwrap();
    assert!(withdrawal.contains("WITHDRAWN"), "{withdrawal}");
    assert!(withdrawal.contains("Superseded by the national agency's decision."));
    // The three share no Message-ID: they are three different mails.
    let ids: HashSet<Option<String>> = mails.iter().map(|m| header(m, "Message-ID")).collect();
    assert_eq!(ids.len(), 3);
}

/// The digest rule over days, with the clock in the test's hand: one mail
/// per day listing what is new since the last, none on a day with nothing.
async fn a_daily_digest_lists_what_is_new_once_a_day(app_backend: Backend) {
    use clearance::db::{Db, digests};
    let app = TestApp::spawn(app_backend).await;
    let url = clearance::config::DatabaseUrl::parse(&app.database_url()).unwrap();
    let db = Db::connect(&url, 2, std::time::Duration::from_secs(5)).unwrap();
    let enqueue = |at: chrono::DateTime<chrono::Utc>| {
        let db = db.clone();
        async move {
            db.write(move |conn| digests::enqueue_due(conn, at, 7))
                .await
                .unwrap()
        }
    };
    let now = chrono::Utc::now();
    let tomorrow = |days: i64| {
        digests::due_time(now + chrono::Duration::days(days), 7) + chrono::Duration::hours(1)
    };
    subscribe_for(&app, "daily@example.org", true, "daily").await;
    subscribe(&app, "instant@example.org", true).await;
    let story = redmi_with_evidence(&app).await;
    let first = draft(&app, &prohibition(&story)).await;
    publish(&app, &first).await;
    let second = draft(&app, &prohibition(&story)).await;
    publish(&app, &second).await;
    // The daily subscriber got no immediate mail of either.
    let immediate = app.query_count(
        "SELECT COUNT(*) FROM outbox WHERE email_key = 'daily@example.org' AND kind = 'published'",
    );
    assert_eq!(immediate, 0);
    assert_eq!(enqueue(tomorrow(1)).await, 1, "the first digest");
    assert_eq!(enqueue(tomorrow(1)).await, 0, "once a day");
    let listed = app.query_texts(
        "SELECT payload AS v FROM outbox WHERE kind = 'digest' AND email_key = 'daily@example.org'",
    );
    let listed: Vec<Value> = serde_json::from_str(&listed[0]).unwrap();
    let ids: Vec<&str> = listed
        .iter()
        .map(|l| l["advisory_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert_eq!(enqueue(tomorrow(2)).await, 0, "nothing new, no mail");
    assert_eq!(app.outbox_count("digest"), 1);

    // A prohibition mailed in an earlier digest is withdrawn: the next one
    // lists it, so the daily subscriber learns it no longer applies.
    app.execute_sql(&format!(
        "UPDATE subscriptions SET last_digest_at = '{}' WHERE email_key = 'daily@example.org'",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
    .unwrap();
    withdraw(&app, &first, "The lab retested an update.").await;
    assert_eq!(enqueue(tomorrow(3)).await, 1, "the withdrawal's digest");
    let listed = app.query_texts(
        "SELECT payload AS v FROM outbox WHERE kind = 'digest' AND email_key = 'daily@example.org' \
         ORDER BY id DESC",
    );
    let listed: Vec<Value> = serde_json::from_str(&listed[0]).unwrap();
    assert_eq!(listed, [json!({"advisory_id": first, "revision": 1})]);
}

async fn the_digest_is_mailed_with_its_advisories(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    subscribe_for(&app, "daily@example.org", true, "daily").await;
    // No digest until the test says: as if today's had gone out.
    app.execute_sql(
        "UPDATE subscriptions SET last_digest_at = '2999-01-01T00:00:00.000000Z' \
         WHERE email_key = 'daily@example.org'",
    )
    .unwrap();
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let reference = publish(&app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    // Published and withdrawn the same day: listed once, as withdrawn.
    let gone = draft(&app, &prohibition(&story)).await;
    let gone_reference = publish(&app, &gone).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    withdraw(&app, &gone, "Issued in error.").await;
    // Now as if today's digest had not yet gone out.
    app.execute_sql(
        "UPDATE subscriptions SET last_digest_at = NULL, confirmed_at = NULL \
         WHERE email_key = 'daily@example.org'",
    )
    .unwrap();
    wait_for("the digest", Duration::from_secs(20), async || {
        server
            .messages()
            .iter()
            .any(|m| m.subject().is_some_and(|s| s.contains("Clearance digest")))
    })
    .await;
    let messages = server.messages();
    let digest = messages
        .iter()
        .find(|m| m.subject().is_some_and(|s| s.contains("Clearance digest")))
        .unwrap();
    assert_eq!(digest.to, ["daily@example.org"]);
    let text = digest.text().unwrap();
    let subject = digest.subject().unwrap();
    assert!(subject.ends_with(": 2 advisories"), "{subject}: {text}");
    let entry = |reference: &str| {
        let start = text.find(&format!("[{reference}]")).unwrap();
        let end = text[start + 1..]
            .find("\n- ")
            .map_or(text.len(), |e| start + 1 + e);
        text[start..end].to_owned()
    };
    assert!(!entry(&reference).contains("no longer apply"), "{text}");
    assert!(
        entry(&gone_reference).contains("Withdrawn: its decisions no longer apply."),
        "{text}"
    );
    let listed = format!("[{gone_reference}]");
    assert_eq!(text.matches(&listed).count(), 1, "{text}");
    assert!(header(digest, "List-Unsubscribe").is_some());
    assert!(about(&messages, &reference).is_empty(), "no immediate mail");
}

async fn a_throttling_relay_slows_the_worker_without_burning_attempts(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    personnel(&app, 3).await;
    server.respond("*", 421);
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    publish(&app, &id).await;
    // Let the worker meet the throttling relay for a few of its pauses.
    wait_for(
        "two rounds of throttled attempts",
        Duration::from_secs(20),
        async || {
            let retried = app.metric("clearance_mail_outcomes_total{outcome=\"retry\"}");
            retried.await.unwrap_or(0.0) >= 6.0
        },
    )
    .await;
    let counted =
        app.query_count("SELECT COUNT(*) FROM outbox WHERE attempts > 0 AND claim_token IS NULL");
    assert_eq!(
        counted, 0,
        "throttling must not count against a mail's attempts"
    );
    server.respond("*", 250);
    let page = wait_delivered(&app, &id, Duration::from_secs(30)).await;
    assert_eq!(page["summary"]["sent"], 3);
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["attempts"] == 1)
    );
}

/// Imports `people` personnel and publishes a prohibition of the Redmi 1S,
/// with its evidence, to them; returns the advisory's id and reference.
async fn publish_to_personnel(app: &TestApp, people: usize) -> (String, String) {
    personnel(app, people).await;
    let story = redmi_with_evidence(app).await;
    let id = draft(app, &prohibition(&story)).await;
    let reference = publish(app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, reference)
}

/// Kills each worker process and waits for it.
fn kill_all(workers: &mut [std::process::Child]) {
    for worker in workers {
        worker.kill().unwrap();
        worker.wait().unwrap();
    }
}

/// How many messages a worker process sends at once.
const WORKER_LANES: usize = 4;

/// A `clearance worker` process on the test's database and relay, started
/// and delivering.
fn worker_process(app: &TestApp, server: &MailServer) -> std::process::Child {
    worker_process_with(app, server, &[])
}

/// The same, with settings of its own (`CLEARANCE_…` pairs) over the usual.
fn worker_process_with(
    app: &TestApp,
    server: &MailServer,
    settings: &[(&str, &str)],
) -> std::process::Child {
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_clearance"))
        .arg("worker")
        .env("CLEARANCE_WORKER_CONCURRENCY", WORKER_LANES.to_string())
        .env("DATABASE_URL", app.database_url())
        .env("CLEARANCE_SMTP_URL", server.url())
        .env("CLEARANCE_DATA_DIR", app.data_dir())
        .env("CLEARANCE_LINK_SECRET", crate::helpers::LINK_SECRET)
        .env("CLEARANCE_WORKER_LEASE_SECS", "2")
        .env("CLEARANCE_WORKER_POLL_MS", "100")
        .env("CLEARANCE_WORKER_BATCH", "50")
        .env("RUST_LOG", "info")
        .env("CLEARANCE_LOG_FORMAT", "human")
        .envs(settings.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the clearance binary runs");
    until_delivering(&mut worker);
    worker
}

/// Returns once `worker` says it is delivering (and so handles SIGTERM);
/// the rest of its log is drained in the background.
fn until_delivering(worker: &mut std::process::Child) {
    use std::io::BufRead;
    let mut log = std::io::BufReader::new(worker.stderr.take().expect("the log is piped"));
    let mut line = String::new();
    while !line.contains("delivering mail") {
        line.clear();
        let read = log.read_line(&mut line).expect("the worker's log");
        assert!(read > 0, "the worker exited before delivering");
    }
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
}

/// Each recipient's Message-IDs: everyone has one at least, and a duplicate
/// carries the same one (so a receiver can drop it).
fn assert_everyone_once_or_recognisably_twice(
    messages: &[ReceivedMail],
    reference: &str,
    count: usize,
) -> usize {
    let received = about(messages, reference);
    assert_eq!(received.len(), count, "every recipient has the mail");
    let mut duplicates = 0;
    for (rcpt, mails) in &received {
        let ids: HashSet<Option<String>> = mails.iter().map(|m| header(m, "Message-ID")).collect();
        assert_eq!(ids.len(), 1, "{rcpt} got different Message-IDs");
        duplicates += mails.len() - 1;
    }
    duplicates
}

async fn a_worker_killed_mid_fan_out_loses_nothing(app_backend: Backend) {
    let server = MailServer::start();
    let app = TestApp::spawn(app_backend).await;
    let (id, reference) = publish_to_personnel(&app, 2000).await;
    let mut first = worker_process(&app, &server);
    wait_for("the first mails", Duration::from_secs(60), async || {
        server.messages().len() >= 300
    })
    .await;
    first.kill().expect("kill -9");
    first.wait().unwrap();
    let after_kill = server.messages().len();
    assert!(
        after_kill < 2000,
        "the worker finished before it was killed"
    );
    let mut second = worker_process(&app, &server);
    let page = wait_delivered(&app, &id, Duration::from_secs(120)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(page["summary"]["sent"], 2000);
    let duplicates =
        assert_everyone_once_or_recognisably_twice(&server.messages(), &reference, 2000);
    eprintln!("killed after {after_kill} mails; {duplicates} sent twice");
    assert!(
        duplicates <= WORKER_LANES,
        "{duplicates} mails sent twice: more than the {WORKER_LANES} that were in flight"
    );
}

/// While a worker holds a claim, its mails read as sending: in the summary,
/// each item, and the `state` filter; once sent, they read as sent.
async fn mail_in_hand_reads_as_sending(app_backend: Backend) {
    let server = MailServer::start_with(&["--delay", "1"]);
    let app = TestApp::spawn(app_backend).await;
    let (id, _) = publish_to_personnel(&app, 3).await;
    let mut worker = worker_process_with(&app, &server, &[("CLEARANCE_WORKER_CONCURRENCY", "1")]);
    let filtered = async |state: &str| -> usize {
        let path = format!("/api/v1/advisories/{id}/deliveries?state={state}");
        body(app.get(&path, Some(Role::Admin)).await).await["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    wait_for("the claim", Duration::from_secs(30), async || {
        deliveries(&app, &id).await["summary"]["sending"] == 3
    })
    .await;
    let page = deliveries(&app, &id).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["state"] == "sending"),
        "{page}"
    );
    assert_eq!(filtered("sending").await, 3);
    assert_eq!(filtered("queued").await, 0);
    let page = wait_delivered(&app, &id, Duration::from_secs(60)).await;
    kill_all(std::slice::from_mut(&mut worker));
    assert_eq!(page["summary"]["sent"], 3);
    assert_eq!(page["summary"]["sending"], 0);
    assert_eq!(filtered("sending").await, 0);
}

/// The relay answers each message slowly, so sending a claim takes longer
/// than its lease: three workers still mail everyone exactly once, since a
/// worker keeps extending the claims it holds.
async fn a_slow_relay_outlasting_the_lease_still_mails_each_once(app_backend: Backend) {
    let server = MailServer::start_with(&["--delay", "0.25"]);
    let app = TestApp::spawn(app_backend).await;
    let (id, reference) = publish_to_personnel(&app, 120).await;
    // 20 rows a claim over 2 lanes at 0.25 s each: 2.5 s, past the 2 s lease.
    let slow = [
        ("CLEARANCE_WORKER_CONCURRENCY", "2"),
        ("CLEARANCE_WORKER_BATCH", "20"),
    ];
    let mut workers: Vec<_> = (0..3)
        .map(|_| worker_process_with(&app, &server, &slow))
        .collect();
    let page = wait_delivered(&app, &id, Duration::from_secs(120)).await;
    kill_all(&mut workers);
    assert_eq!(page["summary"]["sent"], 120);
    let duplicates =
        assert_everyone_once_or_recognisably_twice(&server.messages(), &reference, 120);
    assert_eq!(duplicates, 0, "an address was sent the mail twice");
}

/// An idle worker and timer look with reads: no write transaction begins
/// while there is nothing to do.
async fn an_idle_server_writes_nothing(app_backend: Backend) {
    let server = MailServer::start();
    let app = mailing_app(app_backend, &server).await;
    let writes = async || {
        app.metric("clearance_db_write_transactions_total")
            .await
            .expect("the write transactions are counted")
    };
    // Start-up writes (the audit head, the worker's first claim) come
    // first; the worker shows the queue's depth once it has found nothing.
    wait_for(
        "the worker's first look",
        Duration::from_secs(10),
        async || {
            let metrics = app.get("/metrics", None).await.text().await.unwrap();
            metrics.contains("clearance_outbox_rows{state=\"queued\"} 0")
        },
    )
    .await;
    let before = writes().await;
    // Twenty of the worker's polls and two of the timer's ticks.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(writes().await, before, "an idle server began a write");
}

/// SIGTERM stops a worker promptly and cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stops_cleanly_on_sigterm() {
    let server = MailServer::start();
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut worker = worker_process(&app, &server);
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = wait_for("the worker to stop", Duration::from_secs(10), async || {
        worker.try_wait().unwrap()
    })
    .await;
    assert!(status.success(), "{status}");
}

/// Two workers on one PostgreSQL database share the queue: nobody twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_fan_out_without_sending_twice() {
    let server = MailServer::start();
    let app = TestApp::spawn(Backend::Postgres).await;
    let (id, reference) = publish_to_personnel(&app, 2000).await;
    let mut workers = [worker_process(&app, &server), worker_process(&app, &server)];
    let page = wait_delivered(&app, &id, Duration::from_secs(120)).await;
    kill_all(&mut workers);
    assert_eq!(page["summary"]["sent"], 2000);
    let duplicates =
        assert_everyone_once_or_recognisably_twice(&server.messages(), &reference, 2000);
    assert_eq!(duplicates, 0, "an address was sent the mail twice");
}

/// PostgreSQL ends every connection to the database mid fan-out, as a
/// restart or a failover does: the worker opens new ones (its recorder's
/// own included) and everyone still gets the mail exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_database_connections_are_cut_still_mails_each_once() {
    let server = MailServer::start_with(&["--delay", "0.02"]);
    let app = TestApp::spawn(Backend::Postgres).await;
    let (id, reference) = publish_to_personnel(&app, 300).await;
    let mut worker = worker_process(&app, &server);
    wait_for("the first mails", Duration::from_secs(60), async || {
        server.messages().len() >= 40
    })
    .await;
    app.execute_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .unwrap();
    assert!(
        server.messages().len() < 300,
        "the worker finished before its connections were cut"
    );
    let page = wait_delivered(&app, &id, Duration::from_secs(120)).await;
    kill_all(std::slice::from_mut(&mut worker));
    assert_eq!(page["summary"]["sent"], 300);
    let duplicates =
        assert_everyone_once_or_recognisably_twice(&server.messages(), &reference, 300);
    assert_eq!(duplicates, 0, "an address was sent the mail twice");
}

// These tests start their own app, with a worker and a relay.
crate::backend_tests!(each backend =>
    the_right_people_get_exactly_one_mail_each,
    a_red_advisory_mails_no_content_and_no_subscriber,
    transient_refusals_retry_and_permanent_ones_fail_until_retried,
    mail_waits_while_the_relay_is_down,
    a_subscription_is_confirmed_from_its_mail,
    acknowledgements_are_counted_and_the_rest_reminded,
    amendments_say_what_changed_and_withdrawals_why,
    a_daily_digest_lists_what_is_new_once_a_day,
    the_digest_is_mailed_with_its_advisories,
    a_throttling_relay_slows_the_worker_without_burning_attempts,
    a_worker_killed_mid_fan_out_loses_nothing,
    mail_in_hand_reads_as_sending,
    a_slow_relay_outlasting_the_lease_still_mails_each_once,
    an_idle_server_writes_nothing,
);
