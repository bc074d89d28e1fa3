//! What decides a model's clearance, as stored: the decisions of advisories
//! in force, open reviews, and the materialised status with its history.
//! Every change of status is found by deriving afresh with the domain rule
//! (never by patching the stored status), inside the transaction that
//! caused it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::audit::Change;
use super::schema::{
    advisories, advisory_decisions, advisory_revisions, clearance_history, clearance_settled,
    models, reviews,
};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};
use crate::domain::advisory::{AdvisoryState, Tlp};
use crate::domain::clearance::{
    self, ClearanceStatus, Decision, DecisionInForce, OpenReview, Scope,
};
use crate::domain::firmware::FirmwareRange;
use crate::domain::registry::Category;

/// What caused a re-derivation, recorded in the history.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cause {
    pub advisory_id: Option<Uuid>,
    pub review_id: Option<Uuid>,
}

/// One change of a model's clearance, as kept in its history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StatusChange {
    pub id: Uuid,
    pub model_id: Uuid,
    pub status: ClearanceStatus,
    pub previous_status: ClearanceStatus,
    pub advisory_id: Option<Uuid>,
    pub review_id: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
}

impl StatusChange {
    pub fn audit(&self) -> Result<Change, DbError> {
        Ok(Change::new(
            "model.clearance",
            "model",
            self.model_id,
            serde_json::to_value(self).map_err(|e| DbError::Other(e.into()))?,
        ))
    }
}

/// The decisions of every published revision of advisories that are
/// published or superseded, joined with their advisory and revision: a
/// revision applies until a later one, or a successor, takes effect (see
/// [`replaced_at`]). A macro: diesel's join types are not worth spelling
/// out for two queries.
macro_rules! published_decisions_join {
    () => {
        advisory_decisions::table
            .inner_join(advisories::table.on(advisories::id.eq(advisory_decisions::advisory_id)))
            .inner_join(
                advisory_revisions::table.on(advisory_revisions::advisory_id
                    .eq(advisory_decisions::advisory_id)
                    .and(advisory_revisions::revision.eq(advisory_decisions::revision))),
            )
            .filter(advisory_revisions::published_at.is_not_null())
            .filter(advisories::state.eq_any([
                AdvisoryState::Published.as_str(),
                AdvisoryState::Superseded.as_str(),
            ]))
    };
}

/// A decision's model, manufacturer and category, as stored.
pub type ScopeRow = (Option<DbId>, Option<DbId>, Option<String>);

/// (advisory, revision, successor), reference, title, tlp, (model,
/// manufacturer, category), decision, conditions, firmware, effective at.
type DecisionRow = (
    (DbId, i32, Option<DbId>),
    Option<String>,
    String,
    String,
    ScopeRow,
    String,
    Option<String>,
    Option<String>,
    Option<DbTime>,
);

fn stored(what: &str, error: String) -> DbError {
    DbError::Other(anyhow::anyhow!("stored {what}: {error}"))
}

/// What a stored decision names: its model, or its manufacturer (and
/// category).
pub fn scope_of((model, manufacturer, category): ScopeRow) -> Result<Scope, DbError> {
    let category = category
        .map(|c| c.parse::<Category>())
        .transpose()
        .map_err(|e| stored("category", e))?;
    match (model, manufacturer) {
        (Some(model), None) => Ok(Scope::Model(model.0)),
        (None, Some(maker)) => Ok(Scope::Manufacturer {
            id: maker.0,
            category,
        }),
        _ => Err(stored("decision scope", "names neither or both".into())),
    }
}

fn decision_in_force(row: DecisionRow, replaced: &Replaced) -> Result<DecisionInForce, DbError> {
    let (key, reference, title, tlp, scope, decision, conditions, firmware, at) = row;
    let (advisory_id, revision, successor) = key;
    Ok(DecisionInForce {
        advisory_id: advisory_id.0,
        reference: reference.unwrap_or_default(),
        title,
        tlp: tlp.parse::<Tlp>().map_err(|e| stored("tlp", e))?,
        scope: scope_of(scope)?,
        decision: decision
            .parse::<Decision>()
            .map_err(|e| stored("decision", e))?,
        conditions,
        firmware: firmware
            .map(|f| FirmwareRange::parse(&f))
            .transpose()
            .map_err(|e| stored("firmware range", e))?,
        // Published revisions always have one; a missing one never applies.
        effective_at: at.map_or(DateTime::<Utc>::MAX_UTC, |t| t.0),
        until: replaced.at(advisory_id.0, revision, successor.map(|s| s.0)),
    })
}

/// When each published revision of the advisories concerned takes effect.
struct Replaced(HashMap<Uuid, Vec<(i32, DateTime<Utc>)>>);

