//! From an outbox row to the message to send: loads what the mail speaks of
//! (the advisory revision, its models and evidence, the subscription), signs
//! the links it carries, and renders it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use uuid::Uuid;

use super::message::{
    Addressing, AdvisoryMail, DecisionLine, DigestItem, DigestMail, EvidenceLine, LinkMail,
    ListHeaders, MessageError, Rendered, build, mailbox, render_advisory, render_digest,
    render_link, stable_message_id,
};
use crate::config::Settings;
use crate::db::advisories::{self, AdvisoryRecord, RevisionRecord};
use crate::db::digests::Listed;
use crate::db::outbox::Claimed;
use crate::db::{DbConnection, DbError, evidence, subscriptions};
use crate::domain::advisory::{Viewer, advisory_page_url, lookup_page_url};
use crate::domain::clearance::{Decision, Scope};
use crate::domain::mail::{MailKind, Recipient};
use crate::domain::{markdown, wording};
use crate::links::{self, LinkClaims, LinkPurpose, LinkSubject, LinkTokens};

/// A message ready for the transport.
pub struct Composed {
    pub message_id: String,
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

/// What to do with a claimed row.
pub enum Plan {
    Send(Composed),
    /// The subscriber is gone: nothing to send.
    Suppress,
    /// The mail cannot be built (e.g. an address the relay would refuse).
    Fail(String),
}

/// What the mails of one batch speak of, loaded once per batch.
#[derive(Default)]
pub struct Context {
    advisories: HashMap<Uuid, AdvisoryRecord>,
    revisions: HashMap<(Uuid, i32), RevisionRecord>,
    /// Each revision's body as text and as HTML, rendered once for all its
    /// recipients.
    bodies: HashMap<(Uuid, i32), (String, String)>,
    evidence: HashMap<Uuid, EvidenceLine>,
    /// Subscriptions that still want mail.
    confirmed: HashMap<Uuid, bool>,
    /// Each advisory mail rendered once for the batch, its per-recipient
    /// links left as slots.
    rendered: Mutex<HashMap<RenderKey, Arc<Rendered>>>,
}

/// What an advisory mail's rendering depends on besides its recipient's
/// links: kind, advisory, revision, and whether it carries an acknowledgement
/// link and an unsubscribe link.
type RenderKey = (MailKind, Uuid, i32, bool, bool);

/// Stand-ins for the links that differ per recipient, in a mail rendered
/// once for all of them; plain words, so no template escapes them.
const ACKNOWLEDGE_SLOT: &str = "clearance-slot-acknowledge-url";
const UNSUBSCRIBE_SLOT: &str = "clearance-slot-unsubscribe-url";

impl Context {
    pub fn load(conn: &mut DbConnection, rows: &[Claimed]) -> Result<Self, DbError> {
        let mut context = Self::default();
        for row in rows {
            for listed in digest_items(row) {
                if !context.advisories.contains_key(&listed.advisory_id) {
                    context.load_advisory(conn, listed.advisory_id)?;
                }
            }
            if let (Some(id), Some(revision)) = (row.advisory_id.map(|a| a.0), row.revision) {
                if !context.advisories.contains_key(&id) {
                    context.load_advisory(conn, id)?;
                }
                let Some(content) = context
                    .revisions
                    .get(&(id, revision))
                    .map(|r| r.content.clone())
                else {
                    continue;
                };
                for evidence_id in &content.evidence_ids {
                    if !context.evidence.contains_key(evidence_id) {
                        let found = evidence::get(conn, *evidence_id)?;
                        context.evidence.insert(
                            *evidence_id,
                            EvidenceLine {
                                title: found.title,
                                source: found.source,
                                observed: found.observed_at.format("%Y-%m-%d").to_string(),
                                summary: found.summary,
                            },
                        );
                    }
                }
            }
            if let Some(subscription) = row.subscription_id.map(|s| s.0)
                && !context.confirmed.contains_key(&subscription)
            {
                let wanted = subscriptions::wants_mail(conn, subscription)?;
                context.confirmed.insert(subscription, wanted);
            }
        }
        Ok(context)
    }
}

impl Context {
    /// The mail for `key`, rendered by `render` the first time it is asked
    /// for.
    fn rendered_once(
        &self,
        key: RenderKey,
        render: impl FnOnce() -> Result<Rendered, MessageError>,
    ) -> Result<Arc<Rendered>, MessageError> {
        let mut rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mail) = rendered.get(&key) {
            return Ok(mail.clone());
        }
        let mail = Arc::new(render()?);
        rendered.insert(key, mail.clone());
        Ok(mail)
    }

