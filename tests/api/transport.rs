//! The mail transports against a real SMTP server (aiosmtpd) and a real
//! folder: what arrives, and how each answer of the server is classified.

use std::net::TcpListener;
use std::path::Path;

use clearance::config::{DatabaseUrl, Settings};
use clearance::mail::header_text::header_text;
use clearance::mail::smtp_url::SmtpUrl;
use clearance::mail::transport::{Outcome, Transport};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use crate::mail_server::MailServer;

const OFFICER: &str = "officer@example.org";

fn settings(dir: &Path, smtp_url: Option<&str>) -> Settings {
    let mut settings = Settings::for_database(DatabaseUrl::Sqlite(dir.join("unused.db")), dir);
    settings.smtp_url = smtp_url.map(|url| SmtpUrl::parse(url).expect("a valid SMTP URL"));
    settings.mail_dir = dir.join("mail");
    settings
}

fn smtp_transport(dir: &Path, url: &str) -> Transport {
    Transport::from_settings(&settings(dir, Some(url)))
}

/// An advisory-like message with a text and an HTML alternative.
fn advisory(to: &str, subject: &str) -> Message {
    Message::builder()
        .from("Clearance <advisories@clearance.invalid>".parse().unwrap())
        .to(Mailbox::new(
            Some("Officer Örn".into()),
            to.parse().unwrap(),
        ))
        .subject(subject)
        .message_id(Some("<row-1@clearance.invalid>".into()))
        .multipart(MultiPart::alternative_plain_html(
            "Refrain from using the Redmi 1S — it sends IMEIs abroad.\r\n".to_owned(),
            "<p>Refrain from using the <b>Redmi 1S</b> — it sends IMEIs abroad.</p>".to_owned(),
        ))
        .expect("a valid message")
}

async fn send(transport: &mut Transport, id: &str, message: &Message) -> Outcome {
    transport
        .send(id, message.envelope(), &message.formatted(), async {})
        .await
}

fn assert_sent(outcome: &Outcome) {
    assert!(
        matches!(outcome, Outcome::Sent { reply } if reply.starts_with("250 2.0.0 Ok: queued as")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_message_arrives_with_its_headers_and_both_alternatives() {
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());
    let subject = "[CLR-2026-0001] Prohibited: Xiaomi Redmi 1S";

    assert_sent(&send(&mut transport, "row-1", &advisory(OFFICER, subject)).await);
    assert_sent(
        &send(
            &mut transport,
            "row-2",
            &advisory("family@example.org", subject),
        )
        .await,
    );

    let received = server.messages();
    assert_eq!(received.len(), 2);
    let mail = &received[0];
    assert_eq!(mail.from, "advisories@clearance.invalid");
    assert_eq!(mail.to, [OFFICER]);
    assert_eq!(mail.subject().as_deref(), Some(subject));
    let parsed = mail.parsed();
    assert_eq!(parsed.message_id(), Some("row-1@clearance.invalid"));
    let to = parsed.to().and_then(|to| to.first()).expect("a To header");
    assert_eq!(to.name(), Some("Officer Örn"));
    assert_eq!(to.address(), Some(OFFICER));
    assert!(parsed.date().is_some());
    let text = mail.text().expect("a text/plain part");
    assert!(text.contains("Redmi 1S — it sends IMEIs abroad"), "{text}");
    let html = mail.html().expect("a text/html part");
    assert!(html.contains("<b>Redmi 1S</b> — it sends"), "{html}");
    // Both messages went over one connection, opened once.
    assert_eq!(received[1].to, ["family@example.org"]);
    assert_eq!(received[0].peer_port, received[1].peer_port);
}

#[tokio::test]
async fn a_550_is_permanent_with_the_reply_and_the_connection_is_kept() {
    let server = MailServer::start();
    server.respond("gone@example.org", 550);
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());

    assert_sent(&send(&mut transport, "a", &advisory(OFFICER, "first")).await);
    let outcome = send(&mut transport, "b", &advisory("gone@example.org", "x")).await;
    let Outcome::Permanent { error, reply } = &outcome else {
        panic!("{outcome:?}")
    };
    let expected = "550 5.1.1 Recipient address rejected: unknown user";
    assert_eq!(reply.as_deref(), Some(expected));
    assert!(
        error.contains("RCPT TO <gone@example.org>") && error.contains(expected),
        "{error}"
    );
    assert_sent(&send(&mut transport, "c", &advisory(OFFICER, "third")).await);

    let received = server.messages();
    assert_eq!(received.len(), 2);
    // RSET after the refusal kept the connection.
    assert_eq!(received[0].peer_port, received[1].peer_port);
}

#[tokio::test]
async fn a_relay_offering_pipelining_gets_each_envelope_in_one_write() {
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());

    assert_sent(&send(&mut transport, "a", &advisory(OFFICER, "first")).await);
    assert_sent(&send(&mut transport, "b", &advisory(OFFICER, "second")).await);

    let received = server.messages();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|mail| mail.pipelined), "{received:?}");
}

