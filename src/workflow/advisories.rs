//! Advisories from draft to publication and beyond: every step asks the
//! domain's lifecycle whether it may happen, writes the outcome guarded by
//! the version it read, and — when the advisory's decisions start or stop
//! applying — re-derives the clearance of every model concerned and queues
//! the mail, all in the step's one transaction.

use chrono::Datelike;
use serde_json::json;
use uuid::Uuid;

use super::clearance::rederive;
use super::{Done, Result, Tx, Workflow, unknown_ids};
use crate::db::advisories::{self, AdvisoryRecord, Ending, RevisionRecord, SignOff};
use crate::db::audit::Change;
use crate::db::clearance::Cause;
use crate::db::outbox::{self, FanOut};
use crate::db::{DbError, evidence, manufacturers, models};
use crate::domain::advisory::{
    Action, AdvisoryContent, ContentPatch, Lifecycle, Stage, Tlp, may_approve,
};
use crate::domain::audit::Actor;
use crate::domain::clearance::Scope;
use crate::domain::mail::MailKind;
use crate::domain::rejection::{FieldError, Rejection};
use crate::domain::text::Prose;

/// Drafts a new advisory (its revision 1).
pub async fn draft(
    workflow: &Workflow,
    actor: Actor,
    content: AdvisoryContent,
) -> Result<Done<AdvisoryRecord>> {
    workflow
        .run(actor, move |tx| {
            let id = Uuid::now_v7();
            check_content(tx, &content, id)?;
            let record = advisories::insert(tx.conn, id, &content, &tx.actor, tx.now)?;
            tx.audit(Change::new(
                "advisory.create",
                "advisory",
                id,
                json!({"revision": 1, "content": content}),
            ));
            Ok(record)
        })
        .await
}

/// Changes the draft being written, if the advisory is still at
/// `expected_version`; whoever changes it becomes one of its writers.
pub async fn edit(
    workflow: &Workflow,
    actor: Actor,
    id: Uuid,
    patch: ContentPatch,
    expected_version: i64,
) -> Result<Done<AdvisoryRecord>> {
    workflow
        .run(actor, move |tx| {
            let record = advisories::get(tx.conn, id)?;
            if record.version != expected_version {
                return Err(DbError::Stale.into());
            }
            let lifecycle = allowed(&record, Action::Edit)?;
            let working = working(&record)?;
            let content = patch.apply(working.content.clone());
            check_content(tx, &content, id)?;
            let mut contributors = working.contributors.clone();
            if !contributors.contains(&tx.actor.sub) {
                contributors.push(tx.actor.sub.clone());
            }
            advisories::replace_content(
                tx.conn,
                id,
                working.number,
                &content,
                &contributors,
                tx.now,
            )?;
            advisories::advance(
                tx.conn,
                &record,
                lifecycle.state,
                Some(working.number),
                tx.now,
            )?;
            tx.audit(Change::new(
                "advisory.edit",
                "advisory",
                id,
                json!({"revision": working.number, "content": content}),
            ));
            Ok(advisories::get(tx.conn, id)?)
        })
        .await
}

/// Draft → submitted.
pub async fn submit(workflow: &Workflow, actor: Actor, id: Uuid) -> Result<Done<AdvisoryRecord>> {
    sign_off(workflow, actor, id, Action::Submit, None).await
}

/// Submitted → draft, saying why.
pub async fn reject(
    workflow: &Workflow,
    actor: Actor,
    id: Uuid,
    reason: Prose,
) -> Result<Done<AdvisoryRecord>> {
    sign_off(workflow, actor, id, Action::Reject, Some(reason)).await
}

/// Submitted → approved, by someone who wrote neither the advisory nor
/// this revision (the two-person rule).
pub async fn approve(workflow: &Workflow, actor: Actor, id: Uuid) -> Result<Done<AdvisoryRecord>> {
    sign_off(workflow, actor, id, Action::Approve, None).await
}

/// A step of the working revision towards publication.
async fn sign_off(
    workflow: &Workflow,
    actor: Actor,
    id: Uuid,
    action: Action,
    reason: Option<Prose>,
) -> Result<Done<AdvisoryRecord>> {
    workflow
        .run(actor, move |tx| {
            let record = advisories::get(tx.conn, id)?;
            let lifecycle = allowed(&record, action)?;
            let working = working(&record)?;
            let by = tx.actor.sub.clone();
            let step = match (action, &reason) {
                (Action::Submit, _) => SignOff::Submitted { by: &by },
                (Action::Reject, Some(reason)) => SignOff::Rejected { reason },
                (Action::Approve, _) => {
                    if !may_approve(&by, &record.author, &working.contributors) {
                        return Err(Rejection::Refused(
                            "two-person rule: an advisory cannot be approved by its author or by anyone who wrote this revision"
                                .into(),
                        )
                        .into());
                    }
                    SignOff::Approved { by: &by }
                }
                _ => return Err(DbError::Other(anyhow::anyhow!("{action} is not a sign-off")).into()),
            };
            let stage = lifecycle.working.unwrap_or(Stage::Draft);
            advisories::sign_off(tx.conn, id, working.number, stage, step, tx.now)?;
            advisories::advance(tx.conn, &record, lifecycle.state, Some(working.number), tx.now)?;
            stepped(tx, action, id, reason.as_ref())
        })
        .await
}