impl Replaced {
    fn load(conn: &mut DbConnection, advisories: &[DbId]) -> Result<Self, DbError> {
        let rows: Vec<(DbId, i32, Option<DbTime>)> = advisory_revisions::table
            .filter(advisory_revisions::advisory_id.eq_any(advisories))
            .filter(advisory_revisions::published_at.is_not_null())
            .select((
                advisory_revisions::advisory_id,
                advisory_revisions::revision,
                advisory_revisions::effective_at,
            ))
            .load(conn)?;
        let mut starts: HashMap<Uuid, Vec<(i32, DateTime<Utc>)>> = HashMap::new();
        for (advisory, revision, at) in rows {
            let at = at.map_or(DateTime::<Utc>::MAX_UTC, |t| t.0);
            starts.entry(advisory.0).or_default().push((revision, at));
        }
        Ok(Self(starts))
    }

    /// When revision `revision` of `advisory` stops applying: the first
    /// date a later revision of it, or its `successor`, takes effect.
    fn at(&self, advisory: Uuid, revision: i32, successor: Option<Uuid>) -> Option<DateTime<Utc>> {
        let later = self
            .0
            .get(&advisory)
            .into_iter()
            .flatten()
            .filter(|(number, _)| *number > revision);
        let successor = successor.and_then(|s| self.0.get(&s)).into_iter().flatten();
        later.chain(successor).map(|(_, at)| *at).min()
    }
}

/// The decisions of published advisories that apply to the given models —
/// all models with `None` — whatever their dates (the derivation asks
/// [`DecisionInForce::applies_at`]): those naming a model, and those naming
/// its maker (and its category). A revision an amendment or a successor
/// replaces is among them until the replacement takes effect.
pub fn decisions_in_force(
    conn: &mut DbConnection,
    model_ids: Option<&[DbId]>,
) -> Result<HashMap<Uuid, Vec<DecisionInForce>>, DbError> {
    macro_rules! in_force {
        () => {
            published_decisions_join!()
                .select((
                    (
                        advisories::id,
                        advisory_decisions::revision,
                        advisories::superseded_by,
                    ),
                    advisories::reference,
                    advisory_revisions::title,
                    advisory_revisions::tlp,
                    (
                        advisory_decisions::model_id,
                        advisory_decisions::manufacturer_id,
                        advisory_decisions::category,
                    ),
                    advisory_decisions::decision,
                    advisory_decisions::conditions,
                    advisory_decisions::firmware,
                    advisory_revisions::effective_at,
                ))
                .order((
                    advisory_decisions::advisory_id,
                    advisory_decisions::revision,
                    advisory_decisions::position,
                ))
                .into_boxed()
        };
    }
    let mut of_models = in_force!().filter(advisory_decisions::model_id.is_not_null());
    if let Some(ids) = model_ids {
        of_models =
            of_models.filter(advisory_decisions::model_id.eq_any(ids.iter().copied().map(Some)));
    }
    let model_rows = of_models.load::<DecisionRow>(conn)?;
    let maker_rows = in_force!()
        .filter(advisory_decisions::manufacturer_id.is_not_null())
        .load::<DecisionRow>(conn)?;
    let mut concerned: Vec<DbId> = model_rows
        .iter()
        .chain(&maker_rows)
        .flat_map(|((advisory, _, successor), ..)| [Some(*advisory), *successor])
        .flatten()
        .collect();
    concerned.sort();
    concerned.dedup();
    let replaced = Replaced::load(conn, &concerned)?;
    let decisions =
        |rows: Vec<DecisionRow>| -> Result<HashMap<Uuid, Vec<DecisionInForce>>, DbError> {
            let mut by_target: HashMap<Uuid, Vec<DecisionInForce>> = HashMap::new();
            for row in rows {
                let decision = decision_in_force(row, &replaced)?;
                // Replaced before it took effect: it never applies.
                if decision
                    .until
                    .is_some_and(|until| until <= decision.effective_at)
                {
                    continue;
                }
                by_target
                    .entry(decision.scope.target())
                    .or_default()
                    .push(decision);
            }
            Ok(by_target)
        };
    let mut by_model = decisions(model_rows)?;
    let by_maker = decisions(maker_rows)?;
    if by_maker.is_empty() {
        return Ok(by_model);
    }
    let makers: Vec<DbId> = by_maker.keys().copied().map(DbId).collect();
    let mut their_models = models::table
        .filter(models::manufacturer_id.eq_any(makers))
        .select((models::id, models::manufacturer_id, models::category))
        .into_boxed();
    if let Some(ids) = model_ids {
        their_models = their_models.filter(models::id.eq_any(ids));
    }
    for (model, maker, category) in their_models.load::<(DbId, DbId, String)>(conn)? {
        let category = category
            .parse::<Category>()
            .map_err(|e| stored("category", e))?;
        let mut applying = by_maker[&maker.0]
            .iter()
            .filter(|d| d.scope.takes_in(model.0, maker.0, category))
            .cloned()
            .peekable();
        if applying.peek().is_some() {
            by_model.entry(model.0).or_default().extend(applying);
        }
    }
    Ok(by_model)
}

