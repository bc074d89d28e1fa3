//! Work the service does on its own, on a timer: a decision published with
//! a future effective date starts to apply when that date comes, and the
//! stored clearance (with its history) must follow without anyone acting.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::db::{Db, DbError, audit, clearance};
use crate::domain::audit::Actor;
use crate::lookup::Lookup;

/// Applies every decision that has become effective since the last run.
pub async fn settle_clearances(db: &Db) -> Result<usize, DbError> {
    db.write(|conn| {
        let now = Utc::now();
        let changes = clearance::settle_due(conn, now)?;
        let entries = changes
            .iter()
            .map(clearance::StatusChange::audit)
            .collect::<Result<Vec<_>, _>>()?;
        audit::append(conn, &Actor::system(), entries, now)?;
        Ok(changes.len())
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
            Ok(0) => {}
            Ok(changed) => {
                tracing::info!(changed, "decisions became effective");
                lookup.refresh_after_write().await;
            }
            Err(error) => tracing::warn!(?error, "settling clearances failed"),
        }
    }
}
