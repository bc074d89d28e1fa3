//! Reviews: a model under examination until a due date ("a decision within
//! three months"). Opening and closing one can change the model's clearance
//! (`under_review`), so both re-derive it in their transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::schema::reviews;
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError, or_taken};
use crate::domain::review::{NewReview, ReviewOutcome};

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

impl Review {
    /// What the review's `ETag` counts. It moves whenever what a read shows
    /// does: when the review falls overdue (which a read decides from the
    /// clock) and when it closes.
    pub fn version(&self) -> i64 {
        match (self.closed_at, self.overdue) {
            (Some(_), _) => 3,
            (None, true) => 2,
            (None, false) => 1,
        }
    }
}

#[derive(Debug, Default)]
pub struct ReviewFilter {
    /// Only open reviews past their due date.
    pub overdue: bool,
    pub open: Option<bool>,
    pub model_id: Option<Uuid>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = reviews)]
struct Row {
    id: DbId,
    model_id: DbId,
    reason: String,
    due_at: DbTime,
    opened_by: String,
    opened_at: DbTime,
    outcome: Option<String>,
    advisory_id: Option<DbId>,
    closed_by: Option<String>,
    closed_at: Option<DbTime>,
}

fn to_review(row: Row, now: DateTime<Utc>) -> Review {
    let open = row.closed_at.is_none();
    Review {
        id: row.id.0,
        model_id: row.model_id.0,
        reason: row.reason,
        due_at: row.due_at.0,
        opened_by: row.opened_by,
        opened_at: row.opened_at.0,
        state: if open { "open" } else { "closed" },
        overdue: open && row.due_at.0 < now,
        outcome: row.outcome,
        advisory_id: row.advisory_id.map(|a| a.0),
        closed_by: row.closed_by,
        closed_at: row.closed_at.map(|c| c.0),
    }
}

pub fn get(conn: &mut DbConnection, id: Uuid, now: DateTime<Utc>) -> Result<Review, DbError> {
    let row = reviews::table
        .find(DbId(id))
        .select(Row::as_select())
        .first(conn)?;
    Ok(to_review(row, now))
}

/// Opens a review, by `opened_by`, of a model that exists; a model has at
/// most one open review (a second is a conflict).
pub fn open(
    conn: &mut DbConnection,
    new: &NewReview,
    opened_by: &str,
    now: DateTime<Utc>,
) -> Result<Review, DbError> {
    let id = Uuid::now_v7();
    let inserted = diesel::insert_into(reviews::table)
        .values((
            reviews::id.eq(DbId(id)),
            reviews::model_id.eq(DbId(new.model_id)),
            reviews::reason.eq(new.reason.as_str()),
            reviews::due_at.eq(DbTime(new.due_at)),
            reviews::opened_by.eq(opened_by),
            reviews::opened_at.eq(DbTime(now)),
        ))
        .execute(conn);
    or_taken(inserted, || {
        DbError::Conflict("this model already has an open review: close it first".into())
    })?;
    get(conn, id, now)
}

/// Closes review `id`, by `closed_by`, if it is still open (else a
/// conflict: someone closed it meanwhile).
pub fn close(
    conn: &mut DbConnection,
    id: Uuid,
    outcome: &ReviewOutcome,
    closed_by: &str,
    now: DateTime<Utc>,
) -> Result<Review, DbError> {
    let updated = diesel::update(
        reviews::table
            .filter(reviews::id.eq(DbId(id)))
            .filter(reviews::closed_at.is_null()),
    )
    .set((
        reviews::outcome.eq(Some(outcome.outcome.as_str())),
        reviews::advisory_id.eq(outcome.advisory_id.map(DbId)),
        reviews::closed_by.eq(Some(closed_by)),
        reviews::closed_at.eq(Some(DbTime(now))),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(DbError::Conflict(
            "the review was closed while this request ran".into(),
        ));
    }
    get(conn, id, now)
}

/// One page of reviews in id order, after `after`.
pub fn list(
    conn: &mut DbConnection,
    filter: &ReviewFilter,
    after: Option<Uuid>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Review>, DbError> {
    let mut query = super::page_after!(reviews, Row::as_select(), after.map(DbId), limit);
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
