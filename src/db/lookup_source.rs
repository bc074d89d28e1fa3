//! What the lookup index is built from: each model's names, TACs and
//! manufacturer. The whole register is read in id order a chunk at a time
//! (bounded memory, the same queries on both backends, each one a range
//! scan of a primary key or index); changed models are read by id.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{Children, ChildrenOf, Owners, children_of};
use super::schema::{manufacturers, models};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};

/// One model as the lookup index needs it.
pub struct ModelRow {
    pub id: Uuid,
    pub manufacturer_id: Uuid,
    pub name: String,
    /// Its aliases and model numbers.
    pub other_names: Vec<String>,
    pub tacs: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// One manufacturer as the lookup index needs it.
pub struct MakerRow {
    pub id: Uuid,
    pub name: String,
    pub country: String,
    pub aliases: Vec<String>,
}

/// Most ids bound in one statement.
const CHUNK: usize = 1_000;

#[derive(Queryable, Selectable)]
#[diesel(table_name = models)]
struct Head {
    id: DbId,
    manufacturer_id: DbId,
    name: String,
    created_at: DbTime,
}

/// Up to `limit` models in id order, starting after `after`.
pub fn models_after(
    conn: &mut DbConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ModelRow>, DbError> {
    let heads: Vec<Head> =
        super::page_after!(models, Head::as_select(), after.map(DbId), limit).load(conn)?;
    let Some(through) = heads.last().map(|h| h.id) else {
        return Ok(Vec::new());
    };
    let owners = Owners::Range {
        after: after.map(DbId),
        through,
    };
    let children = children_of(conn, owners)?;
    Ok(attach(heads, children))
}

/// The given models that exist, in id order.
pub fn models_by_id(conn: &mut DbConnection, ids: &[Uuid]) -> Result<Vec<ModelRow>, DbError> {
    let mut ids: Vec<DbId> = ids.iter().copied().map(DbId).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let heads: Vec<Head> = models::table
            .select(Head::as_select())
            .filter(models::id.eq_any(chunk))
            .order(models::id)
            .load(conn)?;
        let children = children_of(conn, Owners::Ids(chunk))?;
        found.extend(attach(heads, children));
    }
    Ok(found)
}

/// Joins models with their names and TACs.
fn attach(heads: Vec<Head>, mut children: ChildrenOf) -> Vec<ModelRow> {
    heads
        .into_iter()
        .map(|head| {
            let Children {
                mut aliases,
                model_numbers,
                tacs,
            } = children.remove(&head.id).unwrap_or_default();
            aliases.extend(model_numbers);
            ModelRow {
                id: head.id.0,
                manufacturer_id: head.manufacturer_id.0,
                name: head.name,
                other_names: aliases,
                tacs,
                created_at: head.created_at.0,
            }
        })
        .collect()
}

/// The given manufacturers (all with `None`), with their aliases.
pub fn makers(conn: &mut DbConnection, ids: Option<&[Uuid]>) -> Result<Vec<MakerRow>, DbError> {
    let row = |m: crate::domain::registry::Manufacturer| MakerRow {
        id: m.id,
        name: m.name,
        country: m.country,
        aliases: m.aliases,
    };
    match ids {
        Some(ids) => ids
            .iter()
            .map(|id| super::manufacturers::get(conn, *id).map(row))
            .collect(),
        None => {
            let mut aliases = super::manufacturers::all_aliases(conn)?;
            let all: Vec<(DbId, String, String)> = manufacturers::table
                .select((
                    manufacturers::id,
                    manufacturers::name,
                    manufacturers::country,
                ))
                .load(conn)?;
            Ok(all
                .into_iter()
                .map(|(id, name, country)| MakerRow {
                    aliases: aliases.remove(&id.0).unwrap_or_default(),
                    id: id.0,
                    name,
                    country,
                })
                .collect())
        }
    }
}