    fn add_revision(&mut self, advisory: Uuid, revision: RevisionRecord) {
        let body = &revision.content.body;
        let rendered = (markdown::to_text(body), markdown::to_html(body));
        self.bodies.insert((advisory, revision.number), rendered);
        self.revisions.insert((advisory, revision.number), revision);
    }

    fn load_advisory(&mut self, conn: &mut DbConnection, id: Uuid) -> Result<(), DbError> {
        let record = advisories::get(conn, id)?;
        for published in advisories::published_revisions(conn, id)? {
            self.add_revision(id, published);
        }
        self.advisories.insert(id, record);
        Ok(())
    }
}

/// What a digest row lists (nothing for other rows).
fn digest_items(row: &Claimed) -> Vec<Listed> {
    row.payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default()
}

/// Builds the mail of one claimed row.
pub fn compose(
    row: &Claimed,
    context: &Context,
    settings: &Settings,
    links: &LinkTokens,
    now: DateTime<Utc>,
) -> Plan {
    match try_compose(row, context, settings, links, now) {
        Ok(plan) => plan,
        Err(error) => Plan::Fail(error),
    }
}

fn try_compose(
    row: &Claimed,
    context: &Context,
    settings: &Settings,
    links: &LinkTokens,
    now: DateTime<Utc>,
) -> Result<Plan, String> {
    let kind: MailKind = row.kind.parse()?;
    let recipient: Recipient = row.audience.parse()?;
    let subscription = row.subscription_id.map(|s| s.0);
    let link = |purpose: LinkPurpose, subject: LinkSubject| {
        let token = links.issue(&LinkClaims::new(purpose, &row.email, subject, now));
        links::url(&settings.public_url, purpose, &token).to_string()
    };
    // Subscription mail other than the confirmation itself goes only to
    // addresses that still want it.
    let unsubscribe = match (recipient, subscription) {
        (Recipient::Subscriber, Some(id)) => {
            let wanted = context.confirmed.get(&id).copied().unwrap_or(false);
            if !wanted && kind != MailKind::Confirm && kind != MailKind::Manage {
                return Ok(Plan::Suppress);
            }
            Some(link(
                LinkPurpose::Unsubscribe,
                LinkSubject::Subscription(id),
            ))
        }
        _ => None,
    };
    let host = settings.public_url.host_str().unwrap_or("localhost");
    let rendered = match (kind, row.advisory_id.map(|a| a.0), row.revision) {
        (MailKind::Digest, _, _) => {
            let items: Vec<DigestItem> = digest_items(row)
                .iter()
                .filter_map(|listed| {
                    let record = context.advisories.get(&listed.advisory_id)?;
                    let revision = context
                        .revisions
                        .get(&(listed.advisory_id, listed.revision))?;
                    Some(DigestItem {
                        reference: record.reference.clone()?,
                        title: revision.content.title.to_string(),
                        no_longer_applies: wording::no_longer_applies(record.lifecycle.state)
                            .map(|(_, sentence)| sentence),
                        severity: revision.content.severity.to_string(),
                        summary: revision.content.summary.to_string(),
                        url: advisory_page_url(&settings.public_url, record.reference.as_deref()?),
                    })
                })
                .collect();
            let count = items.len();
            render_digest(&DigestMail {
                headline: format!(
                    "Clearance digest, {}: {count} advisor{}",
                    now.format("%Y-%m-%d"),
                    if count == 1 { "y" } else { "ies" },
                ),
                items,
                unsubscribe_url: unsubscribe.clone().unwrap_or_default(),
            })
            .map_err(|e| e.to_string())?
        }
        (MailKind::Confirm | MailKind::Manage, _, _) => {
            let id = subscription.ok_or("a subscription mail without a subscription")?;
            render_link(&link_mail(kind, id, &link, unsubscribe.clone()))
                .map_err(|e| e.to_string())?
        }
        (_, Some(advisory_id), Some(revision)) => {
            let record = context
                .advisories
                .get(&advisory_id)
                .ok_or("the advisory is gone")?;
            let published = context
                .revisions
                .get(&(advisory_id, revision))
                .ok_or("the revision was never published")?;
            let acknowledge = (published.content.acknowledgement_required
                && recipient == Recipient::Personnel
                && kind != MailKind::Withdrawn)
                .then(|| {
                    link(
                        LinkPurpose::Acknowledge,
                        LinkSubject::Revision {
                            advisory_id,
                            revision,
                        },
                    )
                });
            let key = (
                kind,
                advisory_id,
                revision,
                acknowledge.is_some(),
                unsubscribe.is_some(),
            );
            let slots = context
                .rendered_once(key, || {
                    render_advisory(&advisory_mail(
                        kind,
                        record,
                        published,
                        context,
                        settings,
                        acknowledge.as_ref().map(|_| ACKNOWLEDGE_SLOT.to_owned()),
                        unsubscribe.as_ref().map(|_| UNSUBSCRIBE_SLOT.to_owned()),
                    ))
                })
                .map_err(|e| e.to_string())?;
            let mut links = Vec::new();
            links.extend(acknowledge.as_deref().map(|url| (ACKNOWLEDGE_SLOT, url)));
            links.extend(unsubscribe.as_deref().map(|url| (UNSUBSCRIBE_SLOT, url)));
            slots.with_links(&links)
        }
        _ => return Err(format!("a {kind} mail without its advisory")),
    };
    let message_id = match (row.advisory_id, row.revision) {
        (Some(advisory), Some(revision)) => stable_message_id(
            &[
                kind.as_str(),
                &advisory.0.to_string(),
                &revision.to_string(),
                &row.email_key,
            ],
            host,
        ),
        _ => stable_message_id(&[kind.as_str(), &row.id.to_string(), &row.email_key], host),
    };
    let addressing = Addressing {
        from: settings.mail_from.clone(),
        to: mailbox(&row.email, row.name.as_deref()).map_err(|e| e.to_string())?,
        message_id: message_id.clone(),
        list: unsubscribe.map(|url| ListHeaders {
            unsubscribe_url: url,
            list_id: format!("advisories.{host}"),
        }),
    };
    let message = build(&addressing, &rendered).map_err(|e| e.to_string())?;
    Ok(Plan::Send(Composed {
        message_id,
        envelope: message.envelope().clone(),
        bytes: message.formatted(),
    }))
}

