//! The outbox: every mail is a row here before it is sent, written in the
//! transaction of the change that causes it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::outbox;
use super::types::{DbId, DbTime};
use super::{Db, DbConnection, DbError, on_backend};
use crate::domain::mail::{DeliveryState, MailKind, Recipient, email_key};

/// A single mail not about one advisory (a confirmation, a link to manage
/// a subscription, a digest).
pub struct NewMail {
    pub kind: MailKind,
    pub email: String,
    pub name: Option<String>,
    pub recipient: Recipient,
    pub subscription_id: Option<Uuid>,
    /// What the mail lists, as JSON: a digest's advisories.
    pub payload: Option<String>,
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
            outbox::payload.eq(mail.payload),
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

const PERSONNEL: &str = "
INSERT INTO outbox (kind, advisory_id, revision, email, email_key, name, audience, state,
                    attempts, next_attempt_at, created_at)
SELECT $1, {advisory}, $3, p.email, p.email_key, p.name, 'personnel', 'queued', 0,
       {now}, {now}
FROM personnel p
WHERE p.active AND ($5 OR p.unit IN ({units}))
ON CONFLICT DO NOTHING";

/// `{advisory}` and `{now}` are how the backend reads those parameters. A
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
    let units = super::json_param(&plan.units)?;
    let advisory = plan.advisory_id.to_string();
    let at = super::types::timestamp_text(now);
    let statement = |template: &str| {
        let filled = template
            .replace("{advisory}", &super::param(conn, 2, "uuid"))
            .replace("{now}", &super::param(conn, 4, "timestamptz"))
            .replace("{units}", &super::json_values(conn, 6));
        super::numbered(conn, &filled)
    };
    let (personnel, subscribers) = (statement(PERSONNEL), statement(SUBSCRIBERS));
    let mut queued = on_backend!(conn, c => diesel::sql_query(personnel)
        .bind::<Text, _>(plan.kind.as_str())
        .bind::<Text, _>(&advisory)
        .bind::<Integer, _>(plan.revision)
        .bind::<Text, _>(&at)
        .bind::<Bool, _>(plan.all_personnel)
        .bind::<Text, _>(&units)
        .execute(c)?);
    if plan.to_subscribers {
        queued += on_backend!(conn, c => diesel::sql_query(subscribers)
            .bind::<Text, _>(plan.kind.as_str())
            .bind::<Text, _>(&advisory)
            .bind::<Integer, _>(plan.revision)
            .bind::<Text, _>(&at)
            .bind::<Integer, _>(plan.severity_rank)
            .execute(c)?);
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

/// Which rows a worker may take: queued or retrying mail whose time has
/// come and that nobody holds, or whose claim ran out. Written as one range
/// over `outbox_due` (next_attempt_at, id): a claim leaves the row's state
/// and `next_attempt_at` as they were, so a mail being sent is in the range
/// too and only its token and lease tell.
const DUE: &str = "state IN ('queued', 'retrying') AND next_attempt_at <= {now}
       AND (claim_token IS NULL OR lease_until < {now})";

/// The claim changes no indexed column (not even `state`, which
/// `outbox_due`'s condition reads), so PostgreSQL can update each row in
/// its page without index entries (the migration `outbox_claim_in_place`).
const CLAIM: &str = "
UPDATE outbox SET lease_until = {lease}, claim_token = $4, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM outbox WHERE {due}
    ORDER BY next_attempt_at, id
    LIMIT $3 {lock})
RETURNING id, kind, advisory_id, revision, email, email_key, name, audience, subscription_id,
          attempts, payload";

/// Whether any mail is due (a read, so an idle worker looks without taking
/// a write lock).
pub fn any_due(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<bool, DbError> {
    use diesel::sql_types::{Bool, Text};
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = Bool)]
        due: bool,
    }
    let query = format!(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE {}) AS due",
        DUE.replace("{now}", &super::param(conn, 1, "timestamptz"))
    );
    let at = super::types::timestamp_text(now);
    let query = super::numbered(conn, &query);
    let found: Found =
        on_backend!(conn, c => diesel::sql_query(query).bind::<Text, _>(&at).get_result(c)?);
    Ok(found.due)
}

