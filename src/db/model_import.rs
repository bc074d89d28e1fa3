//! The models CSV import: every row created or updated in the caller's one
//! transaction, after every row has been checked against the register, so a
//! file with one bad line changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Change};
use super::manufacturers::{self, NewManufacturer};
use super::models::{self, ModelPatch, NewModel};
use super::schema::{manufacturers as makers, model_tacs, models as model_table};
use super::types::DbId;
use super::{DbConnection, DbError};
use crate::domain::audit::Actor;
use crate::domain::registry::{Model, Name, dedup_names};
use crate::error::FieldError;
use crate::export::models_csv::ImportRow;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModelImportSummary {
    /// Models that were not registered.
    pub created: usize,
    /// Models whose names, model numbers, aliases, TACs or category changed.
    pub updated: usize,
    /// Models already registered exactly as the file has them.
    pub unchanged: usize,
    /// Models in the file.
    pub total: usize,
}

/// Creates or updates each row's model, found by manufacturer and model name
/// (ignoring case and spacing); an unknown manufacturer is created with the
/// row's country. Refuses the whole file, naming each line, when a row needs
/// a new manufacturer but has no country, or claims a TAC another model
/// holds (moving a TAC between models is a `PATCH` that releases it first).
/// Returns what it did and the models it created or updated.
pub fn import(
    conn: &mut DbConnection,
    rows: Vec<ImportRow>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(ModelImportSummary, Vec<Uuid>), DbError> {
    let mut makers_by_key: HashMap<String, Uuid> = HashMap::new();
    let mut existing: Vec<Option<Model>> = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    for row in &rows {
        let maker = match makers_by_key.get(&row.manufacturer.key()) {
            Some(id) => Some(*id),
            None => manufacturers::find_by_name(conn, &row.manufacturer)?.map(|m| m.id),
        };
        if let Some(id) = maker {
            makers_by_key.insert(row.manufacturer.key(), id);
        }
        let model = match maker {
            Some(maker) => find(conn, maker, &row.name)?,
            None => None,
        };
        let mut problems = Vec::new();
        if maker.is_none() && row.manufacturer_country.is_none() {
            problems.push(format!(
                "manufacturer_country: needed to register the new manufacturer `{}`",
                row.manufacturer
            ));
        }
        problems.extend(claimed_elsewhere(conn, row, model.as_ref().map(|m| m.id))?);
        if !problems.is_empty() {
            errors.push(FieldError::new(
                format!("line {}", row.line),
                problems.join("; "),
            ));
        }
        existing.push(model);
    }
    if !errors.is_empty() {
        return Err(DbError::Invalid(errors));
    }
    let mut summary = ModelImportSummary {
        created: 0,
        updated: 0,
        unchanged: 0,
        total: rows.len(),
    };
    let mut changed = Vec::new();
    for (row, model) in rows.into_iter().zip(existing) {
        match model {
            Some(model) if same(&model, &row) => summary.unchanged += 1,
            Some(model) => {
                let patch = ModelPatch {
                    name: (model.name != row.name.as_str()).then_some(row.name),
                    model_numbers: Some(row.model_numbers),
                    aliases: Some(row.aliases),
                    category: Some(row.category),
                    tacs: Some(row.tacs),
                };
                models::update(conn, model.id, patch, None, actor, now)?;
                changed.push(model.id);
                summary.updated += 1;
            }
            None => {
                let manufacturer_id = match makers_by_key.get(&row.manufacturer.key()) {
                    Some(id) => *id,
                    None => {
                        let country = row.manufacturer_country.clone().ok_or_else(|| {
                            DbError::Other(anyhow::anyhow!("checked above: a country is given"))
                        })?;
                        let maker = manufacturers::insert(
                            conn,
                            NewManufacturer {
                                name: row.manufacturer.clone(),
                                country,
                                aliases: Vec::new(),
                            },
                            actor,
                            now,
                        )?;
                        makers_by_key.insert(row.manufacturer.key(), maker.id);
                        maker.id
                    }
                };
                let new = NewModel {
                    manufacturer_id,
                    name: row.name,
                    model_numbers: row.model_numbers,
                    aliases: row.aliases,
                    category: row.category,
                    tacs: row.tacs,
                };
                changed.push(models::insert(conn, new, actor, now)?.id);
                summary.created += 1;
            }
        }
    }
    let payload = serde_json::to_value(summary).map_err(|e| DbError::Other(e.into()))?;
    audit::append(
        conn,
        actor,
        vec![Change::new(
            "model.import",
            "model",
            Uuid::now_v7(),
            payload,
        )],
        now,
    )?;
    Ok((summary, changed))
}

/// The manufacturer's model of this name, compared as names are unique.
fn find(conn: &mut DbConnection, maker: Uuid, name: &Name) -> Result<Option<Model>, DbError> {
    let id: Option<DbId> = model_table::table
        .filter(model_table::manufacturer_id.eq(DbId(maker)))
        .filter(model_table::name_key.eq(name.key()))
        .select(model_table::id)
        .first(conn)
        .optional()?;
    id.map(|id| models::get(conn, id.0)).transpose()
}

/// A message for each of the row's TACs that a model other than `own`
/// holds, naming that model.
fn claimed_elsewhere(
    conn: &mut DbConnection,
    row: &ImportRow,
    own: Option<Uuid>,
) -> Result<Vec<String>, DbError> {
    if row.tacs.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<&str> = row.tacs.iter().map(|t| t.as_str()).collect();
    let mut query = model_tacs::table
        .inner_join(model_table::table.inner_join(makers::table))
        .filter(model_tacs::tac.eq_any(wanted))
        .select((model_tacs::tac, makers::name, model_table::name))
        .order(model_tacs::tac)
        .into_boxed();
    if let Some(own) = own {
        query = query.filter(model_tacs::model_id.ne(DbId(own)));
    }
    let claimed: Vec<(String, String, String)> = query.load(conn)?;
    Ok(claimed
        .into_iter()
        .map(|(tac, maker, model)| {
            format!("tacs: TAC {tac} is already claimed by `{maker} {model}`")
        })
        .collect())
}

/// Whether the registered model already is what the row says.
fn same(model: &Model, row: &ImportRow) -> bool {
    let texts = |names: &[Name]| -> Vec<String> {
        dedup_names(names.to_vec())
            .into_iter()
            .map(String::from)
            .collect()
    };
    let mut tacs: Vec<String> = Vec::new();
    for tac in &row.tacs {
        if !tacs.iter().any(|t| t == tac.as_str()) {
            tacs.push(tac.as_str().to_owned());
        }
    }
    model.name == row.name.as_str()
        && model.model_numbers == texts(&row.model_numbers)
        && model.aliases == texts(&row.aliases)
        && model.tacs == tacs
        && model.category == row.category
}
