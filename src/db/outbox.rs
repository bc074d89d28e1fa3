//! The outbox: every mail is a row here before it is sent, written in the
//! transaction of the change that causes it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::outbox;
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};
use crate::domain::mail::{DeliveryState, MailKind, Recipient, email_key};

/// A single mail not about an advisory (a confirmation, a link to manage a
/// subscription).
pub struct NewMail {
    pub kind: MailKind,
    pub email: String,
    pub name: Option<String>,
    pub recipient: Recipient,
    pub subscription_id: Option<Uuid>,
}

/// Queues one mail for the worker; returns its row id.
pub fn enqueue(conn: &mut DbConnection, mail: NewMail, now: DateTime<Utc>) -> Result<i64, DbError> {
    Ok(diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(mail.kind.as_str()),
            outbox::email_key.eq(email_key(&mail.email)),
            outbox::email.eq(mail.email.trim()),
            outbox::name.eq(mail.name),
            outbox::audience.eq(mail.recipient.as_str()),
            outbox::subscription_id.eq(mail.subscription_id.map(DbId)),
            outbox::state.eq(DeliveryState::Queued.as_str()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(DbTime(now)),
            outbox::created_at.eq(DbTime(now)),
        ))
        .returning(outbox::id)
        .get_result(conn)?)
}

/// Who an advisory revision's mail goes to, in SQL: every active person in
/// its audience, then every confirmed, immediate subscriber whose filter
/// matches one of the models it decides on (TLP:CLEAR only) — each address
/// once. Set-based, so a large audience is one statement per group.
pub struct FanOut {
    pub advisory_id: Uuid,
    pub revision: i32,
    pub kind: MailKind,
    pub all_personnel: bool,
    /// Units whose members are in the audience besides (or instead of) all.
    pub units: Vec<String>,
    /// Whether subscribers may receive it (TLP:CLEAR advisories only).
    pub to_subscribers: bool,
    /// The advisory's severity rank (none 0 … critical 4).
    pub severity_rank: i32,
}

const PERSONNEL_PG: &str = "
INSERT INTO outbox (kind, advisory_id, revision, email, email_key, name, audience, state,
                    attempts, next_attempt_at, created_at)
SELECT $1, CAST($2 AS uuid), $3, p.email, p.email_key, p.name, 'personnel', 'queued', 0,
       CAST($4 AS timestamptz), CAST($4 AS timestamptz)
FROM personnel p
WHERE p.active AND ($5 OR p.unit IN (SELECT jsonb_array_elements_text(CAST($6 AS jsonb))))
ON CONFLICT DO NOTHING";

const PERSONNEL_SQLITE: &str = "
INSERT INTO outbox (kind, advisory_id, revision, email, email_key, name, audience, state,
                    attempts, next_attempt_at, created_at)
SELECT $1, $2, $3, p.email, p.email_key, p.name, 'personnel', 'queued', 0, $4, $4
FROM personnel p
WHERE p.active AND ($5 OR p.unit IN (SELECT value FROM json_each($6)))
ON CONFLICT DO NOTHING";

/// `{advisory}` is how the backend reads the advisory id parameter. A
/// decision takes in its model, or every registered model of its maker (of
/// its category); a maker-wide decision matches a filter naming the maker or
/// the category even before any of its models is registered.
const SUBSCRIBERS: &str = "
INSERT INTO outbox (kind, advisory_id, revision, email, email_key, name, audience,
                    subscription_id, state, attempts, next_attempt_at, created_at)
SELECT $1, {advisory}, $3, s.email, s.email_key, NULL, 'subscriber', s.id, 'queued', 0,
       {now}, {now}
FROM subscriptions s
WHERE s.state = 'confirmed' AND s.delivery = 'immediate' AND s.min_severity <= $5
  AND EXISTS (
    SELECT 1 FROM advisory_decisions d
    LEFT JOIN models m ON m.id = d.model_id
      OR (d.model_id IS NULL AND m.manufacturer_id = d.manufacturer_id
          AND (d.category IS NULL OR m.category = d.category))
    WHERE d.advisory_id = {advisory} AND d.revision = $3
      AND (s.all_manufacturers OR EXISTS (SELECT 1 FROM subscription_manufacturers f
           WHERE f.subscription_id = s.id
             AND f.manufacturer_id = COALESCE(m.manufacturer_id, d.manufacturer_id)))
      AND (s.all_models OR EXISTS (SELECT 1 FROM subscription_models f
           WHERE f.subscription_id = s.id AND f.model_id = m.id))
      AND (s.all_categories OR EXISTS (SELECT 1 FROM subscription_categories f
           WHERE f.subscription_id = s.id AND f.category = COALESCE(m.category, d.category))))
ON CONFLICT DO NOTHING";