/// Claims up to `limit` due mails (and mails whose claim expired) until
/// `lease_until`, under `token`: only a holder of the token records their
/// outcomes or extends their lease. On PostgreSQL, rows other workers are
/// claiming are skipped, so any number of workers share the queue.
pub fn claim(
    conn: &mut DbConnection,
    limit: i64,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
    token: &str,
) -> Result<Vec<Claimed>, DbError> {
    use diesel::sql_types::{BigInt, Text};
    let query = claim_query(conn);
    let (lease, at) = (
        super::types::timestamp_text(lease_until),
        super::types::timestamp_text(now),
    );
    set_config(conn, &BY_KEY, true)?;
    Ok(on_backend!(conn, c => diesel::sql_query(query)
        .bind::<Text, _>(&lease)
        .bind::<Text, _>(&at)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(token)
        .load(c)?))
}

/// [`CLAIM`] as `conn`'s backend runs it.
fn claim_query(conn: &DbConnection) -> String {
    let lock = match conn {
        DbConnection::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        DbConnection::Sqlite(_) => "",
    };
    let query = CLAIM
        .replace("{due}", DUE)
        .replace("{lease}", &super::param(conn, 1, "timestamptz"))
        .replace("{now}", &super::param(conn, 2, "timestamptz"))
        .replace("{lock}", lock);
    super::numbered(conn, &query)
}

/// Moves the lease of every row still held under one of `tokens` to
/// `until`; returns how many rows it moved.
pub fn extend(
    conn: &mut DbConnection,
    tokens: &[String],
    until: DateTime<Utc>,
) -> Result<usize, DbError> {
    use diesel::sql_types::Text;
    let tokens = super::json_param(&tokens)?;
    let query = format!(
        "UPDATE outbox SET lease_until = {} WHERE claim_token IN ({})",
        super::param(conn, 1, "timestamptz"),
        super::json_values(conn, 2)
    );
    let until = super::types::timestamp_text(until);
    let query = super::numbered(conn, &query);
    Ok(on_backend!(conn, c => diesel::sql_query(query)
        .bind::<Text, _>(&until)
        .bind::<Text, _>(&tokens)
        .execute(c)?))
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
    /// Not tried (the worker is stopping, or could not keep its lease):
    /// due again at once, and the claim does not count as an attempt.
    Released,
}

/// The outcome of one row of a claim, as one row of the recording
/// statement's input. `keep_*` leave the row's last error or reply as it
/// was; absent times leave theirs.
#[derive(serde::Serialize)]
struct OutcomeRow<'a> {
    id: i64,
    token: &'a str,
    /// `None` leaves the row's state as it was (queued or retrying).
    state: Option<&'static str>,
    error: Option<&'a str>,
    reply: Option<&'a str>,
    keep_error: bool,
    keep_reply: bool,
    next_at: Option<String>,
    sent_at: Option<String>,
    refund: i32,
}

impl<'a> OutcomeRow<'a> {
    fn of(id: i64, token: &'a str, outcome: &'a Outcome, now: DateTime<Utc>) -> Self {
        let row = |state: DeliveryState| OutcomeRow {
            id,
            token,
            state: Some(state.as_str()),
            error: None,
            reply: None,
            keep_error: false,
            keep_reply: false,
            next_at: None,
            sent_at: None,
            refund: 0,
        };
        let time = |t: DateTime<Utc>| Some(super::types::timestamp_text(t));
        match outcome {
            Outcome::Sent { reply } => OutcomeRow {
                reply: Some(reply),
                sent_at: time(now),
                ..row(DeliveryState::Sent)
            },
            Outcome::Retry {
                error,
                reply,
                at,
                counts,
            } => OutcomeRow {
                error: Some(error),
                reply: reply.as_deref(),
                next_at: time(*at),
                refund: i32::from(!counts),
                ..row(DeliveryState::Retrying)
            },
            Outcome::Failed { error, reply } => OutcomeRow {
                error: Some(error),
                reply: reply.as_deref(),
                ..row(DeliveryState::Failed)
            },
            Outcome::Suppressed => OutcomeRow {
                keep_reply: true,
                ..row(DeliveryState::Suppressed)
            },
            Outcome::Released => OutcomeRow {
                state: None,
                keep_error: true,
                keep_reply: true,
                next_at: time(now),
                refund: 1,
                ..row(DeliveryState::Queued)
            },
        }
    }
}

