//! The register: manufacturers and device models, one at a time or from a
//! CSV file.

use uuid::Uuid;

use super::clearance::rederive;
use super::{Done, Result, Workflow};
use crate::db::clearance::Cause;
use crate::db::model_import::{self, ModelImportSummary};
use crate::db::{manufacturers, models};
use crate::domain::audit::Actor;
use crate::domain::registry::{Manufacturer, Model, ModelPatch, NewManufacturer, NewModel};
use crate::domain::rejection::Rejection;
use crate::export::models_csv::ImportRow;

pub async fn register_manufacturer(
    workflow: &Workflow,
    actor: Actor,
    new: NewManufacturer,
) -> Result<Done<Manufacturer>> {
    workflow
        .run(actor, move |tx| {
            let manufacturer = manufacturers::insert(tx.conn, &new, tx.now)?;
            tx.audit_change(
                "manufacturer.create",
                "manufacturer",
                manufacturer.id,
                &manufacturer,
            )?;
            Ok(manufacturer)
        })
        .await
}

pub async fn register_model(
    workflow: &Workflow,
    actor: Actor,
    new: NewModel,
) -> Result<Done<Model>> {
    workflow
        .run(actor, move |tx| {
            if manufacturers::existing(tx.conn, &[new.manufacturer_id])?.is_empty() {
                return Err(
                    Rejection::invalid("manufacturer_id", "no manufacturer has this id").into(),
                );
            }
            let model = models::insert(tx.conn, &new, tx.now)?;
            tx.audit_change("model.create", "model", model.id, &model)?;
            // A decision about every model of its maker applies at once.
            rederive(tx, &[model.id], Cause::default())?;
            Ok(model)
        })
        .await
}

/// Applies `patch`; with `expected_version`, only to the model as it was at
/// that version.
pub async fn change_model(
    workflow: &Workflow,
    actor: Actor,
    id: Uuid,
    patch: ModelPatch,
    expected_version: Option<i64>,
) -> Result<Done<Model>> {
    workflow
        .run(actor, move |tx| {
            let model = models::update(tx.conn, id, &patch, expected_version, tx.now)?;
            tx.audit_change("model.update", "model", model.id, &model)?;
            // A new category can bring it under another maker-wide decision.
            rederive(tx, &[model.id], Cause::default())?;
            Ok(model)
        })
        .await
}

/// Imports a parsed CSV file: every row, or none when a row clashes with
/// the register.
pub async fn import_models(
    workflow: &Workflow,
    actor: Actor,
    rows: Vec<ImportRow>,
) -> Result<Done<ModelImportSummary>> {
    workflow
        .run(actor, move |tx| {
            let imported =
                model_import::import(tx.conn, rows, tx.now)?.map_err(Rejection::Invalid)?;
            rederive(tx, &imported.models, Cause::default())?;
            tx.audit_change("model.import", "model", Uuid::now_v7(), &imported.summary)?;
            Ok(imported.summary)
        })
        .await
}
