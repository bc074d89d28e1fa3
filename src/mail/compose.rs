//! From an outbox row to the message to send: loads what the mail speaks of
//! (the advisory revision, its models and evidence, the subscription), signs
//! the links it carries, and renders it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use uuid::Uuid;

use super::message::{
    Addressing, AdvisoryMail, DecisionLine, DigestItem, DigestMail, EvidenceLine, LinkMail,
    ListHeaders, build, mailbox, render_advisory, render_digest, render_link, stable_message_id,
};
use crate::config::Settings;
use crate::db::advisories::{self, AdvisoryRecord, RevisionRecord};
use crate::db::digests::Listed;
use crate::db::outbox::Claimed;
use crate::db::{DbConnection, DbError, evidence, manufacturers, models, subscriptions};
use crate::domain::advisory::{DecisionSpec, Tlp};
use crate::domain::clearance::{Decision, Scope};
use crate::domain::mail::{MailKind, Recipient};
use crate::domain::wording;
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
    /// What each model and maker a decision names is called in mail.
    target_names: HashMap<Scope, String>,
    evidence: HashMap<Uuid, EvidenceLine>,
    /// Subscriptions that still want mail.
    confirmed: HashMap<Uuid, bool>,
}

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
                for decision in &content.decisions {
                    if let Entry::Vacant(entry) = context.target_names.entry(decision.scope) {
                        let name = match decision.scope {
                            Scope::Model(id) => {
                                let model = models::get(conn, id)?;
                                format!("{} {}", model.manufacturer.name, model.name)
                            }
                            Scope::Manufacturer { id, .. } => manufacturers::get(conn, id)?.name,
                        };
                        entry.insert(wording::target_name(decision.scope, &name));
                    }
                }
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
    fn load_advisory(&mut self, conn: &mut DbConnection, id: Uuid) -> Result<(), DbError> {
        let record = advisories::get(conn, id)?;
        for published in advisories::published_revisions(conn, id)? {
            self.revisions.insert((id, published.number), published);
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
    let base = settings.public_url.as_str().trim_end_matches('/');
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
                        reference: record.reference.clone().unwrap_or_default(),
                        title: revision.content.title.to_string(),
                        severity: revision.content.severity.to_string(),
                        summary: revision.content.summary.to_string(),
                        url: format!("{base}/api/v1/advisories/{}", record.id),
                    })
                })
                .collect();
            let count = items.len();
            render_digest(&DigestMail {
                headline: format!(
                    "Clearance: {count} new advisor{} for {}",
                    if count == 1 { "y" } else { "ies" },
                    now.format("%Y-%m-%d")
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
            let mail = advisory_mail(
                kind,
                record,
                published,
                context,
                settings,
                acknowledge,
                unsubscribe.clone(),
            );
            render_advisory(&mail).map_err(|e| e.to_string())?
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
        from: mailbox(&settings.mail_from, Some("Clearance")).map_err(|e| e.to_string())?,
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

/// "Xiaomi Redmi 1S (firmware <6.3.1): Prohibited → Approved", one line per
/// model and firmware range whose decision an amendment changed.
fn decision_changes(
    before: &[DecisionSpec],
    after: &[DecisionSpec],
    name: &dyn Fn(Scope) -> String,
) -> Vec<String> {
    let key = |d: &DecisionSpec| (d.scope, d.firmware.as_ref().map(ToString::to_string));
    let label = |d: Option<&DecisionSpec>| {
        d.map_or("no decision".to_owned(), |d| {
            let mut text = decision_label(d.decision).to_owned();
            if let Some(conditions) = &d.conditions {
                text.push_str(&format!(" ({conditions})"));
            }
            text
        })
    };
    let mut keys: Vec<(Scope, Option<String>)> = before.iter().chain(after).map(key).collect();
    keys.dedup();
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .filter(|k| seen.insert(k.clone()))
        .filter_map(|k| {
            let old = before.iter().find(|d| key(d) == k);
            let new = after.iter().find(|d| key(d) == k);
            (old != new).then(|| {
                let range =
                    k.1.as_ref()
                        .map_or(String::new(), |f| format!(" (firmware {f})"));
                format!("{}{range}: {} → {}", name(k.0), label(old), label(new))
            })
        })
        .collect()
}

fn decision_label(decision: Decision) -> &'static str {
    match decision {
        Decision::Prohibited => "Prohibited",
        Decision::Restricted => "Restricted",
        Decision::ApprovedWithConditions => "Approved with conditions",
        Decision::Approved => "Approved",
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
    let name = |scope: Scope| {
        context
            .target_names
            .get(&scope)
            .cloned()
            .unwrap_or_default()
    };
    let decisions: Vec<DecisionLine> = content
        .decisions
        .iter()
        .map(|d| DecisionLine {
            model: name(d.scope),
            decision: decision_label(d.decision).into(),
            firmware: d.firmware.as_ref().map(ToString::to_string),
            conditions: d.conditions.as_ref().map(ToString::to_string),
        })
        .collect();
    // "Prohibited: Xiaomi Redmi 1S" when the advisory decides one thing;
    // its title otherwise.
    let mut kinds: Vec<Decision> = content.decisions.iter().map(|d| d.decision).collect();
    kinds.dedup();
    let mut names: Vec<String> = content.decisions.iter().map(|d| name(d.scope)).collect();
    names.dedup();
    let topic = match kinds.as_slice() {
        [one] => format!("{}: {}", decision_label(*one), names.join(", ")),
        _ => content.title.to_string(),
    };
    let headline = match kind {
        MailKind::Amended => format!("Updated: {topic}"),
        MailKind::Withdrawn => format!("Withdrawn: {topic}"),
        MailKind::Reminder => format!("Please acknowledge: {topic}"),
        _ => topic,
    };
    let changes = match kind {
        MailKind::Amended => context
            .revisions
            .get(&(record.id, revision.number - 1))
            .map(|before| decision_changes(&before.content.decisions, &content.decisions, &name))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let restricted = matches!(content.tlp, Tlp::Amber | Tlp::AmberStrict | Tlp::Red);
    let base = settings.public_url.as_str().trim_end_matches('/');
    AdvisoryMail {
        kind: kind.as_str(),
        headline,
        reference: record.reference.clone().unwrap_or_default(),
        revision: revision.number,
        restricted,
        tlp_label: content.tlp.as_str().replace('_', "+").to_uppercase(),
        severity: content.severity.to_string(),
        summary: content.summary.to_string(),
        body: content.body.clone(),
        what_to_do: wording::advisory_says(&content.decisions, name),
        decisions,
        changes,
        evidence: content
            .evidence_ids
            .iter()
            .filter_map(|id| context.evidence.get(id).cloned())
            .collect(),
        withdrawn_reason: record.withdrawn.as_ref().map(|w| w.reason.clone()),
        advisory_url: format!("{base}/api/v1/advisories/{}", record.id),
        acknowledge_url,
        unsubscribe_url,
    }
}
