//! Device models with their aliases, model numbers and TACs.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{manufacturer_aliases, manufacturers, model_names, model_tacs, models};
use super::types::{DbId, DbTime};
use super::{
    DbConnection, DbError, is_unique_violation, like_contains, one_row_changed, or_taken,
    update_versioned, version_to_replace,
};
use crate::domain::clearance::{ClearanceStatus, Scope};
use crate::domain::imei::Tac;
use crate::domain::registry::{
    Category, ManufacturerRef, Model, ModelPatch, Name, NewModel, dedup_names,
};

const ALIAS: &str = "alias";
const MODEL_NUMBER: &str = "model_number";

#[derive(Default)]
pub struct ModelFilter {
    pub q: Option<String>,
    pub manufacturer_id: Option<Uuid>,
    pub category: Option<Category>,
    pub status: Option<ClearanceStatus>,
}

/// A model joined with its manufacturer.
#[derive(Queryable, Selectable)]
#[diesel(table_name = models)]
struct Row {
    id: DbId,
    manufacturer_id: DbId,
    name: String,
    category: String,
    version: i64,
    created_at: DbTime,
    updated_at: DbTime,
    #[diesel(embed)]
    maker: MakerRow,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = manufacturers)]
struct MakerRow {
    name: String,
    country: String,
}

/// Inserts a model with its names and TACs, unassessed; a name its maker
/// already has, or a TAC another model claims, is a conflict.
pub fn insert(
    conn: &mut DbConnection,
    new: &NewModel,
    now: DateTime<Utc>,
) -> Result<Model, DbError> {
    let id = Uuid::now_v7();
    let inserted = diesel::insert_into(models::table)
        .values((
            models::id.eq(DbId(id)),
            models::manufacturer_id.eq(DbId(new.manufacturer_id)),
            models::name.eq(new.name.as_str()),
            models::name_key.eq(new.name.key()),
            models::category.eq(new.category.as_str()),
            models::clearance_status.eq(ClearanceStatus::Unassessed.as_str()),
            models::version.eq(1_i64),
            models::created_at.eq(DbTime(now)),
            models::updated_at.eq(DbTime(now)),
        ))
        .execute(conn);
    or_taken(inserted, || name_taken(&new.name))?;
    replace_names(conn, id, ALIAS, &new.aliases)?;
    replace_names(conn, id, MODEL_NUMBER, &new.model_numbers)?;
    replace_tacs(conn, id, &new.tacs)?;
    get(conn, id)
}

/// Locks the manufacturers that maker-wide `scopes` name until the
/// transaction ends (see [`in_scopes`]).
pub fn lock_makers(conn: &mut DbConnection, scopes: &[Scope]) -> Result<(), DbError> {
    let makers = scopes.iter().filter_map(|scope| match scope {
        Scope::Manufacturer { id, .. } => Some(*id),
        Scope::Model(_) => None,
    });
    super::lock_rows!(conn, manufacturers, makers);
    Ok(())
}