/// The columns of [`OutcomeRow`] with their SQL types.
const OUTCOME_COLUMNS: [(&str, &str); 10] = [
    ("id", "bigint"),
    ("token", "text"),
    ("state", "text"),
    ("error", "text"),
    ("reply", "text"),
    ("keep_error", "boolean"),
    ("keep_reply", "boolean"),
    ("next_at", "timestamptz"),
    ("sent_at", "timestamptz"),
    ("refund", "integer"),
];

/// Writes each outcome to its row while the row is still held under the
/// outcome's claim token. A row holds a token only while it is being sent
/// (a claim sets it, this clears it), so the token alone says the row is
/// in hand; a condition on `state` would also let the planner read the
/// whole due index instead of each row by its id.
const RECORD: &str = "
UPDATE outbox AS o SET
    state = COALESCE(v.state, o.state),
    last_error = CASE WHEN v.keep_error THEN o.last_error ELSE v.error END,
    last_reply = CASE WHEN v.keep_reply THEN o.last_reply ELSE v.reply END,
    next_attempt_at = COALESCE(v.next_at, o.next_attempt_at),
    sent_at = COALESCE(v.sent_at, o.sent_at),
    attempts = o.attempts - v.refund,
    lease_until = NULL,
    claim_token = NULL
FROM {rows}
WHERE o.id = v.id AND o.claim_token = v.token";

