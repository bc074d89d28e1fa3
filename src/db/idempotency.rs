//! Idempotency keys: the first answer to a creating request, kept so that a
//! retry with the same key gets that answer instead of creating twice.
//!
//! A request claims its key (a row whose `status` is null) in a short
//! transaction of its own before the handler runs, and completes it with the
//! handler's answer afterwards. The primary key `(principal, key)` makes a
//! claim exclusive; the claim's `created_at` doubles as its stamp, so that
//! a request whose abandoned claim was taken over cannot complete it.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use diesel::prelude::*;

use super::schema::idempotency_keys;
use super::types::DbTime;
use super::{DbConnection, DbError, is_unique_violation};

/// How long a key, and the answer stored under it, is kept.
pub const RETENTION: Duration = Duration::hours(24);

/// A claim this old whose request never finished was abandoned (its process
/// died, or the client went away mid-request): a retry may take it over.
pub const ABANDONED_AFTER: Duration = Duration::seconds(60);

/// A key as one caller used it: keys of different callers never meet.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The token's `sub`.
    pub principal: String,
    pub key: String,
}

/// An answer as stored for replaying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The replayed headers, as `(name, value)` pairs.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: run it, then [`complete`] or [`release`]
    /// the claim with this stamp.
    Claimed(DateTime<Utc>),
    /// The same request was answered before: answer the same again.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// A request with this key is running now.
    InProgress,
}

type Row = (String, Option<i32>, Option<String>, Option<Vec<u8>>, DbTime);

/// Claims `key` for a request with `fingerprint`, after purging every key
/// past its retention (so an expired key counts as never used).
pub fn claim(
    conn: &mut DbConnection,
    key: &IdempotencyKey,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<Claim, DbError> {
    // Stored timestamps keep microseconds; the stamp must compare equal to
    // what is read back.
    let now = now.trunc_subsecs(6);
    diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::created_at.lt(DbTime(now - RETENTION))),
    )
    .execute(conn)?;
    // Insert first, so that of two requests racing for a key exactly one
    // wins; in a savepoint, as on PostgreSQL a failed statement would
    // otherwise doom the whole transaction.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::principal.eq(&key.principal),
                idempotency_keys::key.eq(&key.key),
                idempotency_keys::fingerprint.eq(fingerprint),
                idempotency_keys::created_at.eq(DbTime(now)),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => return Ok(Claim::Claimed(now)),
        Err(e) if is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let Some((stored_fingerprint, status, headers, body, created_at)) = find(conn, key)? else {
        // Released meanwhile by a request that failed: a retry will run.
        return Ok(Claim::InProgress);
    };
    if stored_fingerprint != fingerprint {
        return Ok(Claim::Mismatch);
    }
    if let Some(status) = status {
        return stored(status, headers, body).map(Claim::Replay);
    }
    if created_at.0 > now - ABANDONED_AFTER {
        return Ok(Claim::InProgress);
    }
    // Take the abandoned claim over, unless another retry just did.
    let taken = diesel::update(pending(key.principal.clone(), key.key.clone(), created_at))
        .set(idempotency_keys::created_at.eq(DbTime(now)))
        .execute(conn)?;
    Ok(if taken == 1 {
        Claim::Claimed(now)
    } else {
        Claim::InProgress
    })
}

/// Stores the answer of the request that holds the claim stamped `claimed`.
/// Returns whether it still held it.
pub fn complete(
    conn: &mut DbConnection,
    key: &IdempotencyKey,
    claimed: DateTime<Utc>,
    response: &StoredResponse,
) -> Result<bool, DbError> {
    let headers = serde_json::to_string(&response.headers).map_err(|e| DbError::Other(e.into()))?;
    let updated = diesel::update(pending(
        key.principal.clone(),
        key.key.clone(),
        DbTime(claimed),
    ))
    .set((
        idempotency_keys::status.eq(Some(i32::from(response.status))),
        idempotency_keys::headers.eq(Some(headers)),
        idempotency_keys::body.eq(Some(&response.body)),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Gives the claim up without an answer (the request failed on our side),
/// so that a retry runs the request again.
pub fn release(
    conn: &mut DbConnection,
    key: &IdempotencyKey,
    claimed: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::delete(pending(
        key.principal.clone(),
        key.key.clone(),
        DbTime(claimed),
    ))
    .execute(conn)?;
    Ok(())
}

fn find(conn: &mut DbConnection, key: &IdempotencyKey) -> Result<Option<Row>, DbError> {
    Ok(idempotency_keys::table
        .find((&key.principal, &key.key))
        .select((
            idempotency_keys::fingerprint,
            idempotency_keys::status,
            idempotency_keys::headers,
            idempotency_keys::body,
            idempotency_keys::created_at,
        ))
        .first(conn)
        .optional()?)
}

/// The unanswered claim of `key` stamped `claimed`.
#[diesel::dsl::auto_type]
fn pending(principal: String, key: String, claimed: DbTime) -> _ {
    idempotency_keys::table
        .filter(idempotency_keys::principal.eq(principal))
        .filter(idempotency_keys::key.eq(key))
        .filter(idempotency_keys::status.is_null())
        .filter(idempotency_keys::created_at.eq(claimed))
}

fn stored(
    status: i32,
    headers: Option<String>,
    body: Option<Vec<u8>>,
) -> Result<StoredResponse, DbError> {
    let corrupt = |what: &str| DbError::Other(anyhow::anyhow!("stored idempotent answer: {what}"));
    Ok(StoredResponse {
        status: u16::try_from(status).map_err(|_| corrupt("bad status"))?,
        headers: serde_json::from_str(headers.as_deref().unwrap_or("[]"))
            .map_err(|_| corrupt("bad headers"))?,
        body: body.unwrap_or_default(),
    })
}
