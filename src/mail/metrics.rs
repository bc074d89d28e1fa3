//! The delivery queue in `/metrics`: depth by state, outcomes, send latency.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::db::outbox::Outcome;
use crate::domain::mail::DeliveryState;
use crate::metrics::registered;

#[derive(Clone)]
pub struct MailMetrics {
    depth: IntGaugeVec,
    outcomes: IntCounterVec,
    pub send_seconds: Histogram,
}

impl MailMetrics {
    /// Registers the metrics in `registry` (the one `/metrics` serves).
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let depth = IntGaugeVec::new(
            Opts::new("clearance_outbox_rows", "Outbox rows by delivery state"),
            &["state"],
        )?;
        let outcomes = IntCounterVec::new(
            Opts::new(
                "clearance_mail_outcomes_total",
                "Mails sent, retried, failed, suppressed or released unsent by this process",
            ),
            &["outcome"],
        )?;
        let send_seconds = Histogram::with_opts(HistogramOpts::new(
            "clearance_mail_send_duration_seconds",
            "Time to hand one message to the transport",
        ))?;
        Ok(Self {
            depth: registered(registry, depth)?,
            outcomes: registered(registry, outcomes)?,
            send_seconds: registered(registry, send_seconds)?,
        })
    }

    pub fn count(&self, outcome: &Outcome) {
        let label = match outcome {
            Outcome::Sent { .. } => "sent",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed { .. } => "failed",
            Outcome::Suppressed => "suppressed",
            Outcome::Released => "released",
        };
        self.outcomes.with_label_values(&[label]).inc();
    }

    pub fn set_depth(&self, counts: &[(DeliveryState, i64)]) {
        for state in DeliveryState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.depth.with_label_values(&[state.as_str()]).set(n);
        }
    }
}
