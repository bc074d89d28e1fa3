//! A model's stored clearance follows every change that can move it: each
//! use case that changes decisions or reviews re-derives it here, in its
//! own transaction, and a timer applies decisions whose date has come.

use uuid::Uuid;

use super::{Done, Result, Tx, Workflow};
use crate::db::clearance::{self, Cause, StatusChange};
use crate::domain::audit::Actor;

/// Re-derives the clearance of `models` at the transaction's time, keeping
/// history and audit of each change; their lookup entries are marked stale
/// whether or not the status moved (conditions or ranges may have).
pub(super) fn rederive(
    tx: &mut Tx<'_>,
    models: &[Uuid],
    cause: Cause,
) -> Result<Vec<StatusChange>> {
    let at = tx.derive_at();
    let changes = clearance::rederive(tx.conn, models, cause, tx.now, at)?;
    audit(tx, &changes)?;
    tx.models_changed(models.iter().copied());
    Ok(changes)
}

/// Audits each model's change of clearance.
fn audit(tx: &mut Tx<'_>, changes: &[StatusChange]) -> Result<()> {
    for change in changes {
        tx.audit_change("model.clearance", "model", change.model_id, change)?;
    }
    Ok(())
}

/// Applies every decision that has become effective since the last run;
/// returns how many models changed status.
pub async fn settle_due(workflow: &Workflow) -> Result<Done<usize>> {
    // Most ticks find nothing: look with a read before taking a write lock.
    let now = workflow.clock().now();
    if !workflow
        .db()
        .read(move |conn| clearance::any_due(conn, now))
        .await?
    {
        return Ok(Done {
            value: 0,
            changed: Default::default(),
        });
    }
    workflow
        .run(Actor::system(), |tx| {
            let at = tx.derive_at();
            let changes = clearance::settle_due(tx.conn, tx.now, at)?;
            audit(tx, &changes)?;
            tx.models_changed(changes.iter().map(|c| c.model_id));
            Ok(changes.len())
        })
        .await
}