/// Opens an amendment of a published advisory: a new draft revision, a copy
/// of the one in force (which stays in force until it is published).
pub async fn amend(workflow: &Workflow, actor: Actor, id: Uuid) -> Result<Done<AdvisoryRecord>> {
    workflow
        .run(actor, move |tx| {
            let record = advisories::get(tx.conn, id)?;
            let lifecycle = allowed(&record, Action::Amend)?;
            let current = in_force(&record)?;
            let number = current.number + 1;
            // The supersessions already happened with the revision in force.
            let content = AdvisoryContent {
                supersedes: Vec::new(),
                ..current.content.clone()
            };
            advisories::insert_revision(tx.conn, id, number, &content, &tx.actor.sub, tx.now)?;
            advisories::advance(tx.conn, &record, lifecycle.state, Some(number), tx.now)?;
            stepped(tx, Action::Amend, id, None)
        })
        .await
}

/// Withdraws a published advisory, saying why: its decisions stop applying
/// and everyone it was mailed to is told.
pub async fn withdraw(
    workflow: &Workflow,
    actor: Actor,
    id: Uuid,
    reason: Prose,
) -> Result<Done<AdvisoryRecord>> {
    workflow
        .run(actor, move |tx| {
            let record = advisories::get(tx.conn, id)?;
            allowed(&record, Action::Withdraw)?;
            let current = in_force(&record)?;
            let ending = Ending::Withdrawn {
                reason: &reason,
                by: &tx.actor.sub,
            };
            advisories::end(tx.conn, &record, ending, tx.now)?;
            let entry = stepped_change(tx, Action::Withdraw, id, Some(&reason))?;
            tx.audit(entry);
            let concerned = models::in_scopes(tx.conn, &decided(current))?;
            rederive(tx, &concerned, cause(id))?;
            let queued = outbox::fan_out(
                tx.conn,
                &mail_plan(id, current, MailKind::Withdrawn),
                tx.now,
            )?;
            tx.mail_queued(queued);
            Ok(advisories::get(tx.conn, id)?)
        })
        .await
}

/// Publishes the approved working revision: the reference on first
/// publication, the advisories it supersedes leave force, the clearance of
/// every model concerned follows, and the mail is queued.
pub async fn publish(workflow: &Workflow, actor: Actor, id: Uuid) -> Result<Done<AdvisoryRecord>> {
    workflow
        .run(actor, move |tx| {
            let record = advisories::get(tx.conn, id)?;
            allowed(&record, Action::Publish)?;
            let working = working(&record)?;
            let problems: Vec<FieldError> = working
                .content
                .publication_problems()
                .into_iter()
                .map(|(field, message)| FieldError::new(field, message))
                .collect();
            Rejection::unless_invalid(problems)?;
            let mut superseded = Vec::new();
            for target in &working.content.supersedes {
                let other = advisories::get(tx.conn, *target)?;
                let next = other.lifecycle.apply(Action::Supersede).map_err(|e| {
                    Rejection::WrongState {
                        detail: format!(
                            "advisory {} cannot be superseded: {e}",
                            other.reference.as_deref().unwrap_or("(unpublished)")
                        ),
                        current_state: e.current.to_owned(),
                    }
                })?;
                let ending = Ending::Superseded {
                    by: id,
                    state: next.state,
                };
                advisories::end(tx.conn, &other, ending, tx.now)?;
                superseded.push(other);
            }
            let reference = match &record.reference {
                Some(existing) => existing.clone(),
                None => advisories::next_reference(tx.conn, tx.now.year())?,
            };
            let effective_at = working.content.effective_at.unwrap_or(tx.now);
            advisories::publish(
                tx.conn,
                &record,
                working.number,
                &reference,
                &tx.actor.sub,
                effective_at,
                tx.now,
            )?;
            let kind = if record.current.is_some() {
                MailKind::Amended
            } else {
                MailKind::Published
            };
            let queued = outbox::fan_out(tx.conn, &mail_plan(id, working, kind), tx.now)?;
            tx.mail_queued(queued);
            tx.audit(Change::new(
                "advisory.publish",
                "advisory",
                id,
                json!({"reference": reference, "revision": working.number, "mail_queued": queued}),
            ));
            for other in &superseded {
                tx.audit(Change::new(
                    "advisory.supersede",
                    "advisory",
                    other.id,
                    json!({"superseded_by": id, "reference": other.reference}),
                ));
            }
            // The models the new revision decides on, those the revision it
            // replaces decided on (an amendment may drop one), and those of
            // the superseded.
            let mut scopes = decided(working);
            for old in std::iter::once(&record).chain(&superseded) {
                if let Some(current) = &old.current {
                    scopes.extend(decided(current));
                }
            }
            let concerned = models::in_scopes(tx.conn, &scopes)?;
            rederive(tx, &concerned, cause(id))?;
            Ok(advisories::get(tx.conn, id)?)
        })
        .await
}

