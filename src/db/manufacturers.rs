//! Manufacturers and their aliases.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{manufacturer_aliases, manufacturers};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError, group, or_taken};
use crate::domain::registry::{Manufacturer, Name, NewManufacturer};

#[derive(Queryable, Selectable)]
#[diesel(table_name = manufacturers)]
struct Row {
    id: DbId,
    name: String,
    country: String,
    version: i64,
    created_at: DbTime,
    updated_at: DbTime,
}

/// Inserts a manufacturer with its aliases; a name taken (ignoring case) is
/// a conflict.
pub fn insert(
    conn: &mut DbConnection,
    new: &NewManufacturer,
    now: DateTime<Utc>,
) -> Result<Manufacturer, DbError> {
    let id = Uuid::now_v7();
    let inserted = diesel::insert_into(manufacturers::table)
        .values((
            manufacturers::id.eq(DbId(id)),
            manufacturers::name.eq(new.name.as_str()),
            manufacturers::name_key.eq(new.name.key()),
            manufacturers::country.eq(new.country.as_str()),
            manufacturers::version.eq(1_i64),
            manufacturers::created_at.eq(DbTime(now)),
            manufacturers::updated_at.eq(DbTime(now)),
        ))
        .execute(conn);
    or_taken(inserted, || {
        DbError::Conflict(format!(
            "a manufacturer named `{}` already exists",
            new.name
        ))
    })?;
    let aliases = crate::domain::registry::dedup_names(new.aliases.clone());
    let rows: Vec<_> = aliases
        .iter()
        .enumerate()
        .map(|(position, alias)| {
            (
                manufacturer_aliases::manufacturer_id.eq(DbId(id)),
                manufacturer_aliases::position.eq(position as i32),
                manufacturer_aliases::alias.eq(alias.as_str()),
                manufacturer_aliases::alias_key.eq(alias.key()),
            )
        })
        .collect();
    for row in rows {
        diesel::insert_into(manufacturer_aliases::table)
            .values(row)
            .execute(conn)?;
    }
    get(conn, id)
}

pub fn get(conn: &mut DbConnection, id: Uuid) -> Result<Manufacturer, DbError> {
    let row = manufacturers::table
        .find(DbId(id))
        .select(Row::as_select())
        .first(conn)?;
    let mut aliases = aliases_of(conn, &[DbId(id)])?;
    Ok(assemble(row, &mut aliases))
}

/// One page in id order, starting after `after`.
pub fn list(
    conn: &mut DbConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Manufacturer>, DbError> {
    let rows: Vec<Row> =
        super::page_after!(manufacturers, Row::as_select(), after.map(DbId), limit).load(conn)?;
    let ids: Vec<DbId> = rows.iter().map(|r| r.id).collect();
    let mut aliases = aliases_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| assemble(row, &mut aliases))
        .collect())
}

/// Every manufacturer's id and name, in name order: the makers a
/// subscriber may choose from.
pub fn names(conn: &mut DbConnection) -> Result<Vec<(Uuid, String)>, DbError> {
    let rows: Vec<(DbId, String)> = manufacturers::table
        .select((manufacturers::id, manufacturers::name))
        .order(manufacturers::name_key)
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, name)| (id.0, name)).collect())
}

/// Every manufacturer's aliases, for the lookup index.
pub fn all_aliases(conn: &mut DbConnection) -> Result<HashMap<Uuid, Vec<String>>, DbError> {
    let grouped = aliases(conn, None)?;
    Ok(grouped
        .into_iter()
        .map(|(id, aliases)| (id.0, aliases))
        .collect())
}

fn aliases_of(
    conn: &mut DbConnection,
    ids: &[DbId],
) -> Result<HashMap<DbId, Vec<String>>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    aliases(conn, Some(ids))
}

/// The aliases of the given manufacturers (of all with `None`), in order.
fn aliases(
    conn: &mut DbConnection,
    ids: Option<&[DbId]>,
) -> Result<HashMap<DbId, Vec<String>>, DbError> {
    let mut query = manufacturer_aliases::table
        .select((
            manufacturer_aliases::manufacturer_id,
            manufacturer_aliases::alias,
        ))
        .order((
            manufacturer_aliases::manufacturer_id,
            manufacturer_aliases::position,
        ))
        .into_boxed();
    if let Some(ids) = ids {
        query = query.filter(manufacturer_aliases::manufacturer_id.eq_any(ids));
    }
    Ok(group(query.load(conn)?))
}

fn assemble(row: Row, aliases: &mut HashMap<DbId, Vec<String>>) -> Manufacturer {
    Manufacturer {
        id: row.id.0,
        name: row.name,
        country: row.country,
        aliases: aliases.remove(&row.id).unwrap_or_default(),
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
        version: row.version,
    }
}

/// Which of `ids` name a manufacturer.
pub fn existing(
    conn: &mut DbConnection,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, DbError> {
    super::existing_ids!(conn, manufacturers, ids)
}

/// The manufacturer with this name, compared as names are unique (ignoring
/// case and spacing).
pub fn find_by_name(conn: &mut DbConnection, name: &Name) -> Result<Option<Manufacturer>, DbError> {
    let id: Option<DbId> = manufacturers::table
        .filter(manufacturers::name_key.eq(name.key()))
        .select(manufacturers::id)
        .first(conn)
        .optional()?;
    id.map(|id| get(conn, id.0)).transpose()
}
