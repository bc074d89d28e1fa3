//! The register's change log: which models each committed write changed,
//! numbered by the register's generation. A server process keeps its
//! in-memory lookup index current by reloading just the models the log
//! names since the generation it has seen (`crate::lookup`).
//!
//! Every write that changes what a lookup answers about a model — its
//! names, TACs or manufacturer, the decisions in force about it, an open
//! review, a change of its stored status — calls [`record`] with those
//! models inside its transaction, and after the commit hands the same ids to
//! `Lookup::apply`.

use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{registry_changes, registry_generation};
use super::types::DbId;
use super::{DbConnection, DbError};

/// How many generations the log keeps. A process that falls further behind
/// (it was stopped, or its database connection was lost for long) finds the
/// rows it needs pruned and rebuilds its index whole.
const KEEP_GENERATIONS: i64 = 10_000;

/// Pruning runs on every this-many-th generation, so that a write's cost
/// stays that of its own rows.
const PRUNE_EVERY: i64 = 100;

/// Records, in the caller's transaction, that these models changed: bumps
/// the register's generation and logs the ids under it. Returns the new
/// generation. An empty list changes nothing and returns the current one.
///
/// The bump locks the generation row until the transaction ends, so
/// generations commit in order: whoever sees generation `g` committed sees
/// every generation below it too.
pub fn record(conn: &mut DbConnection, models: &[Uuid]) -> Result<i64, DbError> {
    use registry_generation::dsl as g;
    let mut ids: Vec<Uuid> = models.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return current(conn);
    }
    let generation: i64 = diesel::update(g::registry_generation.filter(g::id.eq(1)))
        .set(g::generation.eq(g::generation + 1))
        .returning(g::generation)
        .get_result(conn)?;
    // One row at a time: the multi-backend connection has no batch insert.
    for id in ids {
        diesel::insert_into(registry_changes::table)
            .values((
                registry_changes::generation.eq(generation),
                registry_changes::model_id.eq(DbId(id)),
            ))
            .execute(conn)?;
    }
    if generation % PRUNE_EVERY == 0 {
        prune(conn, generation - KEEP_GENERATIONS)?;
    }
    Ok(generation)
}

/// Forgets the log up to generation `through`: a process that has seen
/// less will rebuild whole.
pub fn prune(conn: &mut DbConnection, through: i64) -> Result<(), DbError> {
    use registry_generation::dsl as g;
    if through <= 0 {
        return Ok(());
    }
    diesel::delete(registry_changes::table.filter(registry_changes::generation.le(through)))
        .execute(conn)?;
    diesel::update(
        g::registry_generation
            .filter(g::id.eq(1))
            .filter(g::pruned_through.lt(through)),
    )
    .set(g::pruned_through.eq(through))
    .execute(conn)?;
    Ok(())
}

/// The register's generation: how many changes have been committed.
pub fn current(conn: &mut DbConnection) -> Result<i64, DbError> {
    use registry_generation::dsl as g;
    Ok(g::registry_generation
        .select(g::generation)
        .filter(g::id.eq(1))
        .first(conn)?)
}

/// What changed after a generation, as [`since`] answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    /// Every change after the generation asked about, through `through`:
    /// `(generation, model)` in generation order.
    Changed {
        through: i64,
        models: Vec<(i64, Uuid)>,
    },
    /// The log no longer reaches back that far, or names more than `limit`
    /// models: reload everything. `through` is the generation now.
    TooFar { through: i64 },
}

/// The models changed after `generation`, at most `limit` rows of them.
pub fn since(conn: &mut DbConnection, generation: i64, limit: usize) -> Result<Since, DbError> {
    let (through, pruned) = generation_and_horizon(conn)?;
    if generation < pruned {
        return Ok(Since::TooFar { through });
    }
    if generation >= through {
        return Ok(Since::Changed {
            through,
            models: Vec::new(),
        });
    }
    let rows: Vec<(i64, DbId)> = registry_changes::table
        .filter(registry_changes::generation.gt(generation))
        .filter(registry_changes::generation.le(through))
        .select((registry_changes::generation, registry_changes::model_id))
        .order((registry_changes::generation, registry_changes::model_id))
        .limit(i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
        .load(conn)?;
    // Pruning may have run between the two reads: rows it took are missing.
    let (_, pruned) = generation_and_horizon(conn)?;
    if generation < pruned || rows.len() > limit {
        return Ok(Since::TooFar { through });
    }
    Ok(Since::Changed {
        through,
        models: rows.into_iter().map(|(g, id)| (g, id.0)).collect(),
    })
}

fn generation_and_horizon(conn: &mut DbConnection) -> Result<(i64, i64), DbError> {
    use registry_generation::dsl as g;
    Ok(g::registry_generation
        .select((g::generation, g::pruned_through))
        .filter(g::id.eq(1))
        .first(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tests::database;

    #[test]
    fn each_write_gets_the_next_generation_and_its_models() {
        let (_dir, db) = database();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        db.write_blocking(|conn| -> Result<(), DbError> {
            let start = current(conn)?;
            assert_eq!(record(conn, &[b, a, b])?, start + 1);
            assert_eq!(record(conn, &[])?, start + 1, "no models, no generation");
            assert_eq!(record(conn, &[a])?, start + 2);
            let mut first = vec![(start + 1, a), (start + 1, b)];
            first.sort();
            assert_eq!(
                since(conn, start, 10)?,
                Since::Changed {
                    through: start + 2,
                    models: [first, vec![(start + 2, a)]].concat(),
                }
            );
            assert_eq!(
                since(conn, start + 1, 10)?,
                Since::Changed {
                    through: start + 2,
                    models: vec![(start + 2, a)],
                }
            );
            assert_eq!(
                since(conn, start, 2)?,
                Since::TooFar { through: start + 2 },
                "more rows than the caller would replay"
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_process_behind_the_pruned_log_must_rebuild() {
        let (_dir, db) = database();
        let model = Uuid::now_v7();
        db.write_blocking(|conn| -> Result<(), DbError> {
            let start = current(conn)?;
            for _ in 0..3 {
                record(conn, &[model])?;
            }
            prune(conn, start + 2)?;
            assert_eq!(
                since(conn, start + 1, 10)?,
                Since::TooFar { through: start + 3 }
            );
            assert_eq!(
                since(conn, start + 2, 10)?,
                Since::Changed {
                    through: start + 3,
                    models: vec![(start + 3, model)],
                }
            );
            Ok(())
        })
        .unwrap();
    }
}
