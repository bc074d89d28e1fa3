//! Building the mails: what each says (templates, escaped), and the message
//! itself with headers no user text can forge.

use std::sync::LazyLock;

use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::Environment;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::header_text::header_text;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` templates escape every value; `.txt` ones do not need to.
    for (name, source) in [
        (
            "advisory.txt",
            include_str!("../../templates/mail/advisory.txt"),
        ),
        (
            "advisory.html",
            include_str!("../../templates/mail/advisory.html"),
        ),
        ("link.txt", include_str!("../../templates/mail/link.txt")),
        ("link.html", include_str!("../../templates/mail/link.html")),
        (
            "digest.txt",
            include_str!("../../templates/mail/digest.txt"),
        ),
        (
            "digest.html",
            include_str!("../../templates/mail/digest.html"),
        ),
    ] {
        env.add_template(name, source)
            .expect("the mail templates are valid");
    }
    env
});

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("cannot render the mail: {0}")]
    Template(#[from] minijinja::Error),
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// One decision as a mail lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionLine {
    /// "Xiaomi Redmi 1S", "All Xiaomi phones"
    pub target: String,
    /// "Not allowed before 6.3.1"
    pub decision: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceLine {
    pub title: String,
    pub source: String,
    pub observed: String,
    pub summary: String,
}

/// Everything an advisory mail says.
#[derive(Debug, Clone, Serialize)]
pub struct AdvisoryMail {
    /// `published`, `amended`, `withdrawn` or `reminder`.
    pub kind: &'static str,
    pub headline: String,
    pub reference: String,
    pub revision: i32,
    /// TLP:AMBER, AMBER+STRICT and RED are never sent in full.
    pub restricted: bool,
    pub tlp_label: String,
    pub severity: String,
    pub summary: String,
    /// The Markdown body as plain text, its links as footnotes.
    pub body_text: String,
    /// The Markdown body as sanitised HTML.
    pub body_html: String,
    pub decisions: Vec<DecisionLine>,
    /// For an amendment: how its decisions differ from the revision before.
    pub changes: Vec<String>,
    /// For an amendment: the revision before was restricted, so what it
    /// decided (and so what changed) is not told.
    pub earlier_unmailed: bool,
    pub what_to_do: Vec<String>,
    pub evidence: Vec<EvidenceLine>,
    pub withdrawn_reason: Option<String>,
    /// The advisory's page.
    pub advisory_url: String,
    /// The lookup page: after a withdrawal, where to see what applies now.
    pub lookup_url: String,
    pub acknowledge_url: Option<String>,
    pub unsubscribe_url: Option<String>,
    /// Who to ask (`CLEARANCE_CONTACT`).
    pub contact: Option<String>,
}

/// A mail that carries one link (confirm a subscription, manage it).
#[derive(Debug, Clone, Serialize)]
pub struct LinkMail {
    pub headline: String,
    pub text: String,
    pub action: String,
    pub url: String,
    pub unsubscribe_url: Option<String>,
}

/// One advisory in a daily digest.
#[derive(Debug, Clone, Serialize)]
pub struct DigestItem {
    pub reference: String,
    pub title: String,
    /// Said of an advisory that no longer applies (withdrawn, superseded).
    pub no_longer_applies: Option<&'static str>,
    pub severity: String,
    pub summary: String,
    pub url: String,
}

/// A subscriber's daily digest.
#[derive(Debug, Clone, Serialize)]
pub struct DigestMail {
    pub headline: String,
    pub items: Vec<DigestItem>,
    pub unsubscribe_url: String,
}

/// A mail's subject and its two alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Rendered {
    /// The mail with each stand-in of `links` (stand-in, URL) replaced by
    /// its URL, escaped in the HTML as the template would have.
    pub fn with_links(&self, links: &[(&str, &str)]) -> Self {
        let mut mail = self.clone();
        for (slot, url) in links {
            mail.text = mail.text.replace(slot, url);
            mail.html = mail
                .html
                .replace(slot, &minijinja::HtmlEscape(url).to_string());
        }
        mail
    }
}

pub fn render_advisory(mail: &AdvisoryMail) -> Result<Rendered, MessageError> {
    Ok(Rendered {
        subject: format!("[{}] {}", mail.reference, mail.headline),
        text: TEMPLATES.get_template("advisory.txt")?.render(mail)?,
        html: TEMPLATES.get_template("advisory.html")?.render(mail)?,
    })
}

pub fn render_link(mail: &LinkMail) -> Result<Rendered, MessageError> {
    Ok(Rendered {
        subject: mail.headline.clone(),
        text: TEMPLATES.get_template("link.txt")?.render(mail)?,
        html: TEMPLATES.get_template("link.html")?.render(mail)?,
    })
}

pub fn render_digest(mail: &DigestMail) -> Result<Rendered, MessageError> {
    Ok(Rendered {
        subject: mail.headline.clone(),
        text: TEMPLATES.get_template("digest.txt")?.render(mail)?,
        html: TEMPLATES.get_template("digest.html")?.render(mail)?,
    })
}

/// RFC 8058 one-click unsubscription, for subscription mail.
#[derive(Debug, Clone)]
pub struct ListHeaders {
    pub unsubscribe_url: String,
    /// e.g. `advisories.clearance.example.org`
    pub list_id: String,
}

/// Who sends, to whom, and the stable identity of the message.
#[derive(Debug, Clone)]
pub struct Addressing {
    pub from: Mailbox,
    pub to: Mailbox,
    /// Without angle brackets: `published.….r1.…@host`.
    pub message_id: String,
    pub list: Option<ListHeaders>,
}

/// A Message-ID that stays the same for the same outbox row, so that a mail
/// sent again after a crash can be recognised as a duplicate.
pub fn stable_message_id(parts: &[&str], host: &str) -> String {
    let digest = hex::encode(Sha256::digest(parts.join("\n").as_bytes()));
    format!(
        "{}.{}@{host}",
        parts.first().copied().unwrap_or("mail"),
        &digest[..32]
    )
}

/// The mailbox `name <address>`; the name is encoded by the builder, so a
/// line break in it can never start a header.
pub fn mailbox(address: &str, name: Option<&str>) -> Result<Mailbox, MessageError> {
    let address = address
        .parse()
        .map_err(|e| MessageError::Build(format!("bad address `{address}`: {e}")))?;
    Ok(Mailbox::new(name.map(header_text), address))
}

/// The message: text and HTML alternatives, and the headers every mail of
/// ours carries.
pub fn build(addressing: &Addressing, rendered: &Rendered) -> Result<Message, MessageError> {
    let build_error = |e: lettre::error::Error| MessageError::Build(e.to_string());
    // Given, the envelope is not parsed back out of the headers just
    // written (a tenth of composing a message, in perf).
    let envelope = Envelope::new(
        Some(addressing.from.email.clone()),
        vec![addressing.to.email.clone()],
    )
    .map_err(|e| MessageError::Build(e.to_string()))?;
    let mut message = Message::builder()
        .envelope(envelope)
        .from(addressing.from.clone())
        .to(addressing.to.clone())
        // The builder encodes the subject; flattening control characters
        // first keeps it one readable line whatever a title holds.
        .subject(header_text(&rendered.subject))
        .message_id(Some(format!("<{}>", addressing.message_id)))
        .date_now()
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html.clone()),
                ),
        )
        .map_err(build_error)?;
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".into(),
    ));
    if let Some(list) = &addressing.list {
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{}>", list.unsubscribe_url),
        ));
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".into(),
        ));
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Id"),
            format!("Clearance advisories <{}>", list.list_id),
        ));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(restricted: bool) -> AdvisoryMail {
        AdvisoryMail {
            kind: "published",
            headline: "Prohibited: Xiaomi Redmi 1S".into(),
            reference: "CLR-2026-0001".into(),
            revision: 1,
            restricted,
            tlp_label: if restricted {
                "RED".into()
            } else {
                "CLEAR".into()
            },
            severity: "high".into(),
            summary: "Officers are to refrain from using it.".into(),
            body_text: "It sends contacts abroad & more.".into(),
            body_html: crate::domain::markdown::to_html("It sends **contacts** abroad & more."),
            decisions: vec![DecisionLine {
                target: "Xiaomi Redmi 1S".into(),
                decision: "Not allowed before 6.3.1".into(),
            }],
            changes: vec![],
            earlier_unmailed: false,
            what_to_do: vec!["Do not use a Xiaomi Redmi 1S.".into()],
            evidence: vec![],
            withdrawn_reason: None,
            advisory_url: "https://clearance.example.org/a/1".into(),
            lookup_url: "https://clearance.example.org/lookup".into(),
            acknowledge_url: Some("https://clearance.example.org/acknowledge?token=t".into()),
            unsubscribe_url: None,
            contact: Some("Security office, ext. 4242".into()),
        }
    }

    #[test]
    fn html_shows_the_rendered_body_and_text_the_plain_one() {
        let rendered = render_advisory(&sample(false)).unwrap();
        assert_eq!(
            rendered.subject,
            "[CLR-2026-0001] Prohibited: Xiaomi Redmi 1S"
        );
        assert!(
            rendered
                .html
                .contains("<p>It sends <strong>contacts</strong> abroad &amp; more.</p>"),
            "{}",
            rendered.html
        );
        assert!(
            rendered
                .html
                .contains("Xiaomi Redmi 1S: <strong>Not allowed before 6.3.1</strong>")
        );
        assert!(rendered.html.contains("Security office, ext. 4242"));
        assert!(rendered.text.contains("It sends contacts abroad & more."));
        assert!(rendered.text.contains("acknowledge?token=t"));
    }

    #[test]
    fn a_restricted_advisory_sends_no_content() {
        let rendered = render_advisory(&sample(true)).unwrap();
        for part in [&rendered.text, &rendered.html] {
            assert!(!part.contains("refrain"), "{part}");
            assert!(!part.contains("contacts"), "{part}");
            assert!(part.contains("TLP:RED"));
        }
        // (HTML escapes the slashes of the link; a browser reads it back.)
        assert!(rendered.text.contains("https://clearance.example.org/a/1"));
    }

    #[test]
    fn a_line_break_in_a_title_or_name_adds_no_header() {
        let mut mail = sample(false);
        mail.headline = "Evil\r\nBcc: victim@example.org".into();
        let rendered = render_advisory(&mail).unwrap();
        let addressing = Addressing {
            from: mailbox("advisories@clearance.invalid", Some("Clearance")).unwrap(),
            to: mailbox("officer@example.org", Some("Name\r\nBcc: x@example.org")).unwrap(),
            message_id: stable_message_id(&["published", "a", "1", "officer@example.org"], "h"),
            list: None,
        };
        let raw = String::from_utf8(build(&addressing, &rendered).unwrap().formatted()).unwrap();
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        assert!(headers.contains("Auto-Submitted: auto-generated"));
    }

    #[test]
    fn message_ids_are_stable_and_distinct() {
        let a = stable_message_id(&["published", "adv", "1", "a@x"], "host");
        assert_eq!(
            a,
            stable_message_id(&["published", "adv", "1", "a@x"], "host")
        );
        assert_ne!(
            a,
            stable_message_id(&["published", "adv", "2", "a@x"], "host")
        );
        assert!(a.starts_with("published.") && a.ends_with("@host"));
    }
}
