//! Reviews: a model under examination until a due date ("a decision within
//! three months"). Opening and closing one can change the model's clearance
//! (`under_review`), so both re-derive it in their transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Change};
use super::clearance::{self, Cause, StatusChange};
use super::schema::{advisories, models, reviews};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError, is_unique_violation};
use crate::domain::audit::Actor;
use crate::domain::text::{Line, Prose};
use crate::error::FieldError;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Review {
    pub id: Uuid,
    pub model_id: Uuid,
    pub reason: String,
    pub due_at: DateTime<Utc>,
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    /// `open` or `closed`.
    #[schema(example = "open")]
    pub state: &'static str,
    pub overdue: bool,
    pub outcome: Option<String>,
    pub advisory_id: Option<Uuid>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct ReviewFilter {
    /// Only open reviews past their due date.
    pub overdue: bool,
    pub open: Option<bool>,
    pub model_id: Option<Uuid>,
}

type Row = (
    DbId,
    DbId,
    String,
    DbTime,
    String,
    DbTime,
    Option<String>,
    Option<DbId>,
    Option<String>,
    Option<DbTime>,
);

const COLUMNS: (
    reviews::id,
    reviews::model_id,
    reviews::reason,
    reviews::due_at,
    reviews::opened_by,
    reviews::opened_at,
    reviews::outcome,
    reviews::advisory_id,
    reviews::closed_by,
    reviews::closed_at,
) = (
    reviews::id,
    reviews::model_id,
    reviews::reason,
    reviews::due_at,
    reviews::opened_by,
    reviews::opened_at,
    reviews::outcome,
    reviews::advisory_id,
    reviews::closed_by,
    reviews::closed_at,
);

fn to_review(row: Row, now: DateTime<Utc>) -> Review {
    let (
        id,
        model_id,
        reason,
        due_at,
        opened_by,
        opened_at,
        outcome,
        advisory_id,
        closed_by,
        closed_at,
    ) = row;
    let open = closed_at.is_none();
    Review {
        id: id.0,
        model_id: model_id.0,
        reason,
        due_at: due_at.0,
        opened_by,
        opened_at: opened_at.0,
        state: if open { "open" } else { "closed" },
        overdue: open && due_at.0 < now,
        outcome,
        advisory_id: advisory_id.map(|a| a.0),
        closed_by,
        closed_at: closed_at.map(|c| c.0),
    }
}

pub fn get(conn: &mut DbConnection, id: Uuid, now: DateTime<Utc>) -> Result<Review, DbError> {
    let row: Row = reviews::table.find(DbId(id)).select(COLUMNS).first(conn)?;
    Ok(to_review(row, now))
}

/// Opens a review of a model; a model has at most one open review.
pub fn open(
    conn: &mut DbConnection,
    model_id: Uuid,
    reason: &Prose,
    due_at: DateTime<Utc>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Review, Vec<StatusChange>), DbError> {
    let known: i64 = models::table
        .filter(models::id.eq(DbId(model_id)))
        .count()
        .get_result(conn)?;
    if known == 0 {
        return Err(DbError::Invalid(vec![FieldError::new(
            "model_id",
            "no model has this id",
        )]));
    }
    let id = Uuid::now_v7();
    let inserted = diesel::insert_into(reviews::table)
        .values((
            reviews::id.eq(DbId(id)),
            reviews::model_id.eq(DbId(model_id)),
            reviews::reason.eq(reason.as_str()),
            reviews::due_at.eq(DbTime(due_at)),
            reviews::opened_by.eq(&actor.sub),
            reviews::opened_at.eq(DbTime(now)),
        ))
        .execute(conn);
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(DbError::Conflict(
                "this model already has an open review: close it first".into(),
            ));
        }
        other => other?,
    };
    let cause = Cause {
        advisory_id: None,
        review_id: Some(id),
    };
    let changes = clearance::rederive(conn, &[model_id], cause, now)?;
    super::changes::record(conn, &[model_id])?;
    let review = get(conn, id, now)?;
    record(conn, actor, "review.open", &review, &changes, now)?;
    Ok((review, changes))
}

/// Closes an open review with its outcome and, optionally, the advisory
/// that settled it.
pub fn close(
    conn: &mut DbConnection,
    id: Uuid,
    outcome: &Line,
    advisory_id: Option<Uuid>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Review, Vec<StatusChange>), DbError> {
    let review = get(conn, id, now)?;
    if review.closed_at.is_some() {
        return Err(DbError::WrongState {
            detail: "this review is already closed".into(),
            current_state: "closed".into(),
        });
    }
    if let Some(advisory) = advisory_id {
        let known: i64 = advisories::table
            .filter(advisories::id.eq(DbId(advisory)))
            .count()
            .get_result(conn)?;
        if known == 0 {
            return Err(DbError::Invalid(vec![FieldError::new(
                "advisory_id",
                "no advisory has this id",
            )]));
        }
    }
    let updated = diesel::update(
        reviews::table
            .filter(reviews::id.eq(DbId(id)))
            .filter(reviews::closed_at.is_null()),
    )
    .set((
        reviews::outcome.eq(Some(outcome.as_str())),
        reviews::advisory_id.eq(advisory_id.map(DbId)),
        reviews::closed_by.eq(Some(&actor.sub)),
        reviews::closed_at.eq(Some(DbTime(now))),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(DbError::Conflict(
            "the review was closed while this request ran".into(),
        ));
    }
    let cause = Cause {
        advisory_id,
        review_id: Some(id),
    };
    let changes = clearance::rederive(conn, &[review.model_id], cause, now)?;
    super::changes::record(conn, &[review.model_id])?;
    let review = get(conn, id, now)?;
    record(conn, actor, "review.close", &review, &changes, now)?;
    Ok((review, changes))
}

fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    action: &'static str,
    review: &Review,
    changes: &[StatusChange],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let mut entries = vec![Change::new(action, "review", review.id, json!(review))];
    for change in changes {
        entries.push(change.audit()?);
    }
    audit::append(conn, actor, entries, now)
}

/// One page of reviews in id order, after `after`.
pub fn list(
    conn: &mut DbConnection,
    filter: &ReviewFilter,
    after: Option<Uuid>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Review>, DbError> {
    let mut query = reviews::table
        .select(COLUMNS)
        .order(reviews::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(reviews::id.gt(DbId(after)));
    }
    if filter.overdue {
        query = query
            .filter(reviews::closed_at.is_null())
            .filter(reviews::due_at.lt(DbTime(now)));
    }
    match filter.open {
        Some(true) => query = query.filter(reviews::closed_at.is_null()),
        Some(false) => query = query.filter(reviews::closed_at.is_not_null()),
        None => {}
    }
    if let Some(model_id) = filter.model_id {
        query = query.filter(reviews::model_id.eq(DbId(model_id)));
    }
    Ok(query
        .load::<Row>(conn)?
        .into_iter()
        .map(|row| to_review(row, now))
        .collect())
}
