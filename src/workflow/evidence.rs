//! Evidence: filed once, then only appended to — responses and artifacts.

use uuid::Uuid;

use super::{Done, Result, Workflow, unknown_ids};
use crate::db::evidence::{self, Filed, NewArtifact};
use crate::db::{DbError, models};
use crate::domain::audit::Actor;
use crate::domain::evidence::{Evidence, EvidenceResponse, NewEvidence, NewResponse};
use crate::domain::rejection::Rejection;

/// Files evidence about models that exist; each id that names none is a
/// field at fault.
pub async fn file(workflow: &Workflow, actor: Actor, new: NewEvidence) -> Result<Done<Evidence>> {
    workflow
        .run(actor, move |tx| {
            let ids = new.model_ids.as_slice();
            let known = models::existing(tx.conn, ids)?;
            Rejection::unless_invalid(unknown_ids("model_ids", ids, &known, "model"))?;
            let evidence = evidence::insert(tx.conn, &new, &tx.actor.sub, tx.now)?;
            tx.audit_change("evidence.create", "evidence", evidence.id, &evidence)?;
            Ok(evidence)
        })
        .await
}

/// Appends a vendor's answer, a retest, an acknowledgement or a correction.
pub async fn respond(
    workflow: &Workflow,
    actor: Actor,
    evidence_id: Uuid,
    new: NewResponse,
) -> Result<Done<EvidenceResponse>> {
    workflow
        .run(actor, move |tx| {
            if !evidence::exists(tx.conn, evidence_id)? {
                return Err(DbError::NotFound.into());
            }
            let superseded_exists = match new.supersedes {
                Some(superseded) => evidence::exists(tx.conn, superseded)?,
                None => false,
            };
            if let Some(message) = new.problem(evidence_id, superseded_exists) {
                return Err(Rejection::invalid("supersedes", message).into());
            }
            let response = evidence::respond(tx.conn, evidence_id, &new, &tx.actor.sub, tx.now)?;
            tx.audit_change("evidence.respond", "evidence", evidence_id, &response)?;
            Ok(response)
        })
        .await
}

/// Files bytes already in the artifact store with evidence; the same bytes
/// filed again keep their first record (and change nothing).
pub async fn attach(
    workflow: &Workflow,
    actor: Actor,
    evidence_id: Uuid,
    artifact: NewArtifact,
) -> Result<Done<Filed>> {
    workflow
        .run(actor, move |tx| {
            if !evidence::exists(tx.conn, evidence_id)? {
                return Err(DbError::NotFound.into());
            }
            let filed =
                evidence::add_artifact(tx.conn, evidence_id, &artifact, &tx.actor.sub, tx.now)?;
            if let Filed::Created(created) = &filed {
                tx.audit_change("evidence.artifact", "evidence", evidence_id, created)?;
            }
            Ok(filed)
        })
        .await
}