/// Planner settings that make PostgreSQL reach outbox rows one by one
/// through their keys: the claim walks the due index in its order, the
/// recording looks each row up by id. Each touches one batch out of a queue
/// that can hold a whole fan-out, whose statistics lag behind it (a
/// fan-out's rows arrive in one transaction, before any `ANALYZE`): the
/// planner, guessing a few dozen rows, would rather read every queued row
/// through a bitmap and sort them, or hash them (measured in a run at
/// 20,000 queued mails: claims 20–50 ms, recordings of nine outcomes 1–9 ms,
/// both scanning 19,600 rows).
const BY_KEY: [(&str, &str); 5] = [
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("enable_sort", "off"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
];

/// Sets `settings` (name, value) on PostgreSQL, in one statement: for the
/// rest of the transaction, or (`local` false) of the session. SQLite has
/// none of them.
fn set_config(
    conn: &mut DbConnection,
    settings: &[(&str, &str)],
    local: bool,
) -> Result<(), DbError> {
    if let DbConnection::Postgres(pg) = conn {
        let calls: Vec<String> = settings
            .iter()
            .map(|(name, value)| format!("set_config('{name}', '{value}', {local})"))
            .collect();
        diesel::sql_query(format!("SELECT {}", calls.join(", "))).execute(pg)?;
    }
    Ok(())
}

/// Records outcomes on a connection of its own, one statement (one round
/// trip) a recording: the mail worker's recorder, which the lanes wait for.
pub struct Recorder {
    db: Db,
    /// Dropped after a failure; the next recording opens another.
    conn: Option<DbConnection>,
}

impl Recorder {
    pub fn new(db: Db) -> Self {
        Self { db, conn: None }
    }

    /// Writes the outcomes of claimed rows, `(id, claim token, outcome)`, in
    /// one statement, off the async executor. Only rows still held under
    /// their token change: a row whose lease ran out and was claimed again
    /// is the new holder's to record.
    pub async fn record(
        &mut self,
        outcomes: &[(i64, &str, &Outcome)],
        now: DateTime<Utc>,
    ) -> Result<usize, DbError> {
        let rows = outcome_rows(outcomes, now)?;
        let db = self.db.clone();
        let conn = self.conn.take();
        let (conn, written) = tokio::task::spawn_blocking(move || {
            let mut conn = match conn {
                Some(conn) => conn,
                None => match open_recording_connection(&db) {
                    Ok(conn) => conn,
                    Err(error) => return (None, Err(error)),
                },
            };
            let written = db.write_statement(&mut conn, |c| write_rows(c, &rows));
            (written.is_ok().then_some(conn), written)
        })
        .await
        .map_err(|e| DbError::Other(e.into()))?;
        self.conn = conn;
        written
    }
}

/// A connection that runs only recordings, so their settings are made once
/// for its session. An outcome lost to a crash of PostgreSQL itself (not of
/// a worker) only resends those few mails, with their Message-IDs; not
/// waiting for the disk keeps the lanes sending.
fn open_recording_connection(db: &Db) -> Result<DbConnection, DbError> {
    let mut conn = db.open_connection()?;
    set_config(
        &mut conn,
        &[BY_KEY.as_slice(), &[("synchronous_commit", "off")]].concat(),
        false,
    )?;
    Ok(conn)
}

/// The outcomes as the recording statement's one parameter.
fn outcome_rows(outcomes: &[(i64, &str, &Outcome)], now: DateTime<Utc>) -> Result<String, DbError> {
    let rows: Vec<OutcomeRow> = outcomes
        .iter()
        .map(|(id, token, outcome)| OutcomeRow::of(*id, token, outcome, now))
        .collect();
    super::json_param(&rows)
}

/// [`RECORD`] with `rows`, the outcomes as [`outcome_rows`] writes them.
fn write_rows(conn: &mut DbConnection, rows: &str) -> Result<usize, DbError> {
    let sql = RECORD.replace("{rows}", &super::json_rows(conn, 1, &OUTCOME_COLUMNS));
    let record = PreparedRecord { sql: &sql, rows };
    Ok(on_backend!(conn, c => record.execute(c)?))
}

/// [`RECORD`], kept prepared by each connection. `sql_query` has every
/// statement prepared again, which cost more than running it: on
/// PostgreSQL planning took 0.57 ms and execution 0.21 ms (`EXPLAIN
/// ANALYZE`, two outcomes), a quarter to a third of what PostgreSQL spent
/// per mail; on SQLite parsing and compiling it was half of the recorder's
/// CPU, a sixth of the whole worker's (bench/README.md). Its query id is
/// static, so diesel's statement cache keeps one prepared statement per
/// connection: `sql` must therefore always be the same text, with its one
/// parameter written `$1` (the backend's query builder numbers it).
struct PreparedRecord<'a> {
    sql: &'a str,
    rows: &'a str,
}

