//! The use cases: one function for each thing a person (or the service
//! itself) does. Each runs in one transaction that holds the change, its
//! audit rows and the mail it causes, and says what changed, so that the
//! lookup index (and anyone else who follows) can catch up. Handlers parse,
//! authorise, call one of these and render; the rules they apply live in
//! `crate::domain`, the queries in `crate::db`.

pub mod advisories;
pub mod clearance;
pub mod deliveries;
pub mod evidence;
pub mod personnel;
pub mod registry;
pub mod reviews;
pub mod subscriptions;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::Clock;
use crate::db::audit::{self, Change};
use crate::db::{Db, DbConnection, DbError, changes};
use crate::domain::audit::{Actor, AuditKey};
use crate::domain::rejection::Rejection;
use crate::lookup::Lookup;

/// Why a use case did not happen: a rule said no, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Store(#[from] DbError),
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(error.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a use case changed besides its answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Models whose names, TACs, decisions or review changed: their entries
    /// in the lookup index are stale.
    pub models: Vec<Uuid>,
    /// Mails queued for the delivery worker.
    pub mail_queued: usize,
}

/// A use case's answer, and what it changed.
#[derive(Debug)]
pub struct Done<T> {
    pub value: T,
    pub changed: Changed,
}

/// The transaction a use case runs in: the connection, the time it happens
/// at, who does it, and what it records on the way.
pub struct Tx<'c> {
    pub conn: &'c mut DbConnection,
    audit_key: &'c AuditKey,
    /// When the transaction began: what it records as the time of its change.
    pub now: DateTime<Utc>,
    clock: &'c Clock,
    pub actor: Actor,
    audit: Vec<Change>,
    changed: Changed,
}

impl<'c> Tx<'c> {
    /// The clock to derive clearances by, read once the models are locked
    /// (see `db::clearance::rederive`): never before the transaction began.
    pub fn derive_at(&self) -> impl Fn() -> DateTime<Utc> + 'c {
        let (clock, began) = (self.clock, self.now);
        move || clock.now().max(began)
    }

    /// Records a change in the audit log when the transaction ends.
    pub fn audit(&mut self, change: Change) {
        self.audit.push(change);
    }

    /// Audits `action` on the `entity` `id`, with `value` as JSON for its
    /// payload.
    pub fn audit_change(
        &mut self,
        action: &'static str,
        entity: &'static str,
        id: impl ToString,
        value: &impl serde::Serialize,
    ) -> Result<()> {
        let payload = serde_json::to_value(value).map_err(|e| DbError::Other(e.into()))?;
        self.audit(Change::new(action, entity, id, payload));
        Ok(())
    }

    /// Marks models whose lookup entry this transaction changed.
    pub fn models_changed(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        self.changed.models.extend(ids);
    }

    pub fn mail_queued(&mut self, count: usize) {
        self.changed.mail_queued += count;
    }

    /// The last writes of every transaction: the change log of the models
    /// whose lookup entry changed (so other processes' indexes follow), then
    /// the audit rows — the append serialises writers, so it comes last to
    /// hold its lock briefly.
    fn finish(mut self) -> Result<Changed> {
        self.changed.models.sort_unstable();
        self.changed.models.dedup();
        changes::record(self.conn, &self.changed.models)?;
        audit::append(self.conn, self.audit_key, &self.actor, self.audit, self.now)?;
        Ok(self.changed)
    }
}

/// Runs use cases: the database, the clock they run by, and the lookup
/// index that follows what they change.
#[derive(Clone)]
pub struct Workflow {
    db: Db,
    lookup: Arc<Lookup>,
    clock: Clock,
    /// Keys the audit chain's hashes and head.
    audit_key: AuditKey,
}

impl Workflow {
    pub fn new(db: Db, lookup: Arc<Lookup>, clock: Clock, audit_key: AuditKey) -> Self {
        Self {
            db,
            lookup,
            clock,
            audit_key,
        }
    }

    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_key
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The database, for the reads around a use case.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs `work` as `actor` in one transaction; after it commits, the
    /// lookup index in this process reflects it before the caller answers.
    pub async fn run<T, F>(&self, actor: Actor, work: F) -> Result<Done<T>>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let audit_key = self.audit_key.clone();
        let clock = self.clock.clone();
        let (value, changed) = self
            .db
            .write::<_, Error, _>(move |conn| {
                // Read once the transaction has its turn (SQLite runs one
                // at a time): a time read before could precede a change
                // committed while this one waited.
                let now = clock.now();
                let mut tx = Tx {
                    conn,
                    audit_key: &audit_key,
                    now,
                    clock: &clock,
                    actor,
                    audit: Vec::new(),
                    changed: Changed::default(),
                };
                let value = work(&mut tx)?;
                Ok((value, tx.finish()?))
            })
            .await?;
        if !changed.models.is_empty() {
            self.lookup.apply(&changed.models).await;
        }
        Ok(Done { value, changed })
    }
}

/// An error for each of `ids` that is not among `known`, naming its place:
/// `{field}[i]`.
pub fn unknown_ids(
    field: &str,
    ids: &[Uuid],
    known: &std::collections::HashSet<Uuid>,
    what: &str,
) -> Vec<crate::domain::rejection::FieldError> {
    ids.iter()
        .enumerate()
        .filter(|(_, id)| !known.contains(id))
        .map(|(i, _)| {
            crate::domain::rejection::FieldError::new(
                format!("{field}[{i}]"),
                format!("no {what} has this id"),
            )
        })
        .collect()
}
