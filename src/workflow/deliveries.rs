//! An advisory's mail after it was queued: acknowledgements from its
//! readers, reminders to those who have not acknowledged, and failed mail
//! queued again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Done, Result, Workflow};
use crate::db::advisories::{self, AdvisoryRecord};
use crate::db::audit::Change;
use crate::db::{acknowledgements, outbox};
use crate::domain::audit::Actor;
use crate::domain::rejection::Rejection;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Acknowledged {
    pub advisory_id: Uuid,
    pub revision: i32,
    pub acknowledged_at: DateTime<Utc>,
}

/// Records that `email` acknowledged `revision` of the advisory, from the
/// personal link in its mail; acknowledging again keeps the first time.
pub async fn acknowledge(
    workflow: &Workflow,
    advisory_id: Uuid,
    revision: i32,
    email: String,
) -> Result<Done<Acknowledged>> {
    let actor = Actor {
        sub: format!("mail:{email}"),
        name: email.clone(),
    };
    workflow
        .run(actor, move |tx| {
            let (at, first) =
                acknowledgements::acknowledge(tx.conn, advisory_id, revision, &email, tx.now)?;
            if first {
                tx.audit(Change::new(
                    "advisory.acknowledge",
                    "advisory",
                    advisory_id,
                    json!({"revision": revision}),
                ));
            }
            Ok(Acknowledged {
                advisory_id,
                revision,
                acknowledged_at: at,
            })
        })
        .await
}

/// The revision acknowledgements are about — the one in force — and whether
/// the advisory asks for them; an advisory not published has none.
pub fn acknowledged_revision(record: &AdvisoryRecord) -> Result<(i32, bool), Rejection> {
    record
        .current
        .as_ref()
        .map(|c| (c.number, c.content.acknowledgement_required))
        .ok_or_else(|| Rejection::WrongState {
            detail: "the advisory has not been published".into(),
            current_state: record.lifecycle.state.as_str().into(),
        })
}

/// Queues a reminder for everyone who was mailed the revision in force and
/// has not acknowledged it — once per person and revision. Returns how many.
pub async fn remind(workflow: &Workflow, actor: Actor, advisory_id: Uuid) -> Result<Done<usize>> {
    workflow
        .run(actor, move |tx| {
            let record = advisories::get(tx.conn, advisory_id)?;
            let (revision, required) = acknowledged_revision(&record)?;
            if !required {
                return Err(Rejection::WrongState {
                    detail: "this advisory does not ask for acknowledgement".into(),
                    current_state: record.lifecycle.state.as_str().into(),
                }
                .into());
            }
            let queued = acknowledgements::remind(tx.conn, advisory_id, revision, tx.now)?;
            tx.mail_queued(queued);
            tx.audit(Change::new(
                "advisory.remind",
                "advisory",
                advisory_id,
                json!({"revision": revision, "queued": queued}),
            ));
            Ok(queued)
        })
        .await
}

/// Queues the advisory's failed mails again, due now, with fresh attempts.
pub async fn retry_failed(
    workflow: &Workflow,
    actor: Actor,
    advisory_id: Uuid,
) -> Result<Done<usize>> {
    workflow
        .run(actor, move |tx| {
            advisories::get(tx.conn, advisory_id)?;
            let requeued = outbox::retry_failed(tx.conn, advisory_id, tx.now)?;
            tx.mail_queued(requeued);
            tx.audit(Change::new(
                "advisory.retry_deliveries",
                "advisory",
                advisory_id,
                json!({"requeued": requeued}),
            ));
            Ok(requeued)
        })
        .await
}
