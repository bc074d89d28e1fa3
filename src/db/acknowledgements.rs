//! Who acknowledged which advisory revision, and who still has to.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{acknowledgements, outbox};
use super::types::{DbId, DbTime, timestamp_text};
use super::{DbConnection, DbError, on_backend};
use crate::domain::mail::{DeliveryState, MailKind, Recipient, email_key};

/// Records that `email` acknowledged `revision` of the advisory; doing it
/// again changes nothing. Returns when it was first acknowledged, and
/// whether that was now.
pub fn acknowledge(
    conn: &mut DbConnection,
    advisory_id: Uuid,
    revision: i32,
    email: &str,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, bool), DbError> {
    if let Some(at) = acknowledged_at(conn, advisory_id, revision, email)? {
        return Ok((at, false));
    }
    let key = email_key(email);
    diesel::insert_into(acknowledgements::table)
        .values((
            acknowledgements::advisory_id.eq(DbId(advisory_id)),
            acknowledgements::revision.eq(revision),
            acknowledgements::email_key.eq(&key),
            acknowledgements::email.eq(email.trim()),
            acknowledgements::acknowledged_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    Ok((now, true))
}

/// When `email` acknowledged `revision` of the advisory, if it did.
pub fn acknowledged_at(
    conn: &mut DbConnection,
    advisory_id: Uuid,
    revision: i32,
    email: &str,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let at: Option<DbTime> = acknowledgements::table
        .find((DbId(advisory_id), revision, email_key(email)))
        .select(acknowledgements::acknowledged_at)
        .first(conn)
        .optional()?;
    Ok(at.map(|at| at.0))
}

/// A recipient's address, and when they acknowledged (if they did).
pub type AckStatus = (String, Option<DateTime<Utc>>);

/// The personnel an advisory revision was mailed to, and whether each has
/// acknowledged it: `(address, acknowledged at)`.
pub fn status(
    conn: &mut DbConnection,
    advisory_id: Uuid,
    revision: i32,
) -> Result<Vec<AckStatus>, DbError> {
    let recipients: Vec<(String, String)> = outbox::table
        .filter(outbox::advisory_id.eq(DbId(advisory_id)))
        .filter(outbox::revision.eq(revision))
        .filter(outbox::kind.eq_any([MailKind::Published.as_str(), MailKind::Amended.as_str()]))
        .filter(outbox::audience.eq(Recipient::Personnel.as_str()))
        .filter(outbox::state.ne(DeliveryState::Suppressed.as_str()))
        .select((outbox::email_key, outbox::email))
        .order(outbox::id)
        .load(conn)?;
    let acknowledged: std::collections::HashMap<String, DateTime<Utc>> = acknowledgements::table
        .filter(acknowledgements::advisory_id.eq(DbId(advisory_id)))
        .filter(acknowledgements::revision.eq(revision))
        .select((
            acknowledgements::email_key,
            acknowledgements::acknowledged_at,
        ))
        .load::<(String, DbTime)>(conn)?
        .into_iter()
        .map(|(key, at)| (key, at.0))
        .collect();
    Ok(recipients
        .into_iter()
        .map(|(key, email)| {
            let at = acknowledged.get(&key).copied();
            (email, at)
        })
        .collect())
}

/// Queues a reminder for every person who was mailed the revision and has
/// not acknowledged it — once per person and revision. Returns how many.
pub fn remind(
    conn: &mut DbConnection,
    advisory_id: Uuid,
    revision: i32,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    use diesel::sql_types::{Integer, Text};
    let (advisory, at) = (advisory_id.to_string(), timestamp_text(now));
    let query = REMIND
        .replace("{advisory}", &super::param(conn, 1, "uuid"))
        .replace("{now}", &super::param(conn, 3, "timestamptz"));
    let query = super::numbered(conn, &query);
    Ok(on_backend!(conn, c => diesel::sql_query(query)
        .bind::<Text, _>(&advisory)
        .bind::<Integer, _>(revision)
        .bind::<Text, _>(&at)
        .execute(c)?))
}

/// One reminder per person the revision was mailed to who has not
/// acknowledged it; the outbox's uniqueness (advisory, revision, kind,
/// address) makes a second call queue none for those already reminded.
const REMIND: &str = "
INSERT INTO outbox (kind, advisory_id, revision, email, email_key, name, audience, state,
                    attempts, next_attempt_at, created_at)
SELECT 'reminder', o.advisory_id, o.revision, o.email, o.email_key, o.name, 'personnel',
       'queued', 0, {now}, {now}
FROM outbox o
WHERE o.advisory_id = {advisory} AND o.revision = $2
  AND o.kind IN ('published', 'amended') AND o.audience = 'personnel'
  AND o.state <> 'suppressed'
  AND NOT EXISTS (SELECT 1 FROM acknowledgements a
                  WHERE a.advisory_id = o.advisory_id AND a.revision = o.revision
                    AND a.email_key = o.email_key)
ON CONFLICT DO NOTHING";
