//! Outgoing mail: what each mail says, how one built message leaves the
//! service (and what the receiving side said), and the worker that drains
//! the outbox.

pub mod compose; // from an outbox row to the message to send
pub mod file; // the .eml folder used when no SMTP relay is configured
pub mod header_text; // user data made safe for a header field
pub mod message; // templates and the message with its headers
pub mod metrics; // the queue in /metrics
pub mod smtp; // one long-lived SMTP connection per sender task
pub mod smtp_url; // CLEARANCE_SMTP_URL, parsed at start
mod tls; // implicit TLS over our own (TCP_NODELAY) socket
pub mod transport; // the outcome of one send, and the choice of transport
pub mod worker; // claims due rows, sends them, records the outcomes

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Settings;
use crate::db::Db;
use crate::links::LinkTokens;

/// A worker running on its own task.
pub struct RunningWorker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    /// Asks the worker to stop and waits while it finishes its batch.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(?error, "the mail worker ended abnormally");
        }
    }
}

/// Starts the delivery worker, its metrics registered in `registry`.
/// Where mail goes must work before anything else starts: with no relay
/// (`CLEARANCE_SMTP_URL`), the mail folder must be writable.
pub fn check_destination(settings: &Settings) -> Result<(), crate::app::StartupError> {
    match settings.smtp_url {
        Some(_) => Ok(()),
        None => file::check_writable(&settings.mail_dir).map_err(crate::app::StartupError),
    }
}

pub fn spawn_worker(
    db: Db,
    settings: Arc<Settings>,
    registry: &prometheus::Registry,
) -> anyhow::Result<RunningWorker> {
    let links = Arc::new(LinkTokens::from_settings(&settings)?);
    let metrics = metrics::MailMetrics::new(registry)?;
    let (stop, stopped) = watch::channel(false);
    let worker = worker::Worker::new(db, settings, links, metrics);
    Ok(RunningWorker {
        stop,
        task: tokio::spawn(worker.run(stopped)),
    })
}