/// Queues the mail of an advisory revision for everyone who must or asked
/// to get it; returns how many rows were queued.
pub fn fan_out(
    conn: &mut DbConnection,
    plan: &FanOut,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    use diesel::sql_types::{Bool, Integer, Text};
    let units = serde_json::to_string(&plan.units).map_err(|e| DbError::Other(e.into()))?;
    let advisory = plan.advisory_id.to_string();
    let at = super::types::timestamp_text(now);
    let (pg_subscribers, sqlite_subscribers) = (
        SUBSCRIBERS
            .replace("{advisory}", "CAST($2 AS uuid)")
            .replace("{now}", "CAST($4 AS timestamptz)"),
        SUBSCRIBERS
            .replace("{advisory}", "$2")
            .replace("{now}", "$4"),
    );
    let mut queued = 0;
    macro_rules! run {
        ($conn:expr, $personnel:expr, $subscribers:expr) => {{
            queued += diesel::sql_query($personnel)
                .bind::<Text, _>(plan.kind.as_str())
                .bind::<Text, _>(&advisory)
                .bind::<Integer, _>(plan.revision)
                .bind::<Text, _>(&at)
                .bind::<Bool, _>(plan.all_personnel)
                .bind::<Text, _>(&units)
                .execute($conn)?;
            if plan.to_subscribers {
                queued += diesel::sql_query($subscribers)
                    .bind::<Text, _>(plan.kind.as_str())
                    .bind::<Text, _>(&advisory)
                    .bind::<Integer, _>(plan.revision)
                    .bind::<Text, _>(&at)
                    .bind::<Integer, _>(plan.severity_rank)
                    .execute($conn)?;
            }
        }};
    }
    match conn {
        DbConnection::Postgres(pg) => run!(pg, PERSONNEL_PG, &pg_subscribers),
        DbConnection::Sqlite(sqlite) => run!(sqlite, PERSONNEL_SQLITE, &sqlite_subscribers),
    }
    Ok(queued)
}

/// A mail claimed by a worker, to send now.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<super::types::DbUuid>)]
    pub advisory_id: Option<DbId>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    pub revision: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub email: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub email_key: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub audience: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<super::types::DbUuid>)]
    pub subscription_id: Option<DbId>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub attempts: i32,
    /// What a digest lists (JSON).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub payload: Option<String>,
}

const CLAIM: &str = "
UPDATE outbox SET state = 'sending', lease_until = {lease}, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM outbox
    WHERE (state IN ('queued', 'retrying') AND next_attempt_at <= {now})
       OR (state = 'sending' AND lease_until < {now})
    ORDER BY next_attempt_at, id
    LIMIT $3 {lock})
RETURNING id, kind, advisory_id, revision, email, email_key, name, audience, subscription_id,
          attempts, payload";

/// Claims up to `limit` due mails (and mails whose claim expired) until
/// `lease_until`. On PostgreSQL, rows other workers are claiming are skipped,
/// so any number of workers share the queue.
pub fn claim(
    conn: &mut DbConnection,
    limit: i64,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, DbError> {
    use diesel::sql_types::{BigInt, Text};
    let (lease, at) = (
        super::types::timestamp_text(lease_until),
        super::types::timestamp_text(now),
    );
    Ok(match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(
            CLAIM
                .replace("{lease}", "CAST($1 AS timestamptz)")
                .replace("{now}", "CAST($2 AS timestamptz)")
                .replace("{lock}", "FOR UPDATE SKIP LOCKED"),
        )
        .bind::<Text, _>(&lease)
        .bind::<Text, _>(&at)
        .bind::<BigInt, _>(limit)
        .load(pg)?,
        DbConnection::Sqlite(sqlite) => diesel::sql_query(
            CLAIM
                .replace("{lease}", "$1")
                .replace("{now}", "$2")
                .replace("{lock}", ""),
        )
        .bind::<Text, _>(&lease)
        .bind::<Text, _>(&at)
        .bind::<BigInt, _>(limit)
        .load(sqlite)?,
    })
}

/// What became of one claimed mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        reply: String,
    },
    /// Try again at `at`. A throttled attempt does not count against the
    /// mail's attempts.
    Retry {
        error: String,
        reply: Option<String>,
        at: DateTime<Utc>,
        counts: bool,
    },
    Failed {
        error: String,
        reply: Option<String>,
    },
    /// Not sent: the subscriber left after the mail was queued.
    Suppressed,
}

