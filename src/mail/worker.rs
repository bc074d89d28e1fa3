//! The delivery worker. Four parts run side by side:
//!
//! - the claimer takes due outbox rows in batches, ahead of the lanes, each
//!   claim under a token and a lease of its own;
//! - the lanes (one transport connection each) compose and send one message
//!   at a time; a lane hands over its next message's data only once the
//!   previous one's outcome is recorded (its envelope may go ahead), so a
//!   crash repeats at most one message per lane;
//! - the recorder writes the outcomes the lanes hand it, all that have
//!   arrived in one statement, as soon as the previous write is done;
//! - the keeper extends the lease of every claim still in hand, so a slow
//!   relay never lets a claim run out while its rows are being sent.
//!
//! No database transaction is held across an SMTP round trip. Killed at any
//! moment the worker loses nothing: a claim whose lease runs out is taken
//! again, and the message keeps its Message-ID.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::compose::{Context, Plan, compose};
use super::metrics::MailMetrics;
use super::transport::{Outcome as Sent, Transport};
use crate::config::Settings;
use crate::db::outbox::{self, Claimed, Outcome};
use crate::db::{Db, DbError, digests};
use crate::domain::mail::retry_delay;
use crate::links::LinkTokens;

/// The most outcomes one recording statement writes.
const RECORD_AT_MOST: usize = 512;

pub struct Worker {
    db: Db,
    settings: Arc<Settings>,
    links: Arc<LinkTokens>,
    metrics: MailMetrics,
}

/// One claim: its rows share a token and a lease. Every job of the claim
/// holds it until its outcome is recorded, and the keeper extends it while
/// anyone does.
struct Lease {
    token: String,
    /// Until when the claim is ours (Unix milliseconds).
    until: AtomicI64,
}

impl Lease {
    fn new(until: DateTime<Utc>) -> Self {
        Self {
            token: uuid::Uuid::new_v4().to_string(),
            until: AtomicI64::new(until.timestamp_millis()),
        }
    }