#[tokio::test]
async fn a_relay_without_pipelining_gets_one_command_at_a_time_and_refusals_still_count() {
    let server = MailServer::start_with(&["--no-pipelining"]);
    server.respond("gone@example.org", 550);
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());

    assert_sent(&send(&mut transport, "a", &advisory(OFFICER, "first")).await);
    let outcome = send(&mut transport, "b", &advisory("gone@example.org", "x")).await;
    assert!(
        matches!(&outcome, Outcome::Permanent { error, .. } if error.starts_with("RCPT TO <gone@example.org>: 550")),
        "{outcome:?}"
    );
    assert_sent(&send(&mut transport, "c", &advisory(OFFICER, "third")).await);

    let received = server.messages();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|mail| !mail.pipelined), "{received:?}");
    assert_eq!(received[0].peer_port, received[1].peer_port);
}

#[tokio::test]
async fn a_refused_mail_from_in_a_pipelined_envelope_keeps_the_connection_in_step() {
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());
    assert_sent(&send(&mut transport, "a", &advisory(OFFICER, "first")).await);

    // The RCPT and DATA written with the refused MAIL are refused too; the
    // sender reads those replies and the next message goes through.
    server.respond("*", 554);
    let outcome = send(&mut transport, "b", &advisory(OFFICER, "refused")).await;
    assert_eq!(
        outcome,
        Outcome::Permanent {
            error: "MAIL FROM: 554 5.7.1 Rejected".into(),
            reply: Some("554 5.7.1 Rejected".into()),
        }
    );
    server.respond("*", 250);
    assert_sent(&send(&mut transport, "c", &advisory(OFFICER, "third")).await);

    let received = server.messages();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].peer_port, received[1].peer_port);
    assert!(received[1].pipelined);
}

#[tokio::test]
async fn a_451_is_transient_and_throttled_until_the_server_accepts() {
    let server = MailServer::start();
    server.respond("busy@example.org", 451);
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());
    let message = advisory("busy@example.org", "later");

    let outcome = send(&mut transport, "a", &message).await;
    assert_eq!(
        outcome,
        Outcome::Transient {
            error: "RCPT TO <busy@example.org>: 451 4.3.0 Local error, try again later".into(),
            reply: Some("451 4.3.0 Local error, try again later".into()),
            throttled: true,
        }
    );
    assert!(server.messages().is_empty());

    server.respond("busy@example.org", 250);
    assert_sent(&send(&mut transport, "a", &message).await);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_relay_answering_421_to_everything_throttles_then_recovers() {
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());
    let message = advisory(OFFICER, "throttled");
    assert_sent(&send(&mut transport, "a", &message).await);

    server.respond("*", 421);
    let outcome = send(&mut transport, "b", &message).await;
    assert!(
        matches!(&outcome, Outcome::Transient { reply: Some(reply), throttled: true, .. }
            if reply == "421 4.7.0 Too many messages, slow down"),
        "{outcome:?}"
    );

    // The server closed the connection with its 421; the next send opens one.
    server.respond("*", 250);
    assert_sent(&send(&mut transport, "b", &message).await);
    let received = server.messages();
    assert_eq!(received.len(), 2);
    assert_ne!(received[0].peer_port, received[1].peer_port);
}

