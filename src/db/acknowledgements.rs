//! Who acknowledged which advisory revision, and who still has to.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{acknowledgements, outbox};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};
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
    let outstanding: Vec<String> = status(conn, advisory_id, revision)?
        .into_iter()
        .filter(|(_, at)| at.is_none())
        .map(|(email, _)| email)
        .collect();
    let reminded: std::collections::HashSet<String> = outbox::table
        .filter(outbox::advisory_id.eq(DbId(advisory_id)))
        .filter(outbox::revision.eq(revision))
        .filter(outbox::kind.eq(MailKind::Reminder.as_str()))
        .select(outbox::email_key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut queued = 0;
    for email in outstanding {
        let key = email_key(&email);
        if reminded.contains(&key) {
            continue;
        }
        diesel::insert_into(outbox::table)
            .values((
                outbox::kind.eq(MailKind::Reminder.as_str()),
                outbox::advisory_id.eq(Some(DbId(advisory_id))),
                outbox::revision.eq(Some(revision)),
                outbox::email.eq(&email),
                outbox::email_key.eq(&key),
                outbox::audience.eq(Recipient::Personnel.as_str()),
                outbox::state.eq(DeliveryState::Queued.as_str()),
                outbox::attempts.eq(0),
                outbox::next_attempt_at.eq(DbTime(now)),
                outbox::created_at.eq(DbTime(now)),
            ))
            .execute(conn)?;
        queued += 1;
    }
    Ok(queued)
}