/// The models the scopes take in: each named model, and every model of each
/// named manufacturer (of its category, when narrowed).
///
/// The named manufacturers stay locked until the transaction ends: a model
/// being registered under one meanwhile is either found here or, its
/// registration waiting for the lock, sees the decision that is deciding.
pub fn in_scopes(conn: &mut DbConnection, scopes: &[Scope]) -> Result<Vec<Uuid>, DbError> {
    lock_makers(conn, scopes)?;
    let mut ids: Vec<Uuid> = scopes.iter().filter_map(|s| s.model()).collect();
    for scope in scopes {
        if let Scope::Manufacturer { id, category } = scope {
            let mut query = models::table
                .filter(models::manufacturer_id.eq(DbId(*id)))
                .select(models::id)
                .into_boxed();
            if let Some(category) = category {
                query = query.filter(models::category.eq(category.as_str()));
            }
            ids.extend(query.load::<DbId>(conn)?.into_iter().map(|id| id.0));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Which of `ids` name a model.
pub fn existing(conn: &mut DbConnection, ids: &[Uuid]) -> Result<HashSet<Uuid>, DbError> {
    super::existing_ids!(conn, models, ids)
}

pub fn get(conn: &mut DbConnection, id: Uuid) -> Result<Model, DbError> {
    let row = models::table
        .inner_join(manufacturers::table)
        .filter(models::id.eq(DbId(id)))
        .select(Row::as_select())
        .first(conn)?;
    let mut children = children_of(conn, Owners::Ids(&[DbId(id)]))?;
    Ok(assemble(row, &mut children))
}

/// Applies `patch`; with `expected_version`, only if the model is still at
/// that version (else [`DbError::Stale`]).
pub fn update(
    conn: &mut DbConnection,
    id: Uuid,
    patch: &ModelPatch,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Model, DbError> {
    let version = version_to_replace!(conn, models, id, expected_version)?;
    let updated = update_versioned!(
        conn,
        models,
        id,
        version,
        now,
        (
            patch.name.as_ref().map(|name| {
                (
                    models::name.eq(name.as_str()),
                    models::name_key.eq(name.key()),
                )
            }),
            patch.category.map(|c| models::category.eq(c.as_str())),
        )
    );
    match (updated, &patch.name) {
        (Err(e), Some(name)) if is_unique_violation(&e) => return Err(name_taken(name)),
        (rows, _) => one_row_changed(rows?, "model", expected_version)?,
    };
    if let Some(aliases) = &patch.aliases {
        replace_names(conn, id, ALIAS, aliases)?;
    }
    if let Some(numbers) = &patch.model_numbers {
        replace_names(conn, id, MODEL_NUMBER, numbers)?;
    }
    if let Some(tacs) = &patch.tacs {
        replace_tacs(conn, id, tacs)?;
    }
    get(conn, id)
}

/// One page of models in id order, starting after `after`.
pub fn list(
    conn: &mut DbConnection,
    filter: &ModelFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Model>, DbError> {
    let mut query = super::page_after!(
        models::table.inner_join(manufacturers::table),
        models::id,
        Row::as_select(),
        after.map(DbId),
        limit
    );
    if let Some(manufacturer_id) = filter.manufacturer_id {
        query = query.filter(models::manufacturer_id.eq(DbId(manufacturer_id)));
    }
    if let Some(category) = filter.category {
        query = query.filter(models::category.eq(category.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(models::clearance_status.eq(status.as_str()));
    }
    if let Some(q) = &filter.q {
        let pattern = like_contains(&crate::domain::text::key(q));
        let by_name = model_names::table
            .select(model_names::model_id)
            .filter(model_names::value_key.like(pattern.clone()).escape('\\'));
        let by_maker_alias = manufacturer_aliases::table
            .select(manufacturer_aliases::manufacturer_id)
            .filter(
                manufacturer_aliases::alias_key
                    .like(pattern.clone())
                    .escape('\\'),
            );
        query = query.filter(
            models::name_key
                .like(pattern.clone())
                .escape('\\')
                .or(models::id.eq_any(by_name))
                .or(manufacturers::name_key.like(pattern).escape('\\'))
                .or(models::manufacturer_id.eq_any(by_maker_alias)),
        );
    }
    let rows: Vec<Row> = query.load(conn)?;
    let ids: Vec<DbId> = rows.iter().map(|r| r.id).collect();
    let mut children = children_of(conn, Owners::Ids(&ids))?;
    Ok(rows
        .into_iter()
        .map(|row| assemble(row, &mut children))
        .collect())
}

fn name_taken(name: &Name) -> DbError {
    DbError::Conflict(format!(
        "this manufacturer already has a model named `{name}`"
    ))
}

fn replace_names(
    conn: &mut DbConnection,
    id: Uuid,
    kind: &str,
    names: &[Name],
) -> Result<(), DbError> {
    diesel::delete(
        model_names::table.filter(
            model_names::model_id
                .eq(DbId(id))
                .and(model_names::kind.eq(kind)),
        ),
    )
    .execute(conn)?;
    let rows: Vec<_> = dedup_names(names.to_vec())
        .iter()
        .enumerate()
        .map(|(position, name)| {
            (
                model_names::model_id.eq(DbId(id)),
                model_names::kind.eq(kind),
                model_names::position.eq(position as i32),
                model_names::value.eq(name.as_str().to_owned()),
                model_names::value_key.eq(name.key()),
            )
        })
        .collect();
    for row in rows {
        diesel::insert_into(model_names::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Gives the model exactly these TACs; a TAC another model claims is a
/// conflict that names that model.
fn replace_tacs(conn: &mut DbConnection, id: Uuid, tacs: &[Tac]) -> Result<(), DbError> {
    let mut wanted: Vec<&str> = Vec::with_capacity(tacs.len());
    for tac in tacs {
        if !wanted.contains(&tac.as_str()) {
            wanted.push(tac.as_str());
        }
    }
    let claimed: Vec<(String, String)> = model_tacs::table
        .inner_join(models::table)
        .filter(model_tacs::tac.eq_any(&wanted))
        .filter(model_tacs::model_id.ne(DbId(id)))
        .select((model_tacs::tac, models::name))
        .load(conn)?;
    if let Some((tac, owner)) = claimed.first() {
        return Err(DbError::Conflict(format!(
            "TAC {tac} is already claimed by the model `{owner}`"
        )));
    }
    diesel::delete(model_tacs::table.filter(model_tacs::model_id.eq(DbId(id)))).execute(conn)?;
    let rows: Vec<_> = wanted
        .iter()
        .enumerate()
        .map(|(position, tac)| {
            (
                model_tacs::tac.eq(*tac),
                model_tacs::model_id.eq(DbId(id)),
                model_tacs::position.eq(position as i32),
            )
        })
        .collect();
    for row in rows {
        let inserted = diesel::insert_into(model_tacs::table)
            .values(row)
            .execute(conn);
        // Another transaction may have claimed it between our check and insert.
        or_taken(inserted, || {
            DbError::Conflict("one of these TACs was just claimed by another model".into())
        })?;
    }
    Ok(())
}

#[derive(Default)]
pub(super) struct Children {
    pub aliases: Vec<String>,
    pub model_numbers: Vec<String>,
    pub tacs: Vec<String>,
}

/// Models' names and TACs by model. hashbrown's default hasher: the lookup
/// index reads the whole register through here, and SipHash was a tenth
/// of that read.
pub(super) type ChildrenOf = hashbrown::HashMap<DbId, Children>;

/// Whose names and TACs to read.
pub(super) enum Owners<'a> {
    Ids(&'a [DbId]),
    /// The models with ids in `(after, through]`.
    Range {
        after: Option<DbId>,
        through: DbId,
    },
}

/// The names and TACs of the given models.
pub(super) fn children_of(conn: &mut DbConnection, owners: Owners) -> Result<ChildrenOf, DbError> {
    let mut names = model_names::table
        .select((
            model_names::model_id,
            model_names::kind.eq(ALIAS),
            model_names::value,
        ))
        .order((
            model_names::model_id,
            model_names::kind,
            model_names::position,
        ))
        .into_boxed();
    let mut tacs = model_tacs::table
        .select((model_tacs::model_id, model_tacs::tac))
        .order((model_tacs::model_id, model_tacs::position))
        .into_boxed();
    match owners {
        Owners::Ids([]) => return Ok(ChildrenOf::new()),
        Owners::Ids(ids) => {
            names = names.filter(model_names::model_id.eq_any(ids));
            tacs = tacs.filter(model_tacs::model_id.eq_any(ids));
        }
        Owners::Range { after, through } => {
            names = names.filter(model_names::model_id.le(through));
            tacs = tacs.filter(model_tacs::model_id.le(through));
            if let Some(after) = after {
                names = names.filter(model_names::model_id.gt(after));
                tacs = tacs.filter(model_tacs::model_id.gt(after));
            }
        }
    }
    let mut children = ChildrenOf::new();
    for (id, is_alias, value) in names.load::<(DbId, bool, String)>(conn)? {
        let entry = children.entry(id).or_default();
        if is_alias {
            entry.aliases.push(value);
        } else {
            entry.model_numbers.push(value);
        }
    }
    for (id, tac) in tacs.load::<(DbId, String)>(conn)? {
        children.entry(id).or_default().tacs.push(tac);
    }
    Ok(children)
}

fn assemble(row: Row, children: &mut ChildrenOf) -> Model {
    let Children {
        aliases,
        model_numbers,
        tacs,
    } = children.remove(&row.id).unwrap_or_default();
    Model {
        id: row.id.0,
        manufacturer: ManufacturerRef {
            id: row.manufacturer_id.0,
            name: row.maker.name,
            country: row.maker.country,
        },
        name: row.name,
        aliases,
        model_numbers,
        // Only valid categories are ever written.
        category: row.category.parse().unwrap_or(Category::Other),
        tacs,
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
        version: row.version,
    }
}