/// The lifecycle after `action`, or the conflict naming the current state.
fn allowed(record: &AdvisoryRecord, action: Action) -> Result<Lifecycle> {
    Ok(record.lifecycle.apply(action).map_err(Rejection::from)?)
}

fn working(record: &AdvisoryRecord) -> Result<&RevisionRecord> {
    record.working.as_ref().ok_or_else(|| {
        DbError::Other(anyhow::anyhow!(
            "the lifecycle allowed a step on no revision"
        ))
        .into()
    })
}

fn in_force(record: &AdvisoryRecord) -> Result<&RevisionRecord> {
    record.current.as_ref().ok_or_else(|| {
        DbError::Other(anyhow::anyhow!(
            "the lifecycle allowed a step on no published revision"
        ))
        .into()
    })
}

/// What a revision decides on (models, or every model of a maker).
fn decided(revision: &RevisionRecord) -> Vec<Scope> {
    revision.content.decisions.iter().map(|d| d.scope).collect()
}

fn cause(advisory_id: Uuid) -> Cause {
    Cause {
        advisory_id: Some(advisory_id),
        review_id: None,
    }
}

/// Records a simple lifecycle step in the audit log and answers with the
/// advisory as it now is.
fn stepped(
    tx: &mut Tx<'_>,
    action: Action,
    id: Uuid,
    reason: Option<&Prose>,
) -> Result<AdvisoryRecord> {
    let entry = stepped_change(tx, action, id, reason)?;
    tx.audit(entry);
    Ok(advisories::get(tx.conn, id)?)
}

fn stepped_change(
    tx: &mut Tx<'_>,
    action: Action,
    id: Uuid,
    reason: Option<&Prose>,
) -> Result<Change> {
    let updated = advisories::get(tx.conn, id)?;
    Ok(Change::new(
        match action {
            Action::Submit => "advisory.submit",
            Action::Reject => "advisory.reject",
            Action::Approve => "advisory.approve",
            Action::Amend => "advisory.amend",
            _ => "advisory.withdraw",
        },
        "advisory",
        id,
        json!({
            "state": updated.lifecycle.state,
            "working_stage": updated.lifecycle.working,
            "revision": updated.working.as_ref().or(updated.current.as_ref()).map(|r| r.number),
            "reason": reason.map(Prose::as_str),
        }),
    ))
}

/// Who gets the mail about `revision` of advisory `id`.
fn mail_plan(id: Uuid, revision: &RevisionRecord, kind: MailKind) -> FanOut {
    let content = &revision.content;
    FanOut {
        advisory_id: id,
        revision: revision.number,
        kind,
        all_personnel: content.audience.all_personnel,
        units: content
            .audience
            .units
            .iter()
            .map(ToString::to_string)
            .collect(),
        // Subscribers need no clearance to read: public (TLP:CLEAR) only.
        to_subscribers: content.tlp == Tlp::Clear,
        severity_rank: content.severity.rank(),
    }
}

/// Checks the content's own rules and that everything it names exists.
fn check_content(tx: &mut Tx<'_>, content: &AdvisoryContent, own_id: Uuid) -> Result<()> {
    let mut errors: Vec<FieldError> = content
        .problems(Some(own_id))
        .into_iter()
        .map(|(field, message)| FieldError::new(field, message))
        .collect();
    let named = |of: fn(Scope) -> Option<Uuid>| -> Vec<Uuid> {
        content
            .decisions
            .iter()
            .filter_map(|d| of(d.scope))
            .collect()
    };
    let known_models = models::existing(tx.conn, &named(Scope::model))?;
    let known_makers = manufacturers::existing(tx.conn, &named(Scope::manufacturer))?;
    for (i, decision) in content.decisions.iter().enumerate() {
        let (field, known, what) = match decision.scope {
            Scope::Model(_) => ("model_id", &known_models, "model"),
            Scope::Manufacturer { .. } => ("manufacturer_id", &known_makers, "manufacturer"),
        };
        if !known.contains(&decision.scope.target()) {
            errors.push(FieldError::new(
                format!("decisions[{i}].{field}"),
                format!("no {what} has this id"),
            ));
        }
    }
    let known = evidence::existing(tx.conn, &content.evidence_ids)?;
    errors.extend(unknown_ids(
        "evidence_ids",
        &content.evidence_ids,
        &known,
        "evidence record",
    ));
    // Naming itself is reported by `problems` above.
    let mut known = advisories::existing(tx.conn, &content.supersedes)?;
    known.insert(own_id);
    errors.extend(unknown_ids(
        "supersedes",
        &content.supersedes,
        &known,
        "advisory",
    ));
    Ok(Rejection::unless_invalid(errors)?)
}