    /// Whether at least `margin` of the lease is left: a message is only
    /// started with enough time to finish before anyone else may take it.
    fn leaves(&self, margin: Duration) -> bool {
        let left = self.until.load(Ordering::Acquire) - Utc::now().timestamp_millis();
        left > i64::try_from(margin.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A claimed row on its way to a lane.
struct Job {
    row: Claimed,
    context: Arc<Context>,
    lease: Arc<Lease>,
}

/// An outcome on its way to the recorder; `recorded` is told once it is
/// written (or given up).
struct Recording {
    id: i64,
    lease: Arc<Lease>,
    outcome: Outcome,
    recorded: oneshot::Sender<()>,
}

/// What the claimer and the lanes share.
struct Shared {
    /// Until when the relay asked us to slow down.
    paused_until: Mutex<Option<Instant>>,
    /// Set when the worker is stopping: lanes give back what they hold.
    stopping: AtomicBool,
    /// Told each time a lane takes a job, so the claimer can top up.
    taken: Notify,
}

impl Shared {
    fn paused(&self) -> Option<Instant> {
        let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        until.filter(|until| *until > Instant::now())
    }

    fn pause(&self, until: Instant) {
        *self.paused_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
    }
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

    /// Works until `stop` turns true. Messages being sent are finished and
    /// recorded; claimed rows not yet started are given back.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let tuning = &self.settings.worker_tuning;
        let lanes = tuning.concurrency.max(1);
        let batch = usize::try_from(tuning.batch).unwrap_or(1).max(1);
        // Room for two claims ahead of the lanes: one being sent, one ready.
        let room = 2 * batch.max(lanes);
        let (jobs, queue) = mpsc::channel::<Job>(room);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let (outcomes, to_record) = mpsc::unbounded_channel::<Recording>();
        let shared = Arc::new(Shared {
            paused_until: Mutex::new(None),
            stopping: AtomicBool::new(false),
            taken: Notify::new(),
        });
        let leases: Arc<Mutex<Vec<Arc<Lease>>>> = Arc::default();
        let this = Arc::new(self);
        let recorder = tokio::spawn(record(this.db.clone(), to_record, lanes));
        let keeper = tokio::spawn(keep_leases(
            this.db.clone(),
            leases.clone(),
            this.settings.worker_lease,
        ));
        let lane_tasks: Vec<_> = (0..lanes)
            .map(|_| {
                let lane = Lane {
                    worker: this.clone(),
                    transport: Transport::from_settings(&this.settings),
                    queue: queue.clone(),
                    outcomes: outcomes.clone(),
                    shared: shared.clone(),
                };
                tokio::spawn(lane.run())
            })
            .collect();
        drop(outcomes);
        this.claim_until_stopped(&jobs, &shared, &leases, batch, &mut stop)
            .await;
        shared.stopping.store(true, Ordering::Release);
        drop(jobs);
        for task in lane_tasks {
            if let Err(error) = task.await {
                tracing::warn!(?error, "a mail lane ended abnormally");
            }
        }
        if let Err(error) = recorder.await {
            tracing::warn!(?error, "the outcome recorder ended abnormally");
        }
        keeper.abort();
        tracing::info!("mail worker stopped");
    }

    /// The claimer: keeps the lanes' queue topped up until `stop`.
    async fn claim_until_stopped(
        &self,
        jobs: &mpsc::Sender<Job>,
        shared: &Shared,
        leases: &Mutex<Vec<Arc<Lease>>>,
        batch: usize,
        stop: &mut watch::Receiver<bool>,
    ) {
        let poll = self.settings.worker_tuning.poll;
        let room = jobs.max_capacity();
        let mut idle = false;
        while !*stop.borrow() {
            if let Some(until) = shared.paused() {
                tracing::info!("the mail relay is throttling: pausing delivery");
                let _ = tokio::time::timeout(until - Instant::now(), stop.changed()).await;
                continue;
            }
            // Top up once half the room is free.
            if jobs.capacity() < room / 2 {
                tokio::select! {
                    _ = shared.taken.notified() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let wanted = jobs.capacity().min(batch);
            match self.claim(wanted, idle).await {
                Ok(None) => {
                    if !idle {
                        self.refresh_gauges().await;
                    }
                    idle = true;
                    self.queue_digests().await;
                    let _ = tokio::time::timeout(poll, stop.changed()).await;
                }
                Ok(Some((rows, context, lease))) => {
                    idle = false;
                    leases
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(lease.clone());
                    for row in rows {
                        let job = Job {
                            row,
                            context: context.clone(),
                            lease: lease.clone(),
                        };
                        if jobs.send(job).await.is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(?error, "claiming mail failed");
                    let _ = tokio::time::timeout(poll, stop.changed()).await;
                }
            }
        }
    }

    /// Claims up to `wanted` rows and loads what their mails speak of;
    /// `None` when nothing is due. An idle worker first looks with a read.
    async fn claim(
        &self,
        wanted: usize,
        idle: bool,
    ) -> Result<Option<(Vec<Claimed>, Arc<Context>, Arc<Lease>)>, DbError> {
        if idle
            && !self
                .db
                .read(|conn| outbox::any_due(conn, Utc::now()))
                .await?
        {
            return Ok(None);
        }
        let lease = self.settings.worker_lease;
        let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
        let claim = Arc::new(Lease::new(until));
        let token = claim.token.clone();
        let limit = i64::try_from(wanted).unwrap_or(i64::MAX);
        let rows = self
            .db
            .write(move |conn| outbox::claim(conn, limit, until, Utc::now(), &token))
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let (rows, context) = self
            .db
            .read(move |conn| Context::load(conn, &rows).map(|context| (rows, context)))
            .await?;
        Ok(Some((rows, Arc::new(context), claim)))
    }

    /// Queues the daily digests that are due (an idle worker's chore),
    /// looking with a read first.
    async fn queue_digests(&self) {
        let hour = self.settings.worker_tuning.digest_hour;
        let due = self
            .db
            .read(move |conn| digests::any_due(conn, Utc::now(), hour))
            .await;
        match due {
            Ok(false) => return,
            Ok(true) => {}
            Err(error) => {
                tracing::warn!(?error, "looking for due digests failed");
                return;
            }
        }
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

/// One sender: takes jobs from the shared queue, one at a time.
struct Lane {
    worker: Arc<Worker>,
    transport: Transport,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    outcomes: mpsc::UnboundedSender<Recording>,
    shared: Arc<Shared>,
}

impl Lane {
    async fn run(mut self) {
        // The previous message's recording: awaited before the next send.
        let mut unrecorded: Option<oneshot::Receiver<()>> = None;
        loop {
            let job = self.queue.lock().await.recv().await;
            let Some(job) = job else { break };
            self.shared.taken.notify_one();
            let outcome = self.outcome(&job, &mut unrecorded).await;
            self.worker.metrics.count(&outcome);
            let sent = matches!(outcome, Outcome::Sent { .. });
            let (recorded, on_record) = oneshot::channel();
            let recording = Recording {
                id: job.row.id,
                lease: job.lease,
                outcome,
                recorded,
            };
            if self.outcomes.send(recording).is_err() {
                break;
            }
            if sent {
                unrecorded = Some(on_record);
            }
        }
        if let Some(previous) = unrecorded {
            let _ = previous.await;
        }
    }

    /// Sends the job's message, or says why not.
    async fn outcome(
        &mut self,
        job: &Job,
        unrecorded: &mut Option<oneshot::Receiver<()>>,
    ) -> Outcome {
        let settings = &self.worker.settings;
        if self.shared.stopping.load(Ordering::Acquire) {
            return Outcome::Released;
        }
        if !job.lease.leaves(settings.worker_lease / 2) {
            tracing::warn!(id = job.row.id, "the claim could not be kept: not sending");
            return Outcome::Released;
        }
        if let Some(until) = self.shared.paused() {
            // Once the relay throttles, the rest waits.
            let at =
                Utc::now() + chrono::Duration::from_std(until - Instant::now()).unwrap_or_default();
            return Outcome::Retry {
                error: "not tried: the relay was throttling".into(),
                reply: None,
                at,
                counts: false,
            };
        }
        let plan = compose(
            &job.row,
            &job.context,
            settings,
            &self.worker.links,
            Utc::now(),
        );
        let mail = match plan {
            Plan::Suppress => return Outcome::Suppressed,
            Plan::Fail(error) => return Outcome::Failed { error, reply: None },
            Plan::Send(mail) => mail,
        };
        // The envelope goes ahead while the previous message's outcome is
        // being recorded; the data waits for it.
        let previous = unrecorded.take();
        let recorded = async {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
        };
        let started = Instant::now();
        let sent = self
            .transport
            .send(&mail.message_id, &mail.envelope, &mail.bytes, recorded)
            .await;
        self.worker
            .metrics
            .send_seconds
            .observe(started.elapsed().as_secs_f64());
        let outcome = classify(sent, &job.row, &settings.worker_tuning);
        if let Outcome::Retry { counts: false, .. } = outcome {
            self.shared
                .pause(Instant::now() + settings.worker_tuning.throttle_pause);
        }
        outcome
    }
}

/// The recorder: writes every outcome that has arrived in one statement,
/// then tells the lanes. A failed write is tried again (the lanes wait:
/// nothing is sent that could not be recorded); it is given up only once
/// the lanes are gone, and then the claims' leases run out and the rows
/// are sent again.
async fn record(db: Db, mut to_record: mpsc::UnboundedReceiver<Recording>, lanes: usize) {
    let gathering = gathering(&db);
    // A quarter of the lanes' outcomes make a statement worth its cost.
    let enough = (lanes / 4).clamp(1, RECORD_AT_MOST);
    let mut recorder = outbox::Recorder::new(db);
    let mut batch = Vec::new();
    while to_record.recv_many(&mut batch, RECORD_AT_MOST).await > 0 {
        if !gathering.is_zero() {
            let until = tokio::time::Instant::now() + gathering;
            while batch.len() < enough {
                match tokio::time::timeout_at(until, to_record.recv()).await {
                    Ok(Some(recording)) => batch.push(recording),
                    Ok(None) | Err(_) => break,
                }
            }
            while batch.len() < RECORD_AT_MOST {
                let Ok(recording) = to_record.try_recv() else {
                    break;
                };
                batch.push(recording);
            }
        }
        // The leases stay held (and kept) until their outcomes are written.
        let (outcomes, acks): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .map(|r| ((r.id, r.lease, r.outcome), r.recorded))
            .unzip();
        let rows: Vec<(i64, &str, &Outcome)> = outcomes
            .iter()
            .map(|(id, lease, outcome)| (*id, lease.token.as_str(), outcome))
            .collect();
        let mut delay = Duration::from_millis(50);
        loop {
            match recorder.record(&rows, Utc::now()).await {
                Ok(_) => break,
                Err(error) if to_record.is_closed() && delay > Duration::from_secs(1) => {
                    tracing::error!(?error, "recording mail outcomes failed: giving up");
                    break;
                }
                Err(error) => {
                    tracing::warn!(?error, "recording mail outcomes failed: trying again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
        drop(outcomes);
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// How long the recorder lets outcomes gather before it writes them. On a
/// database server each recording costs a round trip and a statement the
/// server runs whole, and with three workers each recorder saw two or three
/// outcomes at a time. A millisecond's wait, which the lanes spend on their
/// next envelope, wrote three to four times fewer statements, and the
/// workers and PostgreSQL spent 9–25 % less CPU on the same mails in each
/// of seven alternating pairs (bench/README.md). But a lane sends its next
/// data only once its previous outcome is written, so the wait is each
/// lane's too: one worker's twenty lanes, whose outcomes come several at a
/// time, were faster without it. The recorder therefore waits at most this
/// long, and only until a quarter of the lanes' outcomes are in hand.
/// SQLite's statement runs in this process; waiting there gained nothing.
fn gathering(db: &Db) -> Duration {
    if db.is_sqlite() {
        Duration::ZERO
    } else {
        Duration::from_millis(1)
    }
}

/// The keeper: every quarter lease, moves the lease of each claim still in
/// hand a whole lease ahead.
async fn keep_leases(db: Db, leases: Arc<Mutex<Vec<Arc<Lease>>>>, lease: Duration) {
    let mut ticker = tokio::time::interval(lease / 4);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let held: Vec<Arc<Lease>> = {
            let mut leases = leases.lock().unwrap_or_else(|p| p.into_inner());
            // A claim nobody else holds is done: all its outcomes are recorded.
            leases.retain(|held| Arc::strong_count(held) > 1);
            leases.clone()
        };
        if held.is_empty() {
            continue;
        }
        let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
        let tokens: Vec<String> = held.iter().map(|l| l.token.clone()).collect();
        match db
            .write(move |conn| outbox::extend(conn, &tokens, until))
            .await
        {
            Ok(_) => {
                for held in &held {
                    held.until
                        .store(until.timestamp_millis(), Ordering::Release);
                }
            }
            Err(error) => tracing::warn!(?error, "extending the mail claims failed"),
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
