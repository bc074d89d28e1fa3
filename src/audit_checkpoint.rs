//! Checkpoints of the audit chain outside the database: the signed head
//! (row count, last hash) on a timer as a log line, the
//! `clearance_audit_head_seq` gauge and, when configured, a JSON line
//! appended to a file. Someone who can write the database and has kept an
//! old signed head could put the chain back to it together with the rows it
//! counts; a checkpoint kept elsewhere shows the count going backwards.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use prometheus::{IntGauge, Registry};

use crate::db::{Db, audit};
use crate::domain::audit::ChainHead;

pub struct Checkpoints {
    db: Db,
    every: Duration,
    file: Option<PathBuf>,
    head_seq: IntGauge,
}

impl Checkpoints {
    /// Registers the gauge; [`Self::run`] then exports.
    pub fn new(
        db: Db,
        every: Duration,
        file: Option<PathBuf>,
        registry: &Registry,
    ) -> anyhow::Result<Self> {
        let head_seq = IntGauge::new(
            "clearance_audit_head_seq",
            "Rows in the audit chain, as its signed head says at the last checkpoint",
        )?;
        Ok(Self {
            db,
            every,
            file,
            head_seq: crate::metrics::registered(registry, head_seq)?,
        })
    }

    /// Exports the head at once and then every period, until dropped.
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.db.read(audit::head).await {
                Ok(Some(head)) => self.export(&head),
                Ok(None) => tracing::error!("audit checkpoint: the chain's head is missing"),
                Err(error) => tracing::warn!(?error, "audit checkpoint: cannot read the head"),
            }
        }
    }

    fn export(&self, head: &ChainHead) {
        self.head_seq.set(head.seq);
        tracing::info!(
            seq = head.seq,
            hash = %head.hash,
            signature = %head.signature,
            "audit checkpoint"
        );
        let Some(path) = &self.file else {
            return;
        };
        let line = serde_json::json!({
            "at": Utc::now().to_rfc3339(),
            "seq": head.seq,
            "hash": head.hash,
            "keyed_from": head.keyed_from,
            "signature": head.signature,
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(error) = written {
            tracing::error!(%error, file = %path.display(), "audit checkpoint: cannot append");
        }
    }
}
