//! Work the service does on its own, on a timer: a decision published with
//! a future effective date starts to apply when that date comes, and the
//! stored clearance (with its history) must follow without anyone acting;
//! and yesterday's per-address mail counts are forgotten.

use std::time::{Duration, Instant};

use crate::workflow::{self, Workflow};

/// How often old per-address mail counts are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Applies the decisions that became effective, every `every` (the lookup's
/// refresh period: a decision applies at most that late), and prunes the
/// mail counts hourly, until the task is dropped.
pub async fn run(workflow: Workflow, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned: Option<Instant> = None;
    loop {
        ticker.tick().await;
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(Instant::now());
            if let Err(error) = workflow::subscriptions::forget_old_mail_counts(&workflow).await {
                tracing::warn!(?error, "forgetting old mail counts failed");
            }
        }
        match workflow::clearance::settle_due(&workflow).await {
            Ok(done) if done.value > 0 => {
                tracing::info!(changed = done.value, "decisions became effective");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(?error, "settling clearances failed"),
        }
    }
}
