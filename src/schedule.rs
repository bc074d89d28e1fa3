//! Work the service does on its own, on a timer: a decision published with
//! a future effective date starts to apply when that date comes, and the
//! stored clearance (with its history) must follow without anyone acting.

use std::time::Duration;

use crate::workflow::{self, Workflow};

/// Applies the decisions that became effective, every `every` (the lookup's
/// refresh period: a decision applies at most that late), until the task is
/// dropped.
pub async fn run(workflow: Workflow, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match workflow::clearance::settle_due(&workflow).await {
            Ok(done) if done.value > 0 => {
                tracing::info!(changed = done.value, "decisions became effective");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(?error, "settling clearances failed"),
        }
    }
}
