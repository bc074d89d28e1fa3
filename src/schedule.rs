//! Work the service does on its own, on a timer: a decision published with
//! a future effective date starts to apply when that date comes, and the
//! stored clearance (with its history) must follow without anyone acting.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use crate::db::{Db, DbError, audit, changes, clearance};
use crate::domain::audit::Actor;
use crate::lookup::Lookup;

/// Applies every decision that has become effective since the last run;
/// returns the models whose status changed. (The lookup index derives the
/// status at the moment it answers, so a decision coming into force changes
/// its answer about a model only through that model's new history row.)
pub async fn settle_clearances(db: &Db) -> Result<Vec<Uuid>, DbError> {
    db.write(|conn| {
        let now = Utc::now();
        let settled = clearance::settle_due(conn, now)?;
        let entries = settled
            .iter()
            .map(clearance::StatusChange::audit)
            .collect::<Result<Vec<_>, _>>()?;
        audit::append(conn, &Actor::system(), entries, now)?;
        let models: Vec<Uuid> = settled.iter().map(|c| c.model_id).collect();
        changes::record(conn, &models)?;
        Ok(models)
    })
    .await
}

/// Runs [`settle_clearances`] every `every` (the lookup's refresh period:
/// a decision applies at most that late) until the task is dropped.
pub async fn run(db: Db, lookup: Arc<Lookup>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match settle_clearances(&db).await {
            Ok(models) if models.is_empty() => {}
            Ok(models) => {
                tracing::info!(changed = models.len(), "decisions became effective");
                lookup.apply(&models).await;
            }
            Err(error) => tracing::warn!(?error, "settling clearances failed"),
        }
    }
}
