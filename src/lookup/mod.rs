//! The lookup: an in-memory index of the register, shared by every request
//! without locks, and kept current model by model.
//!
//! It is built whole once, at start. After that:
//!
//! - a write's use case records the models it changed in the register's
//!   change log inside its transaction (`db::changes::record`), and after
//!   the commit hands the same ids to [`Lookup::apply`], which reloads just
//!   those models: the writer's next read sees its change;
//! - [`Lookup::follow`] reads the change log every refresh period and
//!   reloads the models that other processes changed. A process that fell
//!   behind the pruned log rebuilds whole.
//!
//! Changed models go into a small overlay laid over the large base (see
//! [`index`]): a change costs about the size of the overlay, never the
//! register's. When the overlay grows past [`OVERLAY_LIMIT`] models, the
//! follower rebuilds the base from the database in the background and the
//! overlay starts afresh.

pub mod answer;
pub mod index;
mod part;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use crate::db::changes::Since;
use crate::db::lookup_source::{self, ModelRow};
use crate::db::types::DbId;
use crate::db::{self, Db, DbConnection, DbError};
use crate::domain::clearance::{DecisionInForce, OpenReview};
use index::Overlay;
pub use index::{IndexedModel, LookupIndex};
use part::{ClearanceInputs, MakerInput, ModelInput, Part, PartBuilder};

/// Most changed models the overlay holds before the base is rebuilt. The
/// overlay is rebuilt on every change, so this bounds a change's cost.
const OVERLAY_LIMIT: usize = 2_048;

/// Most change-log rows the follower reads in one go; more, and it rebuilds.
const LOG_LIMIT: usize = 50 * OVERLAY_LIMIT;

/// Models read per query while building the base.
const BUILD_CHUNK: i64 = 20_000;

pub struct Lookup {
    db: Db,
    current: ArcSwap<LookupIndex>,
    /// One loader at a time, so that a later load always wins.
    changes: Mutex<Changes>,
    /// One whole rebuild at a time.
    rebuilding: Mutex<()>,
    /// Set when the overlay has grown past its limit.
    overlay_full: Notify,
}

/// The models loaded since the base was built.
struct Changes {
    /// How many loads there have been: a rebuild keeps the loads made after
    /// it began.
    loads: u64,
    /// The change-log generation followed through: every change up to it
    /// is in the index.
    generation: i64,
    base: Arc<Part>,
    /// The generation read before the base was read.
    base_fresh_through: i64,
    models: BTreeMap<Uuid, Loaded>,
}

/// A model and its maker; `None` when the database no longer has it.
type Present = Option<(Arc<ModelInput>, Arc<MakerInput>)>;

#[derive(Clone)]
struct Loaded {
    model: Present,
    /// The generation read before the model was: it holds every change
    /// up to there.
    fresh_through: i64,
    load: u64,
}

impl Changes {
    fn fresh_through(&self, id: Uuid) -> i64 {
        self.models
            .get(&id)
            .map_or(self.base_fresh_through, |loaded| loaded.fresh_through)
    }
}

impl Lookup {
    /// Builds the index from the database.
    pub async fn load(db: Db) -> Result<Arc<Self>, DbError> {
        let started = std::time::Instant::now();
        let (generation, base) = db.read(build_base).await?;
        let base = Arc::new(base);
        tracing::info!(
            models = base.len(),
            megabytes = base.bytes() / 1_000_000,
            generation,
            seconds = started.elapsed().as_secs_f64(),
            "lookup index built"
        );
        Ok(Arc::new(Self {
            db,
            current: ArcSwap::from_pointee(LookupIndex::new(
                generation,
                base.clone(),
                Arc::default(),
            )),
            changes: Mutex::new(Changes {
                loads: 0,
                generation,
                base,
                base_fresh_through: generation,
                models: BTreeMap::new(),
            }),
            rebuilding: Mutex::new(()),
            overlay_full: Notify::new(),
        }))
    }

    /// The index as of now; cheap, lock-free.
    pub fn snapshot(&self) -> Arc<LookupIndex> {
        self.current.load_full()
    }

    /// Call after committing a write that changed these models (the ids its
    /// transaction passed to `db::changes::record`): reloads them, so that
    /// the index answers with them as they are now when this returns. Costs
    /// about as much as the models changed, whatever the register's size;
    /// more models than the overlay holds rebuild the index whole. A
    /// failure is logged, not returned: the write stands, and the follower
    /// finds the change in the log.
    pub async fn apply(&self, models: &[Uuid]) {
        if models.is_empty() {
            return;
        }
        let result = if models.len() > OVERLAY_LIMIT {
            self.rebuild().await
        } else {
            let mut changes = self.changes.lock().await;
            match self.reload(&mut changes, models.to_vec()).await {
                Ok(()) => self.publish(&changes).await,
                Err(error) => Err(error),
            }
        };
        if let Err(error) = result {
            tracing::warn!(?error, "lookup index: applying a change failed");
        }
    }