impl diesel::query_builder::QueryId for PreparedRecord<'_> {
    type QueryId = PreparedRecord<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for PreparedRecord<'_>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<diesel::sql_types::Text>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        let (before, after) = self.sql.split_once("$1").ok_or_else(|| {
            diesel::result::Error::QueryBuilderError("the recording statement lost its $1".into())
        })?;
        out.push_sql(before);
        out.push_bind_param::<diesel::sql_types::Text, _>(self.rows)?;
        out.push_sql(after);
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for PreparedRecord<'_> {}

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
    bool,
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
            outbox::claim_token.is_not_null(),
        ))
        .order(outbox::id)
        .limit(limit)
        .into_boxed();
    if let Some(state) = state {
        let (states, held) = state.stored_as();
        query = query.filter(outbox::state.eq_any(states.iter().map(|s| s.as_str())));
        query = match held {
            Some(true) => query.filter(outbox::claim_token.is_not_null()),
            Some(false) => query.filter(outbox::claim_token.is_null()),
            None => query,
        };
    }
    if let Some(after) = after {
        query = query.filter(outbox::id.gt(after));
    }
    query
        .load::<DeliveryRow>(conn)?
        .into_iter()
        .map(
            |(
                id,
                email,
                kind,
                revision,
                audience,
                state,
                attempts,
                error,
                reply,
                next,
                sent,
                held,
            )| {
                let state = DeliveryState::shown(state.parse().map_err(stored)?, held);
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
                    next_attempt_at: state.is_pending().then_some(next.0),
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
    // By token too: a held row reads as sending. There are as many tokens
    // as claims in hand, a few per worker.
    let mut query = outbox::table
        .group_by((outbox::state, outbox::claim_token))
        .select((
            outbox::state,
            outbox::claim_token,
            diesel::dsl::count_star(),
        ))
        .into_boxed();
    if let Some(id) = advisory_id {
        query = query.filter(outbox::advisory_id.eq(DbId(id)));
    }
    let mut counts: Vec<(DeliveryState, i64)> = Vec::new();
    for (state, token, n) in query.load::<(String, Option<String>, i64)>(conn)? {
        let state = DeliveryState::shown(state.parse().map_err(stored)?, token.is_some());
        match counts.iter_mut().find(|(counted, _)| *counted == state) {
            Some((_, total)) => *total += n,
            None => counts.push((state, n)),
        }
    }
    Ok(counts)
}

/// A stored outbox row that does not read as one (`what` is wrong).
fn stored(what: String) -> DbError {
    DbError::Other(anyhow::anyhow!("stored outbox row: {what}"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tests::database;

    /// What [`Recorder::record`] runs, on the test's connection.
    fn record(
        conn: &mut DbConnection,
        outcomes: &[(i64, &str, &Outcome)],
        now: DateTime<Utc>,
    ) -> Result<usize, DbError> {
        write_rows(conn, &outcome_rows(outcomes, now)?)
    }

    fn queue(conn: &mut DbConnection, count: usize, now: DateTime<Utc>) -> Vec<i64> {
        (0..count)
            .map(|i| {
                let mail = NewMail {
                    kind: MailKind::Confirm,
                    email: format!("person{i}@example.org"),
                    name: None,
                    recipient: Recipient::Subscriber,
                    subscription_id: None,
                    payload: None,
                };
                enqueue(conn, mail, now).unwrap()
            })
            .collect()
    }

    /// (state, attempts, last error, last reply) of a row.
    fn row(conn: &mut DbConnection, id: i64) -> (String, i32, Option<String>, Option<String>) {
        outbox::table
            .find(id)
            .select((
                outbox::state,
                outbox::attempts,
                outbox::last_error,
                outbox::last_reply,
            ))
            .first(conn)
            .unwrap()
    }

    /// SQLite takes a partial index only for a query that repeats its
    /// condition term for term; when the two drifted apart, every claim read
    /// and sorted the whole outbox.
    #[test]
    fn a_claim_walks_the_due_index_instead_of_reading_the_whole_outbox() {
        use diesel::sql_types::Text;
        #[derive(QueryableByName)]
        struct Step {
            #[diesel(sql_type = Text)]
            detail: String,
        }
        let (_dir, db) = database();
        let mut conn = db.open_connection().unwrap();
        let plan = format!("EXPLAIN QUERY PLAN {}", claim_query(&conn));
        let DbConnection::Sqlite(c) = &mut conn else {
            unreachable!("the store's unit tests run on SQLite")
        };
        let steps: Vec<String> = diesel::sql_query(plan)
            .load::<Step>(c)
            .unwrap()
            .into_iter()
            .map(|step| step.detail)
            .collect();
        assert!(
            steps.iter().any(|s| s.contains("USING INDEX outbox_due")),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| s == "SCAN outbox" || s.contains("TEMP B-TREE")),
            "{steps:?}"
        );
    }

    #[test]
    fn a_claim_taken_over_is_recorded_only_by_its_new_holder() {
        let (_dir, db) = database();
        db.write_blocking(|conn| -> Result<(), DbError> {
            let now = Utc::now();
            let ids = queue(conn, 2, now);
            let lease = chrono::Duration::seconds(10);
            let first = claim(conn, 10, now + lease, now, "first")?;
            assert_eq!(first.len(), 2);
            assert!(!any_due(conn, now)?, "claimed rows are not due");
            assert!(claim(conn, 10, now + lease, now, "other")?.is_empty());
            // The first holder's lease runs out: another worker takes the rows.
            let later = now + lease + chrono::Duration::seconds(1);
            assert!(any_due(conn, later)?);
            let second = claim(conn, 10, later + lease, later, "second")?;
            assert_eq!(second.len(), 2);
            let sent = Outcome::Sent {
                reply: "250 first".into(),
            };
            let late: Vec<(i64, &str, &Outcome)> =
                ids.iter().map(|id| (*id, "first", &sent)).collect();
            assert_eq!(
                record(conn, &late, later)?,
                0,
                "the first holder writes nothing"
            );
            assert_eq!(extend(conn, &["first".into()], later + lease)?, 0);
            assert_eq!(row(conn, ids[0]).0, "queued", "a claim leaves the state");
            assert_eq!(counts(conn, None)?, [(DeliveryState::Sending, 2)]);
            assert_eq!(extend(conn, &["second".into()], later + lease)?, 2);
            let failed = Outcome::Failed {
                error: "550 no".into(),
                reply: Some("550 no".into()),
            };
            assert_eq!(record(conn, &[(ids[0], "second", &failed)], later)?, 1);
            assert_eq!(row(conn, ids[0]).0, "failed");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn each_outcome_leaves_its_row_in_its_state_in_one_statement() {
        let (_dir, db) = database();
        db.write_blocking(|conn| -> Result<(), DbError> {
            let now = Utc::now();
            let ids = queue(conn, 5, now);
            claim(conn, 10, now + chrono::Duration::seconds(60), now, "t")?;
            let outcomes = [
                Outcome::Sent {
                    reply: "250 ok".into(),
                },
                Outcome::Retry {
                    error: "451 later".into(),
                    reply: Some("451 later".into()),
                    at: now + chrono::Duration::seconds(30),
                    counts: true,
                },
                Outcome::Retry {
                    error: "421 slow down".into(),
                    reply: None,
                    at: now + chrono::Duration::seconds(30),
                    counts: false,
                },
                Outcome::Suppressed,
                Outcome::Released,
            ];
            let rows: Vec<(i64, &str, &Outcome)> = ids
                .iter()
                .zip(&outcomes)
                .map(|(id, outcome)| (*id, "t", outcome))
                .collect();
            assert_eq!(record(conn, &rows, now)?, 5);
            let expect = |state: &str, attempts: i32, error: Option<&str>, reply: Option<&str>| {
                (
                    state.to_owned(),
                    attempts,
                    error.map(str::to_owned),
                    reply.map(str::to_owned),
                )
            };
            assert_eq!(row(conn, ids[0]), expect("sent", 1, None, Some("250 ok")));
            assert_eq!(
                row(conn, ids[1]),
                expect("retrying", 1, Some("451 later"), Some("451 later"))
            );
            assert_eq!(
                row(conn, ids[2]),
                expect("retrying", 0, Some("421 slow down"), None),
                "a throttled attempt does not count"
            );
            assert_eq!(row(conn, ids[3]), expect("suppressed", 1, None, None));
            assert_eq!(
                row(conn, ids[4]),
                expect("queued", 0, None, None),
                "a released row is as before its claim (never tried: queued), due again at once"
            );
            assert!(any_due(conn, now)?);
            let again = claim(conn, 10, now + chrono::Duration::seconds(60), now, "u")?;
            assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[4]]);
            Ok(())
        })
        .unwrap();
    }
}
