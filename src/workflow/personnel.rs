//! The personnel directory: who must follow advisories.

use uuid::Uuid;

use super::{Done, Result, Workflow};
use crate::db::personnel::{self, ImportSummary};
use crate::domain::audit::Actor;
use crate::domain::personnel::{NewPerson, Person, PersonPatch, RosterEntry};

pub async fn add(workflow: &Workflow, actor: Actor, new: NewPerson) -> Result<Done<Person>> {
    workflow
        .run(actor, move |tx| {
            let person = personnel::insert(tx.conn, &new, tx.now)?;
            tx.audit_change("personnel.create", "personnel", person.id, &person)?;
            Ok(person)
        })
        .await
}

/// Applies `patch`; with `expected_version`, only to the person as they were
/// at that version.
pub async fn change(
    workflow: &Workflow,
    actor: Actor,
    id: Uuid,
    patch: PersonPatch,
    expected_version: Option<i64>,
) -> Result<Done<Person>> {
    workflow
        .run(actor, move |tx| {
            let person = personnel::update(tx.conn, id, &patch, expected_version, tx.now)?;
            tx.audit_change("personnel.update", "personnel", person.id, &person)?;
            Ok(person)
        })
        .await
}

/// Upserts a parsed roster by address, all of it or nothing.
pub async fn import(
    workflow: &Workflow,
    actor: Actor,
    roster: Vec<RosterEntry>,
) -> Result<Done<ImportSummary>> {
    workflow
        .run(actor, move |tx| {
            let summary = personnel::import(tx.conn, roster, tx.now)?;
            tx.audit_change("personnel.import", "personnel", Uuid::now_v7(), &summary)?;
            Ok(summary)
        })
        .await
}