/// Writes the outcomes of a batch (only rows still claimed change: a row
/// whose lease ran out and was claimed again is the other claim's to record).
pub fn record(
    conn: &mut DbConnection,
    outcomes: &[(i64, Outcome)],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    for (id, outcome) in outcomes {
        let row = outbox::table
            .filter(outbox::id.eq(*id))
            .filter(outbox::state.eq(DeliveryState::Sending.as_str()));
        let done = (
            outbox::lease_until.eq(None::<DbTime>),
            outbox::last_error.eq(None::<String>),
        );
        match outcome {
            Outcome::Sent { reply } => diesel::update(row)
                .set((
                    outbox::state.eq(DeliveryState::Sent.as_str()),
                    outbox::last_reply.eq(reply),
                    outbox::sent_at.eq(Some(DbTime(now))),
                    done,
                ))
                .execute(conn)?,
            Outcome::Retry {
                error,
                reply,
                at,
                counts,
            } => diesel::update(row)
                .set((
                    outbox::state.eq(DeliveryState::Retrying.as_str()),
                    outbox::last_error.eq(error),
                    outbox::last_reply.eq(reply),
                    outbox::next_attempt_at.eq(DbTime(*at)),
                    outbox::lease_until.eq(None::<DbTime>),
                    outbox::attempts.eq(outbox::attempts - if *counts { 0 } else { 1 }),
                ))
                .execute(conn)?,
            Outcome::Failed { error, reply } => diesel::update(row)
                .set((
                    outbox::state.eq(DeliveryState::Failed.as_str()),
                    outbox::last_error.eq(error),
                    outbox::last_reply.eq(reply),
                    outbox::lease_until.eq(None::<DbTime>),
                ))
                .execute(conn)?,
            Outcome::Suppressed => diesel::update(row)
                .set((outbox::state.eq(DeliveryState::Suppressed.as_str()), done))
                .execute(conn)?,
        };
    }
    Ok(())
}

/// Gives claimed rows back unsent (a worker shutting down): they are due
/// again at once, and the claim does not count as an attempt.
pub fn release(conn: &mut DbConnection, ids: &[i64]) -> Result<(), DbError> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(ids))
            .filter(outbox::state.eq(DeliveryState::Sending.as_str())),
    )
    .set((
        outbox::state.eq(DeliveryState::Retrying.as_str()),
        outbox::lease_until.eq(None::<DbTime>),
        outbox::attempts.eq(outbox::attempts - 1),
    ))
    .execute(conn)?;
    Ok(())
}

/// One recipient's delivery of an advisory's mail.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Delivery {
    #[serde(skip)]
    pub id: i64,
    pub email: String,
    pub kind: MailKind,
    pub revision: Option<i32>,
    pub recipient: Recipient,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// The mail server's last reply.
    pub last_reply: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

type DeliveryRow = (
    i64,
    String,
    String,
    Option<i32>,
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    DbTime,
    Option<DbTime>,
);

/// One page of an advisory's deliveries in queue order, after row `after`.
pub fn deliveries(
    conn: &mut DbConnection,
    advisory_id: Uuid,
    state: Option<DeliveryState>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    let mut query = outbox::table
        .filter(outbox::advisory_id.eq(DbId(advisory_id)))
        .select((
            outbox::id,
            outbox::email,
            outbox::kind,
            outbox::revision,
            outbox::audience,
            outbox::state,
            outbox::attempts,
            outbox::last_error,
            outbox::last_reply,
            outbox::next_attempt_at,
            outbox::sent_at,
        ))
        .order(outbox::id)
        .limit(limit)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(outbox::state.eq(state.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(outbox::id.gt(after));
    }
    let stored = |e: String| DbError::Other(anyhow::anyhow!("stored outbox row: {e}"));
    query
        .load::<DeliveryRow>(conn)?
        .into_iter()
        .map(
            |(id, email, kind, revision, audience, state, attempts, error, reply, next, sent)| {
                let state: DeliveryState = state.parse().map_err(stored)?;
                let pending = matches!(
                    state,
                    DeliveryState::Queued | DeliveryState::Retrying | DeliveryState::Sending
                );
                Ok(Delivery {
                    id,
                    email,
                    kind: kind.parse().map_err(stored)?,
                    revision,
                    recipient: audience.parse().map_err(stored)?,
                    state,
                    attempts,
                    last_error: error,
                    last_reply: reply,
                    next_attempt_at: pending.then_some(next.0),
                    sent_at: sent.map(|s| s.0),
                })
            },
        )
        .collect()
}

/// How many of an advisory's mails are in each state.
pub fn counts(
    conn: &mut DbConnection,
    advisory_id: Option<Uuid>,
) -> Result<Vec<(DeliveryState, i64)>, DbError> {
    let mut query = outbox::table
        .group_by(outbox::state)
        .select((outbox::state, diesel::dsl::count_star()))
        .into_boxed();
    if let Some(id) = advisory_id {
        query = query.filter(outbox::advisory_id.eq(DbId(id)));
    }
    query
        .load::<(String, i64)>(conn)?
        .into_iter()
        .map(|(state, n)| {
            state
                .parse()
                .map(|s| (s, n))
                .map_err(|e: String| DbError::Other(anyhow::anyhow!(e)))
        })
        .collect()
}

/// Queues an advisory's failed mails again, due now, with fresh attempts.
pub fn retry_failed(
    conn: &mut DbConnection,
    advisory_id: Uuid,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        outbox::table
            .filter(outbox::advisory_id.eq(DbId(advisory_id)))
            .filter(outbox::state.eq(DeliveryState::Failed.as_str())),
    )
    .set((
        outbox::state.eq(DeliveryState::Queued.as_str()),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(DbTime(now)),
    ))
    .execute(conn)?)
}