fn link_mail(
    kind: MailKind,
    subscription: Uuid,
    link: &dyn Fn(LinkPurpose, LinkSubject) -> String,
    unsubscribe: Option<String>,
) -> LinkMail {
    let subject = LinkSubject::Subscription(subscription);
    if kind == MailKind::Confirm {
        LinkMail {
            headline: "Confirm your subscription to Clearance advisories".into(),
            text: "Someone (you, we hope) asked to receive Clearance device advisories at this \
                   address. Nothing will be sent until you confirm. The link is good for 48 hours."
                .into(),
            action: "Confirm the subscription".into(),
            url: link(LinkPurpose::Confirm, subject),
            unsubscribe_url: None,
        }
    } else {
        LinkMail {
            headline: "Your subscription to Clearance advisories".into(),
            text: "Someone asked to subscribe this address, which already receives Clearance \
                   advisories. Nothing was changed. You can review the subscription, or end it."
                .into(),
            action: "Manage the subscription".into(),
            url: link(LinkPurpose::Manage, subject),
            unsubscribe_url: unsubscribe,
        }
    }
}

fn advisory_mail(
    kind: MailKind,
    record: &AdvisoryRecord,
    revision: &RevisionRecord,
    context: &Context,
    settings: &Settings,
    acknowledge_url: Option<String>,
    unsubscribe_url: Option<String>,
) -> AdvisoryMail {
    let content = &revision.content;
    let previous = context.revisions.get(&(record.id, revision.number - 1));
    let body = context
        .bodies
        .get(&(record.id, revision.number))
        .cloned()
        .unwrap_or_default();
    // A target the amendment dropped is named by the revision before.
    let name = |scope: Scope| {
        revision
            .target_names
            .get(&scope)
            .or_else(|| previous.and_then(|p| p.target_names.get(&scope)))
            .cloned()
            .unwrap_or_default()
    };
    let decisions: Vec<DecisionLine> = content
        .decisions
        .iter()
        .map(|d| DecisionLine {
            target: name(d.scope),
            decision: wording::decision_words(d),
        })
        .collect();
    // "Not allowed: Xiaomi Redmi 1S" when the advisory decides one thing
    // for every version; its title otherwise.
    let mut kinds: Vec<Decision> = content.decisions.iter().map(|d| d.decision).collect();
    kinds.dedup();
    let names: Vec<String> = wording::targets(&content.decisions)
        .into_iter()
        .map(name)
        .collect();
    let every_version = content.decisions.iter().all(|d| d.firmware.is_none());
    // A restricted advisory is never sent in full: its title, not what it
    // decides about which phones.
    let restricted = !Viewer::Public.may_read(content.tlp);
    let topic = match kinds.as_slice() {
        [one] if every_version && !restricted => format!(
            "{}: {}",
            wording::status_words((*one).into()),
            names.join(", ")
        ),
        _ => content.title.to_string(),
    };
    let headline = match kind {
        MailKind::Amended => format!("Updated: {topic}"),
        MailKind::Withdrawn => format!("Withdrawn: {topic}"),
        MailKind::Reminder => format!("Please acknowledge: {topic}"),
        _ => topic,
    };
    // What an earlier restricted revision decided is not told by mail,
    // not even as the "before" of a change.
    let earlier_unmailed = kind == MailKind::Amended
        && previous.is_some_and(|before| !Viewer::Public.may_read(before.content.tlp));
    let changes = match (kind, previous) {
        (MailKind::Amended, Some(before)) if !earlier_unmailed => {
            wording::decision_changes(&before.content.decisions, &content.decisions, name)
        }
        _ => Vec::new(),
    };
    let reference = record.reference.clone().unwrap_or_default();
    AdvisoryMail {
        kind: kind.as_str(),
        headline,
        advisory_url: advisory_page_url(&settings.public_url, &reference),
        lookup_url: lookup_page_url(&settings.public_url),
        reference,
        revision: revision.number,
        restricted,
        tlp_label: content.tlp.as_str().replace('_', "+").to_uppercase(),
        severity: content.severity.to_string(),
        summary: content.summary.to_string(),
        body_text: body.0.clone(),
        body_html: body.1.clone(),
        what_to_do: wording::advisory_says(&content.decisions, name),
        decisions,
        changes,
        earlier_unmailed,
        evidence: content
            .evidence_ids
            .iter()
            .filter_map(|id| context.evidence.get(id).cloned())
            .collect(),
        withdrawn_reason: record.withdrawn.as_ref().map(|w| w.reason.clone()),
        acknowledge_url,
        unsubscribe_url,
        contact: settings.contact.clone(),
    }
}