/// The open review of each of the given models (all with `None`).
pub fn open_reviews(
    conn: &mut DbConnection,
    model_ids: Option<&[DbId]>,
) -> Result<HashMap<Uuid, OpenReview>, DbError> {
    let mut query = reviews::table
        .filter(reviews::closed_at.is_null())
        .select((reviews::model_id, reviews::id, reviews::due_at))
        .into_boxed();
    if let Some(ids) = model_ids {
        query = query.filter(reviews::model_id.eq_any(ids));
    }
    Ok(query
        .load::<(DbId, DbId, DbTime)>(conn)?
        .into_iter()
        .map(|(model, id, due)| {
            (
                model.0,
                OpenReview {
                    id: id.0,
                    due_at: due.0,
                },
            )
        })
        .collect())
}

/// When each model's status last changed (all models with `None`): the
/// "since" of a status no decision explains (unassessed, under review).
pub fn last_changes(
    conn: &mut DbConnection,
    model_ids: Option<&[DbId]>,
) -> Result<HashMap<Uuid, DateTime<Utc>>, DbError> {
    let mut query = clearance_history::table
        .group_by(clearance_history::model_id)
        .select((
            clearance_history::model_id,
            diesel::dsl::max(clearance_history::changed_at),
        ))
        .into_boxed();
    if let Some(ids) = model_ids {
        query = query.filter(clearance_history::model_id.eq_any(ids));
    }
    Ok(query
        .load::<(DbId, Option<DbTime>)>(conn)?
        .into_iter()
        .filter_map(|(model, at)| at.map(|at| (model.0, at.0)))
        .collect())
}

/// Derives the clearance of `model_ids` afresh; where it differs from the
/// stored status, stores the new one and a history row dated `changed_at`.
/// Returns the changes, for the audit log.
///
/// The models stay locked until the transaction ends, and the time they are
/// derived at is read (`derive_at`) once they are: a derivation that had to
/// wait for another transaction's therefore sees its decisions as in force,
/// instead of writing back what the models were before it.
pub fn rederive(
    conn: &mut DbConnection,
    model_ids: &[Uuid],
    cause: Cause,
    changed_at: DateTime<Utc>,
    derive_at: impl FnOnce() -> DateTime<Utc>,
) -> Result<Vec<StatusChange>, DbError> {
    let mut ids: Vec<DbId> = model_ids.iter().copied().map(DbId).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    super::lock_rows!(conn, models, model_ids.iter().copied());
    let now = derive_at();
    let stored: Vec<(DbId, String, DbTime)> = models::table
        .filter(models::id.eq_any(&ids))
        .select((models::id, models::clearance_status, models::created_at))
        .order(models::id)
        .load(conn)?;
    let decisions = decisions_in_force(conn, Some(&ids))?;
    let reviews = open_reviews(conn, Some(&ids))?;
    let mut changes = Vec::new();
    for (id, status, created_at) in stored {
        let previous =
            ClearanceStatus::parse(&status).map_err(|e| DbError::Other(anyhow::anyhow!(e)))?;
        let clearance = clearance::derive(
            decisions.get(&id.0).map(Vec::as_slice).unwrap_or_default(),
            reviews.get(&id.0).copied(),
            now,
            created_at.0,
            None,
        );
        let derived = clearance.status;
        if derived == previous {
            continue;
        }
        // A change nobody caused on purpose (a model registered under a
        // maker-wide decision) names the advisory that decides it.
        let advisory_id = cause
            .advisory_id
            .or_else(|| clearance.advisories.first().map(|a| a.id));
        diesel::update(models::table.find(id))
            .set(models::clearance_status.eq(derived.as_str()))
            .execute(conn)?;
        let change = StatusChange {
            id: Uuid::now_v7(),
            model_id: id.0,
            status: derived,
            previous_status: previous,
            advisory_id,
            review_id: cause.review_id,
            changed_at,
        };
        diesel::insert_into(clearance_history::table)
            .values((
                clearance_history::id.eq(DbId(change.id)),
                clearance_history::model_id.eq(id),
                clearance_history::status.eq(derived.as_str()),
                clearance_history::previous_status.eq(previous.as_str()),
                clearance_history::advisory_id.eq(advisory_id.map(DbId)),
                clearance_history::review_id.eq(cause.review_id.map(DbId)),
                clearance_history::changed_at.eq(DbTime(changed_at)),
            ))
            .execute(conn)?;
        changes.push(change);
    }
    Ok(changes)
}

