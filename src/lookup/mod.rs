//! The lookup: an in-memory index of the register, shared by every request
//! and replaced whole when the register changes — here (right after a write
//! commits) or in another process (seen by polling a generation counter).

pub mod answer;
pub mod index;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::db::{self, Db, DbError};
pub use index::{IndexedModel, LookupIndex};

pub struct Lookup {
    db: Db,
    current: ArcSwap<LookupIndex>,
    /// One rebuild at a time; a caller that waited finds the work done.
    rebuilding: tokio::sync::Mutex<()>,
}

impl Lookup {
    /// Loads the index from the database.
    pub async fn load(db: Db) -> Result<Arc<Self>, DbError> {
        let lookup = Arc::new(Self {
            db,
            current: ArcSwap::from_pointee(LookupIndex::default()),
            rebuilding: tokio::sync::Mutex::new(()),
        });
        lookup.rebuild().await?;
        Ok(lookup)
    }

    /// The index as of now; cheap, lock-free.
    pub fn snapshot(&self) -> Arc<LookupIndex> {
        self.current.load_full()
    }

    /// Brings the index up to date with the database, rebuilding only when
    /// the register's generation moved.
    pub async fn refresh(&self) -> Result<(), DbError> {
        let _turn = self.rebuilding.lock().await;
        let known = self.current.load().generation();
        let latest = self.db.read(db::current_generation).await?;
        if latest != known {
            self.rebuild_locked().await?;
        }
        Ok(())
    }

    /// Called after a write this process committed: the caller's next read
    /// must see it. A failure is logged, not returned — the write stands and
    /// the poller will catch up.
    pub async fn refresh_after_write(&self) {
        if let Err(error) = self.refresh().await {
            tracing::warn!(?error, "lookup index refresh after a write failed");
        }
    }

    async fn rebuild(&self) -> Result<(), DbError> {
        let _turn = self.rebuilding.lock().await;
        self.rebuild_locked().await
    }

    async fn rebuild_locked(&self) -> Result<(), DbError> {
        let index = self
            .db
            .read(|conn| {
                // The generation is read first: a write landing in between
                // makes the next poll rebuild again, never miss a change.
                let generation = db::current_generation(conn)?;
                let models = db::models::load_all(conn)?;
                let aliases = db::manufacturers::all_aliases(conn)?;
                let decisions = db::clearance::decisions_in_force(conn, None)?;
                let reviews = db::clearance::open_reviews(conn, None)?;
                let last_changes = db::clearance::last_changes(conn, None)?;
                Ok(LookupIndex::build(
                    generation,
                    models,
                    &aliases,
                    decisions,
                    &reviews,
                    &last_changes,
                ))
            })
            .await?;
        tracing::debug!(
            models = index.len(),
            generation = index.generation(),
            "lookup index rebuilt"
        );
        self.current.store(Arc::new(index));
        Ok(())
    }

    /// Polls for changes made by other processes until the task is dropped.
    pub async fn follow(self: Arc<Self>, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = self.refresh().await {
                tracing::warn!(?error, "lookup index refresh failed");
            }
        }
    }
}