    /// Follows the change log every `every` and, alongside (so that other
    /// processes' changes keep arriving meanwhile), rebuilds the base when
    /// the overlay is full; until the task is dropped.
    pub async fn follow(self: Arc<Self>, every: Duration) {
        let follow_log = async {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(error) = self.catch_up().await {
                    tracing::warn!(?error, "lookup index refresh failed");
                }
            }
        };
        let fold_overlay = async {
            loop {
                self.overlay_full.notified().await;
                if let Err(error) = self.rebuild().await {
                    tracing::warn!(?error, "lookup index rebuild failed");
                }
            }
        };
        tokio::join!(follow_log, fold_overlay);
    }

    /// Reloads the models the change log names since the generation this
    /// index has followed through, unless a load since has them already.
    async fn catch_up(&self) -> Result<(), DbError> {
        let mut changes = self.changes.lock().await;
        let known = changes.generation;
        let since = self
            .db
            .read(move |conn| db::changes::since(conn, known, LOG_LIMIT))
            .await?;
        let (through, logged) = match since {
            Since::Changed { through, models } => (through, models),
            Since::TooFar { through } => {
                tracing::info!(
                    known,
                    through,
                    "lookup index: the change log is out of reach"
                );
                drop(changes);
                return self.rebuild().await;
            }
        };
        if through == known {
            return Ok(());
        }
        let mut stale: Vec<Uuid> = logged
            .into_iter()
            .filter(|(generation, id)| changes.fresh_through(*id) < *generation)
            .map(|(_, id)| id)
            .collect();
        stale.sort_unstable();
        stale.dedup();
        if stale.len() > OVERLAY_LIMIT {
            drop(changes);
            return self.rebuild().await;
        }
        if stale.is_empty() {
            // Only the generation moved: the same parts, renumbered.
            changes.generation = through;
            let current = self.snapshot();
            let (base, overlay) = (current.base().clone(), current.overlay().clone());
            self.current
                .store(Arc::new(LookupIndex::new(through, base, overlay)));
            return Ok(());
        }
        self.reload(&mut changes, stale).await?;
        changes.generation = through;
        self.publish(&changes).await
    }

    /// Reads these models afresh into the overlay.
    async fn reload(&self, changes: &mut Changes, ids: Vec<Uuid>) -> Result<(), DbError> {
        let (fresh_through, loaded) = self.db.read(move |conn| load_models(conn, &ids)).await?;
        changes.loads += 1;
        for (id, model) in loaded {
            let loaded = Loaded {
                model,
                fresh_through,
                load: changes.loads,
            };
            changes.models.insert(id, loaded);
        }
        Ok(())
    }

    /// Makes `changes` what readers see.
    async fn publish(&self, changes: &Changes) -> Result<(), DbError> {
        let base = changes.base.clone();
        let models = changes.models.clone();
        let generation = changes.generation;
        let index = tokio::task::spawn_blocking(move || {
            let overlay = overlay(&base, &models);
            LookupIndex::new(generation, base, Arc::new(overlay))
        })
        .await
        .map_err(|e| DbError::Other(e.into()))?;
        self.current.store(Arc::new(index));
        if changes.models.len() > OVERLAY_LIMIT {
            self.overlay_full.notify_one();
        }
        Ok(())
    }

    /// Builds the base afresh from the database, keeping the models loaded
    /// since it began (they may be newer than what it read).
    async fn rebuild(&self) -> Result<(), DbError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let started = std::time::Instant::now();
        let mark = self.changes.lock().await.loads;
        let (generation, base) = self.db.read(build_base).await?;
        let mut changes = self.changes.lock().await;
        changes.models.retain(|_, loaded| loaded.load > mark);
        // A model loaded before the base was read may miss changes the
        // base has: follow the log again from the oldest such load.
        changes.generation = changes
            .models
            .values()
            .map(|loaded| loaded.fresh_through)
            .fold(generation, i64::min);
        changes.base = Arc::new(base);
        changes.base_fresh_through = generation;
        self.publish(&changes).await?;
        tracing::info!(
            models = changes.base.len(),
            megabytes = changes.base.bytes() / 1_000_000,
            generation,
            seconds = started.elapsed().as_secs_f64(),
            "lookup index rebuilt"
        );
        Ok(())
    }
}