/// Applies decisions whose effective date has come by `now` since the last
/// call: their models' stored status catches up with the rule, derived at
/// `derive_at` ([`rederive`]). Returns the changes.
pub fn settle_due(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    derive_at: impl Fn() -> DateTime<Utc>,
) -> Result<Vec<StatusChange>, DbError> {
    let due = came_due(conn, now, i64::MAX)?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    // What a revision that took effect replaces ends now: the earlier
    // revisions of its advisory, and the advisories it supersedes.
    let superseded: Vec<DbId> = advisories::table
        .filter(advisories::superseded_by.eq_any(due.iter().copied().map(Some)))
        .select(advisories::id)
        .load(conn)?;
    let concerned: Vec<DbId> = due.into_iter().chain(superseded).collect();
    let scopes: Vec<(DbId, ScopeRow)> = published_decisions_join!()
        .filter(advisories::id.eq_any(&concerned))
        .select((
            advisories::id,
            (
                advisory_decisions::model_id,
                advisory_decisions::manufacturer_id,
                advisory_decisions::category,
            ),
        ))
        .load(conn)?;
    let mut due_scopes = Vec::new();
    for (advisory_id, scopes) in super::group(scopes) {
        let scopes = scopes
            .into_iter()
            .map(scope_of)
            .collect::<Result<Vec<_>, _>>()?;
        due_scopes.push((advisory_id, scopes));
    }
    // Every maker, then every model, at once and in order, before any is
    // derived: locking them advisory by advisory could wait on a publisher
    // waiting on us.
    let every_scope: Vec<Scope> = due_scopes.iter().flat_map(|(_, s)| s).copied().collect();
    super::models::lock_makers(conn, &every_scope)?;
    let mut concerned = Vec::new();
    for (advisory_id, scopes) in due_scopes {
        concerned.push((advisory_id, super::models::in_scopes(conn, &scopes)?));
    }
    let every_model = concerned
        .iter()
        .flat_map(|(_, models)| models.iter().copied());
    super::lock_rows!(conn, models, every_model);
    let mut changes = Vec::new();
    for (advisory_id, models) in concerned {
        let cause = Cause {
            advisory_id: Some(advisory_id.0),
            review_id: None,
        };
        changes.extend(rederive(conn, &models, cause, now, &derive_at)?);
    }
    diesel::update(clearance_settled::table.find(1))
        .set(clearance_settled::through.eq(DbTime(now)))
        .execute(conn)?;
    Ok(changes)
}

/// Whether a published decision became effective since the last
/// settling (a read: the timer looks before it takes a write lock).
pub fn any_due(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<bool, DbError> {
    Ok(!came_due(conn, now, 1)?.is_empty())
}

/// Up to `limit` advisories with a published revision that took effect
/// since the last settling and not after `now`.
fn came_due(conn: &mut DbConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<DbId>, DbError> {
    let through: DbTime = clearance_settled::table
        .find(1)
        .select(clearance_settled::through)
        .first(conn)?;
    Ok(advisory_revisions::table
        .inner_join(advisories::table.on(advisories::id.eq(advisory_revisions::advisory_id)))
        .filter(advisory_revisions::published_at.is_not_null())
        .filter(advisories::state.eq_any([
            AdvisoryState::Published.as_str(),
            AdvisoryState::Superseded.as_str(),
        ]))
        .filter(advisory_revisions::effective_at.gt(through))
        .filter(advisory_revisions::effective_at.le(DbTime(now)))
        .select(advisories::id)
        .distinct()
        .limit(limit)
        .load(conn)?)
}

/// One page of a model's clearance history, oldest first.
pub fn history(
    conn: &mut DbConnection,
    model_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StatusChange>, DbError> {
    let exists: i64 = models::table
        .filter(models::id.eq(DbId(model_id)))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        return Err(DbError::NotFound);
    }
    let columns = (
        clearance_history::id,
        clearance_history::status,
        clearance_history::previous_status,
        clearance_history::advisory_id,
        clearance_history::review_id,
        clearance_history::changed_at,
    );
    let query = super::page_after!(clearance_history, columns, after.map(DbId), limit)
        .filter(clearance_history::model_id.eq(DbId(model_id)));
    let parse = |s: &str| ClearanceStatus::parse(s).map_err(|e| DbError::Other(anyhow::anyhow!(e)));
    query
        .load::<(DbId, String, String, Option<DbId>, Option<DbId>, DbTime)>(conn)?
        .into_iter()
        .map(|(id, status, previous, advisory, review, at)| {
            Ok(StatusChange {
                id: id.0,
                model_id,
                status: parse(&status)?,
                previous_status: parse(&previous)?,
                advisory_id: advisory.map(|a| a.0),
                review_id: review.map(|r| r.0),
                changed_at: at.0,
            })
        })
        .collect()
}