#[tokio::test]
async fn a_server_that_is_down_is_transient_and_the_sender_reconnects() {
    let mut server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());
    let message = advisory(OFFICER, "while down");
    assert_sent(&send(&mut transport, "a", &message).await);

    server.stop();
    // The kept connection is dead, and a new one is refused.
    let outcome = send(&mut transport, "b", &message).await;
    let Outcome::Transient {
        error,
        reply: None,
        throttled: false,
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    let address = format!("connecting to 127.0.0.1:{}", server.port());
    assert!(
        error.starts_with(&address) && error.contains("refused"),
        "{error}"
    );

    server.restart();
    assert_sent(&send(&mut transport, "b", &message).await);
    assert_eq!(server.messages().len(), 2);
}

#[tokio::test]
async fn a_server_that_never_greets_times_out() {
    // A listener that is never accepted from: the kernel completes the TCP
    // handshake, and no greeting ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "smtp://127.0.0.1:{}?connect_timeout=1",
        silent.local_addr().unwrap().port()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &url);

    let started = std::time::Instant::now();
    let outcome = send(&mut transport, "a", &advisory(OFFICER, "silence")).await;
    assert!(
        matches!(&outcome, Outcome::Transient { error, reply: None, throttled: false }
            if error.ends_with("no answer within 1 s")),
        "{outcome:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn cr_lf_in_a_subject_or_a_name_cannot_add_a_header() {
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut transport = smtp_transport(dir.path(), &server.url());
    let injected = "Redmi 1S\r\nBcc: evil@example.net";
    let officer: Address = OFFICER.parse().unwrap();

    // lettre refuses CR/LF in a display name by panicking, so names go
    // through header_text, which makes them one line.
    let raw_name = Mailbox::new(Some(injected.into()), officer.clone());
    assert!(std::panic::catch_unwind(|| raw_name.to_string()).is_err());
    let name = header_text(injected);
    assert_eq!(name, "Redmi 1S Bcc: evil@example.net");

    // The subject goes in raw: lettre's own encoding must hold.
    let message = Message::builder()
        .from("advisories@clearance.invalid".parse().unwrap())
        .to(Mailbox::new(Some(name.clone()), officer))
        .subject(injected)
        .body("text".to_owned())
        .unwrap();
    assert_sent(&send(&mut transport, "a", &message).await);

    let received = server.messages();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.to, [OFFICER], "the envelope has only the recipient");
    let names = mail.header_names();
    assert!(
        !names.iter().any(|name| name.eq_ignore_ascii_case("bcc")),
        "{names:?}"
    );
    assert!(
        !mail
            .raw
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
        "{}",
        mail.raw
    );
    // One Subject header, on one line; its decoded text keeps the words.
    assert_eq!(names.iter().filter(|n| *n == "Subject").count(), 1);
    let subject_line = mail
        .raw
        .lines()
        .position(|line| line.starts_with("Subject:"))
        .expect("a Subject line");
    let next = mail.raw.lines().nth(subject_line + 1).unwrap_or_default();
    assert!(!next.starts_with([' ', '\t']), "not folded: {next:?}");
    let subject = mail.subject().expect("a subject");
    assert!(subject.contains("Bcc: evil@example.net"), "{subject:?}");
    let parsed = mail.parsed();
    let to = parsed.to().and_then(|to| to.first()).expect("a To header");
    assert_eq!(to.name(), Some(name.as_str()));
    assert_eq!(to.address(), Some(OFFICER));
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), None);
    let mut transport = Transport::from_settings(&settings);
    let first = advisory(OFFICER, "first version");
    let second = advisory(OFFICER, "second version");

    let outcome = send(&mut transport, "<row-1@clearance.invalid>", &first).await;
    let path = settings.mail_dir.join("_3Crow-1@clearance.invalid_3E.eml");
    assert_eq!(
        outcome,
        Outcome::Sent {
            reply: format!("written to {}", path.display())
        }
    );
    assert_eq!(std::fs::read(&path).unwrap(), first.formatted());

    // A resend of the same message replaces its file.
    assert!(matches!(
        send(&mut transport, "<row-1@clearance.invalid>", &second).await,
        Outcome::Sent { .. }
    ));
    assert_eq!(std::fs::read(&path).unwrap(), second.formatted());
    assert!(matches!(
        send(&mut transport, "<row-2@clearance.invalid>", &first).await,
        Outcome::Sent { .. }
    ));

    let mut names: Vec<String> = std::fs::read_dir(&settings.mail_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_3Crow-1@clearance.invalid_3E.eml",
            "_3Crow-2@clearance.invalid_3E.eml"
        ],
        "one file per message id, no temporary file left"
    );
}