/// The overlay of `models` over `base`.
fn overlay(base: &Part, models: &BTreeMap<Uuid, Loaded>) -> Overlay {
    // A maker loaded twice: the newest copy is the one the builder keeps.
    let mut makers: Vec<(u64, Arc<MakerInput>)> = models
        .values()
        .filter_map(|l| l.model.as_ref().map(|(_, maker)| (l.load, maker.clone())))
        .collect();
    makers.sort_by_key(|(load, _)| std::cmp::Reverse(*load));
    let present = models
        .values()
        .filter_map(|l| l.model.as_ref().map(|(model, _)| &**model));
    let part = Part::build(makers.into_iter().map(|(_, m)| m).collect(), present);
    Overlay::new(base, part, models.keys().copied())
}

/// What decides the clearance of the models being read.
struct ClearanceSources {
    decisions: HashMap<Uuid, Vec<DecisionInForce>>,
    reviews: HashMap<Uuid, OpenReview>,
    last_changes: HashMap<Uuid, DateTime<Utc>>,
}

impl ClearanceSources {
    /// Of the given models; of all with `None`.
    fn read(conn: &mut DbConnection, ids: Option<&[DbId]>) -> Result<Self, DbError> {
        Ok(Self {
            decisions: db::clearance::decisions_in_force(conn, ids)?,
            reviews: db::clearance::open_reviews(conn, ids)?,
            last_changes: db::clearance::last_changes(conn, ids)?,
        })
    }

    fn model(&mut self, row: ModelRow) -> ModelInput {
        let inputs = ClearanceInputs {
            since: self
                .last_changes
                .get(&row.id)
                .copied()
                .unwrap_or(row.created_at),
            decisions: self.decisions.remove(&row.id).unwrap_or_default(),
            review: self.reviews.get(&row.id).copied(),
        };
        ModelInput::new(
            row.id,
            row.manufacturer_id,
            row.name,
            &row.other_names,
            &row.tacs,
            inputs,
        )
    }
}

fn maker_input(row: lookup_source::MakerRow) -> Arc<MakerInput> {
    Arc::new(MakerInput::new(row.id, row.name, row.country, &row.aliases))
}

/// Reads the whole register into a base part. The generation is read
/// first: a change committed meanwhile is in the log after it, so
/// following the log from there never misses one. Reading (this thread)
/// and indexing (another) overlap, a chunk at a time; reading the rows is
/// the larger half, so the indexer also compacts the names.
fn build_base(conn: &mut DbConnection) -> Result<(i64, Part), DbError> {
    let generation = db::changes::current(conn)?;
    let makers = lookup_source::makers(conn, None)?;
    let mut sources = ClearanceSources::read(conn, None)?;
    let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<ModelRow>>(2);
    std::thread::scope(|scope| {
        let indexer = scope.spawn(move || {
            let mut builder = PartBuilder::new(makers.into_iter().map(maker_input).collect());
            for chunk in received {
                for row in chunk {
                    builder.push(&sources.model(row));
                }
            }
            builder.finish()
        });
        let read = (|| {
            let mut after = None;
            loop {
                let rows = lookup_source::models_after(conn, after, BUILD_CHUNK)?;
                let Some(last) = rows.last() else {
                    return Ok(());
                };
                after = Some(last.id);
                if chunks.send(rows).is_err() {
                    return Ok(()); // the indexer died: its join says why
                }
            }
        })();
        drop(chunks);
        let part = indexer
            .join()
            .map_err(|_| DbError::Other(anyhow::anyhow!("building the lookup index panicked")))?;
        read.map(|()| (generation, part))
    })
}

/// The given models as they are now (`None` for those the database no
/// longer has), and the generation read before them.
fn load_models(
    conn: &mut DbConnection,
    ids: &[Uuid],
) -> Result<(i64, Vec<(Uuid, Present)>), DbError> {
    let generation = db::changes::current(conn)?;
    let rows = lookup_source::models_by_id(conn, ids)?;
    let found: Vec<DbId> = rows.iter().map(|r| DbId(r.id)).collect();
    let mut sources = ClearanceSources::read(conn, Some(&found))?;
    let mut maker_ids: Vec<Uuid> = rows.iter().map(|r| r.manufacturer_id).collect();
    maker_ids.sort_unstable();
    maker_ids.dedup();
    let makers: HashMap<Uuid, Arc<MakerInput>> = lookup_source::makers(conn, Some(&maker_ids))?
        .into_iter()
        .map(|row| (row.id, maker_input(row)))
        .collect();
    let mut loaded: HashMap<Uuid, Present> = ids.iter().map(|id| (*id, None)).collect();
    for row in rows {
        let maker = makers.get(&row.manufacturer_id).cloned();
        let id = row.id;
        let model = Arc::new(sources.model(row));
        loaded.insert(id, maker.map(|maker| (model, maker)));
    }
    Ok((generation, loaded.into_iter().collect()))
}
