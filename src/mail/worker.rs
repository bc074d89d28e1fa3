//! The delivery worker: claims due outbox rows in batches, sends them
//! concurrently (one transport connection per sender), and writes the
//! outcomes back. Killed at any moment it loses nothing: a claim whose lease
//! runs out is taken again, and the message keeps its Message-ID.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures_util::future::join_all;
use rand::Rng;
use tokio::sync::watch;

use super::compose::{Context, Plan, compose};
use super::metrics::MailMetrics;
use super::transport::{Outcome as Sent, Transport};
use crate::config::Settings;
use crate::db::outbox::{self, Claimed, Outcome};
use crate::db::{Db, DbError, digests};
use crate::domain::mail::retry_delay;
use crate::links::LinkTokens;

pub struct Worker {
    db: Db,
    settings: Arc<Settings>,
    links: Arc<LinkTokens>,
    metrics: MailMetrics,
}

impl Worker {
    pub fn new(
        db: Db,
        settings: Arc<Settings>,
        links: Arc<LinkTokens>,
        metrics: MailMetrics,
    ) -> Self {
        Self {
            db,
            settings,
            links,
            metrics,
        }
    }

    /// Works until `stop` turns true; the batch in hand is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let config = &self.settings.worker_tuning;
        let mut senders: Vec<Transport> = (0..config.concurrency)
            .map(|_| Transport::from_settings(&self.settings))
            .collect();
        let mut paused_until: Option<Instant> = None;
        while !*stop.borrow() {
            if let Some(until) = paused_until.take()
                && until > Instant::now()
            {
                tracing::info!("the mail relay is throttling: pausing delivery");
                let _ = tokio::time::timeout(until - Instant::now(), stop.changed()).await;
                continue;
            }
            match self.batch(&mut senders).await {
                Ok((0, _)) => {
                    let _ = tokio::time::timeout(config.poll, stop.changed()).await;
                }
                Ok((_, throttled)) => {
                    if throttled {
                        paused_until = Some(Instant::now() + config.throttle_pause);
                    }
                }
                Err(error) => {
                    tracing::warn!(?error, "mail delivery batch failed");
                    let _ = tokio::time::timeout(config.poll, stop.changed()).await;
                }
            }
        }
        tracing::info!("mail worker stopped");
    }

    /// Claims, sends and records one batch; returns how many rows it held
    /// and whether the relay throttled.
    async fn batch(&self, senders: &mut [Transport]) -> Result<(usize, bool), DbError> {
        let config = self.settings.worker_tuning.clone();
        let lease = self.settings.worker_lease;
        let claimed = self
            .db
            .write(move |conn| {
                let now = Utc::now();
                let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
                outbox::claim(conn, config.batch, until, now)
            })
            .await?;
        if claimed.is_empty() {
            self.refresh_gauges().await;
            self.queue_digests().await;
            return Ok((0, false));
        }
        let rows = claimed.clone();
        let context = self.db.read(move |conn| Context::load(conn, &rows)).await?;
        let now = Utc::now();
        let plans: Vec<(Claimed, Plan)> = claimed
            .into_iter()
            .map(|row| {
                let plan = compose(&row, &context, &self.settings, &self.links, now);
                (row, plan)
            })
            .collect();
        let count = plans.len();
        let lanes = senders.len().max(1);
        let mut lanes_of_work: Vec<Vec<(Claimed, Plan)>> = (0..lanes).map(|_| Vec::new()).collect();
        for (i, item) in plans.into_iter().enumerate() {
            lanes_of_work[i % lanes].push(item);
        }
        let config = &self.settings.worker_tuning;
        let metrics = &self.metrics;
        let results = join_all(senders.iter_mut().zip(lanes_of_work).map(
            |(sender, work)| async move {
                let mut outcomes = Vec::with_capacity(work.len());
                let mut throttled = false;
                for (row, plan) in work {
                    let outcome = match plan {
                        Plan::Suppress => Outcome::Suppressed,
                        Plan::Fail(error) => Outcome::Failed { error, reply: None },
                        // Once the relay throttles, the rest of this lane waits.
                        Plan::Send(_) if throttled => Outcome::Retry {
                            error: "not tried: the relay was throttling".into(),
                            reply: None,
                            at: Utc::now(),
                            counts: false,
                        },
                        Plan::Send(mail) => {
                            let started = Instant::now();
                            let sent = sender
                                .send(&mail.message_id, &mail.envelope, &mail.bytes)
                                .await;
                            metrics
                                .send_seconds
                                .observe(started.elapsed().as_secs_f64());
                            let outcome = classify(sent, &row, config);
                            if let Outcome::Retry { counts: false, .. } = outcome {
                                throttled = true;
                            }
                            outcome
                        }
                    };
                    metrics.count(&outcome);
                    outcomes.push((row.id, outcome));
                }
                (outcomes, throttled)
            },
        ))
        .await;
        let throttled = results.iter().any(|(_, t)| *t);
        let outcomes: Vec<(i64, Outcome)> = results.into_iter().flat_map(|(o, _)| o).collect();
        self.db
            .write(move |conn| outbox::record(conn, &outcomes, Utc::now()))
            .await?;
        Ok((count, throttled))
    }

    /// Queues the daily digests that are due (an idle worker's chore).
    async fn queue_digests(&self) {
        let hour = self.settings.worker_tuning.digest_hour;
        match self
            .db
            .write(move |conn| digests::enqueue_due(conn, Utc::now(), hour))
            .await
        {
            Ok(0) => {}
            Ok(queued) => tracing::info!(queued, "daily digests queued"),
            Err(error) => tracing::warn!(?error, "queueing the daily digests failed"),
        }
    }

    async fn refresh_gauges(&self) {
        match self.db.read(|conn| outbox::counts(conn, None)).await {
            Ok(counts) => self.metrics.set_depth(&counts),
            Err(error) => tracing::debug!(?error, "cannot read the outbox depth"),
        }
    }
}

/// The next state of a row from what the transport said.
fn classify(sent: Sent, row: &Claimed, config: &crate::config::WorkerTuning) -> Outcome {
    match sent {
        Sent::Sent { reply } => Outcome::Sent { reply },
        Sent::Permanent { error, reply } => Outcome::Failed { error, reply },
        Sent::Transient {
            error,
            reply,
            throttled: true,
        } => Outcome::Retry {
            error,
            reply,
            at: Utc::now() + chrono::Duration::from_std(config.throttle_pause).unwrap_or_default(),
            counts: false,
        },
        Sent::Transient { error, reply, .. } if row.attempts >= config.max_attempts => {
            Outcome::Failed {
                error: format!("gave up after {} attempts: {error}", row.attempts),
                reply,
            }
        }
        Sent::Transient { error, reply, .. } => {
            let jitter: f64 = rand::rng().random();
            let delay = retry_delay(config.retry_base, row.attempts.max(1) as u32, jitter);
            Outcome::Retry {
                error,
                reply,
                at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                counts: true,
            }
        }
    }
}