#[cfg(test)]
mod tests {
    //! Both parts of the advisory mails people receive, as snapshots
    //! (`src/mail/snapshots/`), from fixed inputs: review a change of
    //! wording with `cargo insta review`.

    use chrono::TimeZone;

    use super::*;
    use crate::config::DatabaseUrl;
    use crate::db::advisories::Withdrawal;
    use crate::domain::advisory::{
        AdvisoryContent, AdvisoryState, Audience, DecisionSpec, Lifecycle, Stage, Tlp,
    };
    use crate::domain::firmware::FirmwareRange;
    use crate::domain::registry::Category;
    use crate::domain::severity::Severity;
    use crate::domain::text::{Line, Prose};

    const REDMI: Uuid = Uuid::from_u128(0x10);
    const IPHONE: Uuid = Uuid::from_u128(0x11);
    const XIAOMI: Uuid = Uuid::from_u128(0x20);
    const EVIDENCE: Uuid = Uuid::from_u128(0x30);
    const ADVISORY: Uuid = Uuid::from_u128(0x40);

    const BODY: &str = "## What the lab found\n\n\
        With the cloud messaging service on, the phone sends the **carrier, phone number, \
        IMEI, contacts and SMS numbers** to servers in Beijing ([the report]\
        (https://www.f-secure.com/weblog/archives/00002731.html)).\n\n\
        **Do not use this phone.** Remove its SIM and hand it in.\n\n\
        <script>alert('x')</script>";

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 9, 0, 0).unwrap()
    }

    fn decision(scope: Scope, decision: Decision, firmware: Option<&str>) -> DecisionSpec {
        DecisionSpec {
            scope,
            decision,
            conditions: None,
            firmware: firmware.map(|f| FirmwareRange::parse(f).unwrap()),
        }
    }

    fn revision(
        number: i32,
        title: &str,
        tlp: Tlp,
        decisions: Vec<DecisionSpec>,
    ) -> RevisionRecord {
        let target_names = decisions
            .iter()
            .map(|d| {
                let name = match d.scope {
                    Scope::Model(id) if id == IPHONE => "Apple iPhone 5s",
                    Scope::Model(_) => "Xiaomi Redmi 1S",
                    Scope::Manufacturer { .. } => "Xiaomi",
                };
                (d.scope, wording::target_name(d.scope, name))
            })
            .collect();
        RevisionRecord {
            number,
            stage: Stage::Published,
            content: AdvisoryContent {
                title: Line::parse(title).unwrap(),
                summary: Prose::parse("Officers and their families are to follow this advisory.")
                    .unwrap(),
                body: BODY.into(),
                severity: Severity::High,
                tlp,
                audience: Audience::default(),
                acknowledgement_required: true,
                decisions,
                evidence_ids: vec![EVIDENCE],
                supersedes: Vec::new(),
                effective_at: None,
                review_due: None,
            },
            names: HashMap::new(),
            target_names,
            author: "ana".into(),
            contributors: vec!["ana".into()],
            rejection_reason: None,
            submitted: None,
            approved: None,
            published: Some(("bob".into(), at(number as u32))),
            created_at: at(1),
            updated_at: at(number as u32),
        }
    }

    /// The advisory whose last revision is the last of `revisions`, what its
    /// mails speak of, and the settings they are sent under.
    fn fixture(
        revisions: Vec<RevisionRecord>,
        withdrawn: Option<&str>,
    ) -> (AdvisoryRecord, Context, Settings) {
        let current = revisions.last().unwrap().clone();
        let record = AdvisoryRecord {
            id: ADVISORY,
            reference: Some("CLR-2026-0001".into()),
            lifecycle: Lifecycle {
                state: if withdrawn.is_some() {
                    AdvisoryState::Withdrawn
                } else {
                    AdvisoryState::Published
                },
                working: None,
            },
            author: "ana".into(),
            author_name: "Ana".into(),
            current: Some(current),
            working: None,
            withdrawn: withdrawn.map(|reason| Withdrawal {
                reason: reason.into(),
                by: "bob".into(),
                at: at(20),
            }),
            superseded_by: None,
            superseded_at: None,
            version: 1,
            created_at: at(1),
            updated_at: at(20),
        };
        let mut context = Context::default();
        for r in revisions {
            context.add_revision(ADVISORY, r);
        }
        context.evidence.insert(
            EVIDENCE,
            EvidenceLine {
                title: "Redmi 1S sends personal data to servers in Beijing".into(),
                source: "F-Secure Labs".into(),
                observed: "2014-07-30".into(),
                summary: "The phone sends the carrier, phone number, IMEI and contacts.".into(),
            },
        );
        let mut settings = Settings::for_database(
            DatabaseUrl::Sqlite("c.db".into()),
            std::path::Path::new("."),
        );
        settings.public_url = url::Url::parse("https://clearance.example.org/").unwrap();
        settings.contact = Some("Security office, ext. 4242, security@example.org".into());
        (record, context, settings)
    }

    /// The mail of `kind` about the last of `revisions`.
    fn mail(kind: MailKind, revisions: Vec<RevisionRecord>, withdrawn: Option<&str>) -> String {
        let (record, context, settings) = fixture(revisions, withdrawn);
        let current = record.current.clone().unwrap();
        let acknowledge = (kind != MailKind::Withdrawn)
            .then(|| "https://clearance.example.org/acknowledge?token=TOKEN".to_owned());
        let rendered = render_advisory(&advisory_mail(
            kind,
            &record,
            &current,
            &context,
            &settings,
            acknowledge,
            None,
        ))
        .unwrap();
        format!(
            "Subject: {}\n\n--- text/plain ---\n{}\n--- text/html ---\n{}",
            rendered.subject, rendered.text, rendered.html
        )
    }

    /// The batch renders the mail once, and each recipient still gets a
    /// mail that is theirs: their address, their own acknowledgement link
    /// (in both parts), the same words.
    #[test]
    fn recipients_of_one_batch_get_their_own_links() {
        let (record, mut context, settings) = fixture(vec![prohibited_redmi()], None);
        context.advisories.insert(ADVISORY, record);
        let links = LinkTokens::new(&[7; 32]);
        let row = |id: i64, email: &str| Claimed {
            id,
            kind: "published".into(),
            advisory_id: Some(crate::db::types::DbId(ADVISORY)),
            revision: Some(1),
            email: email.into(),
            email_key: email.into(),
            name: None,
            audience: "personnel".into(),
            subscription_id: None,
            attempts: 0,
            payload: None,
        };
        let parts = |email: &str, id| {
            let Plan::Send(mail) = compose(&row(id, email), &context, &settings, &links, at(2))
            else {
                panic!("a mail to {email}");
            };
            let message = mail_parser::MessageParser::default()
                .parse(&mail.bytes)
                .unwrap();
            let text = message.body_text(0).unwrap().into_owned();
            let html = message.body_html(0).unwrap().into_owned();
            let token = |body: &str| {
                let start = body.find("acknowledge?token=").expect("a link") + 18;
                let end = body[start..]
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                    })
                    .map_or(body.len(), |n| start + n);
                body[start..end].to_owned()
            };
            let (in_text, in_html) = (token(&text), token(&html));
            assert_eq!(in_text, in_html, "one link in both parts");
            let claims = links.verify(&in_text, LinkPurpose::Acknowledge).unwrap();
            (claims.email_key, text.replace(&in_text, "TOKEN"))
        };
        let (first, first_text) = parts("ana@example.org", 1);
        let (second, second_text) = parts("bob@example.org", 2);
        assert_eq!(first, "ana@example.org");
        assert_eq!(second, "bob@example.org");
        assert_eq!(first_text, second_text);
        assert_eq!(context.rendered.lock().unwrap().len(), 1);
    }

    fn prohibited_redmi() -> RevisionRecord {
        revision(
            1,
            "Do not use Xiaomi Redmi 1S phones",
            Tlp::Clear,
            vec![decision(Scope::Model(REDMI), Decision::Prohibited, None)],
        )
    }

    #[test]
    fn a_prohibition() {
        insta::assert_snapshot!(mail(MailKind::Published, vec![prohibited_redmi()], None));
    }

    #[test]
    fn an_approval_from_a_firmware_version() {
        let approval = revision(
            1,
            "iPhone 5s: allowed from iOS 7.1.2",
            Tlp::Clear,
            vec![decision(
                Scope::Model(IPHONE),
                Decision::Approved,
                Some(">=7.1.2"),
            )],
        );
        insta::assert_snapshot!(mail(MailKind::Published, vec![approval], None));
    }

    #[test]
    fn a_maker_wide_prohibition() {
        let every_phone = Scope::Manufacturer {
            id: XIAOMI,
            category: Some(Category::Phone),
        };
        let circular = revision(
            1,
            "Refrain from using Xiaomi phones",
            Tlp::Clear,
            vec![decision(every_phone, Decision::Prohibited, None)],
        );
        insta::assert_snapshot!(mail(MailKind::Published, vec![circular], None));
    }

    #[test]
    fn an_amendment() {
        let fixed = revision(
            2,
            "Redmi 1S: allowed from firmware 6.3.1",
            Tlp::Clear,
            vec![
                decision(Scope::Model(REDMI), Decision::Prohibited, Some("<6.3.1")),
                decision(Scope::Model(REDMI), Decision::Approved, Some(">=6.3.1")),
            ],
        );
        let text = mail(MailKind::Amended, vec![prohibited_redmi(), fixed], None);
        assert!(
            !text.contains("Do not use a Xiaomi Redmi 1S"),
            "never both ways"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_withdrawal() {
        insta::assert_snapshot!(mail(
            MailKind::Withdrawn,
            vec![prohibited_redmi()],
            Some("The national agency's own tests found no leak after the update.")
        ));
    }

    #[test]
    fn a_restricted_advisory_says_nothing_of_itself() {
        let mut amber = prohibited_redmi();
        amber.content.tlp = Tlp::Amber;
        let text = mail(MailKind::Published, vec![amber.clone()], None);
        for absent in [
            "Beijing",
            "Do not use this phone",
            "Redmi 1S sends",
            "Not allowed",
        ] {
            assert!(!text.contains(absent), "{absent}: {text}");
        }
        assert!(text.contains("https://clearance.example.org/advisories/CLR-2026-0001"));
        // Its subject is its title, like its heading, in every kind of mail.
        for kind in [MailKind::Published, MailKind::Amended, MailKind::Reminder] {
            let text = mail(kind, vec![amber.clone()], None);
            let subject = text.lines().next().unwrap();
            assert!(
                subject.ends_with("Do not use Xiaomi Redmi 1S phones"),
                "{subject}"
            );
        }
    }

    /// An amendment that makes a restricted advisory public tells what it
    /// decides now, never what the restricted revision decided.
    #[test]
    fn an_amendment_of_a_restricted_revision_keeps_the_earlier_decisions_out() {
        let mut amber = prohibited_redmi();
        amber.content.tlp = Tlp::Amber;
        let clear = revision(
            2,
            "Xiaomi Redmi 1S: allowed",
            Tlp::Clear,
            vec![decision(Scope::Model(REDMI), Decision::Approved, None)],
        );
        let text = mail(MailKind::Amended, vec![amber, clear], None);
        assert!(!text.to_lowercase().contains("not allowed"), "{text}");
        assert!(!text.contains("→"), "{text}");
        assert!(
            text.contains("Its earlier revision was not sent by mail"),
            "{text}"
        );
        assert!(text.contains("Xiaomi Redmi 1S: Allowed"), "{text}");
    }
}