/// The CA that signed the TLS test server's certificate for 127.0.0.1.
fn test_ca() -> String {
    format!("{}/tests/fixtures/smtp/ca.pem", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn starttls_required_encrypts_and_logs_in() {
    let server = MailServer::start_with(&["--tls", "starttls", "--login", "mailer@x:p:w/rd"]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "smtp://mailer%40x:p%3Aw%2Frd@127.0.0.1:{}?tls=required&ca={}",
        server.port(),
        test_ca()
    );
    let mut transport = smtp_transport(dir.path(), &url);

    assert_sent(&send(&mut transport, "a", &advisory(OFFICER, "over TLS")).await);
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "the message came over STARTTLS");
    assert_eq!(received[0].user.as_deref(), Some("mailer@x"));
}

#[tokio::test]
async fn implicit_tls_checks_the_certificate() {
    let server = MailServer::start_with(&["--tls", "implicit"]);
    let dir = tempfile::tempdir().unwrap();

    // Without the CA, the certificate is not trusted and nothing is sent.
    let untrusted = format!("smtps://127.0.0.1:{}", server.port());
    let outcome = send(
        &mut smtp_transport(dir.path(), &untrusted),
        "a",
        &advisory(OFFICER, "x"),
    )
    .await;
    assert!(
        matches!(&outcome, Outcome::Transient { error, reply: None, throttled: false }
            if error.starts_with("TLS with 127.0.0.1:") && error.contains("certificate")),
        "{outcome:?}"
    );

    let trusted = format!("{untrusted}?ca={}", test_ca());
    let mut transport = smtp_transport(dir.path(), &trusted);
    assert_sent(&send(&mut transport, "b", &advisory(OFFICER, "implicit")).await);
    assert_sent(&send(&mut transport, "c", &advisory(OFFICER, "again")).await);
    let received = server.messages();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|mail| mail.tls));
    assert_eq!(received[0].peer_port, received[1].peer_port);
}

#[tokio::test]
async fn tls_required_refuses_a_server_without_starttls_and_a_bad_login_waits() {
    let server = MailServer::start_with(&["--login", "mailer:right"]);
    let dir = tempfile::tempdir().unwrap();
    let message = advisory(OFFICER, "x");

    let url = format!("smtp://127.0.0.1:{}?tls=required", server.port());
    let outcome = send(&mut smtp_transport(dir.path(), &url), "a", &message).await;
    assert!(
        matches!(&outcome, Outcome::Transient { error, reply: None, .. }
            if error.contains("does not offer STARTTLS")),
        "{outcome:?}"
    );

    // A refused login is the relay's configuration, not this message's
    // fault: transient, with the server's reply.
    let url = format!("smtp://mailer:wrong@127.0.0.1:{}", server.port());
    let outcome = send(&mut smtp_transport(dir.path(), &url), "a", &message).await;
    assert!(
        matches!(&outcome, Outcome::Transient { reply: Some(reply), throttled: false, .. }
            if reply.starts_with("535 ")),
        "{outcome:?}"
    );
    assert!(server.messages().is_empty());

    let url = format!("smtp://mailer:right@127.0.0.1:{}", server.port());
    assert_sent(&send(&mut smtp_transport(dir.path(), &url), "a", &message).await);
    assert_eq!(server.messages()[0].user.as_deref(), Some("mailer"));
}
