//! The append-only audit log. Every write path appends its rows as the
//! **last** step of its transaction: the append serialises writers (on
//! PostgreSQL with a transaction-scoped advisory lock), and taking that lock
//! last means no transaction ever waits for a row lock while holding it.
//! The append moves the chain's signed head (`audit_head`, one row) in the
//! same transaction.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use super::schema::{audit_head, audit_log};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};
use crate::domain::audit::{Actor, AuditKey, AuditRow, ChainHead, ChainWalk};

const APPEND_LOCK: i64 = 727_275;
const VERIFY_BATCH: i64 = 1_000;

/// One change, about to be recorded.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: &'static str,
    pub entity: &'static str,
    pub entity_id: String,
    pub payload: Value,
}

impl Change {
    pub fn new(
        action: &'static str,
        entity: &'static str,
        entity_id: impl ToString,
        payload: Value,
    ) -> Self {
        Self {
            action,
            entity,
            entity_id: entity_id.to_string(),
            payload,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct Row {
    seq: i64,
    id: DbId,
    at: DbTime,
    actor: String,
    action: String,
    entity: String,
    entity_id: String,
    payload: String,
    prev_hash: String,
    hash: String,
}

fn to_row(row: Row) -> AuditRow {
    AuditRow {
        seq: row.seq,
        id: row.id.0,
        at: row.at.0,
        actor: row.actor,
        action: row.action,
        entity: row.entity,
        entity_id: row.entity_id,
        payload: row.payload,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

/// The chain's head as stored; `None` when its row is gone.
pub fn head(conn: &mut DbConnection) -> Result<Option<ChainHead>, DbError> {
    let head: Option<(i64, String, i64, String)> = audit_head::table
        .select((
            audit_head::seq,
            audit_head::hash,
            audit_head::keyed_from,
            audit_head::signature,
        ))
        .first(conn)
        .optional()?;
    Ok(head.map(|(seq, hash, keyed_from, signature)| ChainHead {
        seq,
        hash,
        keyed_from,
        signature,
    }))
}

fn lock_chain(conn: &mut DbConnection) -> Result<(), DbError> {
    if let DbConnection::Postgres(pg) = conn {
        pg.batch_execute(&format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})"))?;
    }
    Ok(())
}

fn store_head(conn: &mut DbConnection, head: &ChainHead) -> Result<(), DbError> {
    diesel::update(audit_head::table)
        .set((
            audit_head::seq.eq(head.seq),
            audit_head::hash.eq(&head.hash),
            audit_head::signature.eq(&head.signature),
        ))
        .execute(conn)?;
    Ok(())
}

/// Signs the head the upgrade to keyed hashing left unsigned (it covers the
/// rows written before); a signed head is left alone. Run at start, inside
/// a transaction.
pub fn seal(conn: &mut DbConnection, key: &AuditKey) -> Result<(), DbError> {
    lock_chain(conn)?;
    match head(conn)? {
        Some(head) if head.signature.is_empty() => {
            tracing::warn!(
                rows = head.seq,
                keyed_from = head.keyed_from,
                "audit: signing the chain's head; rows before keyed_from keep their unkeyed hashes"
            );
            store_head(
                conn,
                &ChainHead::signed(head.seq, head.hash, head.keyed_from, key),
            )
        }
        _ => Ok(()),
    }
}

/// Appends `changes` by `actor` to the chain and moves its signed head.
/// Call it last in the transaction that made the changes. The chain goes
/// on from its head, not from whatever row is last: rows removed behind the
/// service's back stay a visible gap. A head without the key's signature
/// (changed outside the service) is refused rather than signed over.
pub fn append(
    conn: &mut DbConnection,
    key: &AuditKey,
    actor: &Actor,
    changes: Vec<Change>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    if changes.is_empty() {
        return Ok(());
    }
    lock_chain(conn)?;
    let head = head(conn)?
        .filter(|head| head.is_signed_by(key))
        .ok_or_else(|| {
            DbError::Other(anyhow::anyhow!(
                "the audit chain's head is missing or not signed with the audit key: \
                 the log was changed outside the service (see GET /api/v1/audit/verify)"
            ))
        })?;
    let (mut seq, mut prev_hash) = (head.seq, head.hash);
    // Stored timestamps keep microseconds; hash what will be read back.
    let at = now.trunc_subsecs(6);
    for change in changes {
        seq += 1;
        let mut row = AuditRow {
            seq,
            id: Uuid::now_v7(),
            at,
            actor: actor.sub.clone(),
            action: change.action.to_owned(),
            entity: change.entity.to_owned(),
            entity_id: change.entity_id,
            payload: change.payload.to_string(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.keyed_hash(key);
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::seq.eq(row.seq),
                audit_log::id.eq(DbId(row.id)),
                audit_log::at.eq(DbTime(row.at)),
                audit_log::actor.eq(&row.actor),
                audit_log::action.eq(&row.action),
                audit_log::entity.eq(&row.entity),
                audit_log::entity_id.eq(&row.entity_id),
                audit_log::payload.eq(&row.payload),
                audit_log::prev_hash.eq(&row.prev_hash),
                audit_log::hash.eq(&row.hash),
            ))
            .execute(conn)?;
        prev_hash = row.hash;
    }
    store_head(
        conn,
        &ChainHead::signed(seq, prev_hash, head.keyed_from, key),
    )
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
}

/// One page of rows in chain order, after sequence number `after`.
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    let mut query = super::page_after!(
        audit_log::table,
        audit_log::seq,
        Row::as_select(),
        after,
        limit
    );
    if let Some(entity) = &filter.entity {
        query = query.filter(audit_log::entity.eq(entity.clone()));
    }
    if let Some(entity_id) = &filter.entity_id {
        query = query.filter(audit_log::entity_id.eq(entity_id.clone()));
    }
    Ok(query.load::<Row>(conn)?.into_iter().map(to_row).collect())
}

/// Re-walks the whole chain in batches against its head, read first (rows
/// appended meanwhile are checked by their keyed hashes).
pub fn verify(conn: &mut DbConnection, key: &AuditKey) -> Result<ChainWalk, DbError> {
    let mut walk = ChainWalk::new(key.clone(), head(conn)?);
    let mut after = 0_i64;
    loop {
        let batch: Vec<Row> = audit_log::table
            .select(Row::as_select())
            .filter(audit_log::seq.gt(after))
            .order(audit_log::seq)
            .limit(VERIFY_BATCH)
            .load(conn)?;
        let Some(last) = batch.last() else {
            return Ok(walk.finish());
        };
        after = last.seq;
        for row in batch {
            walk.step(&to_row(row));
        }
    }
}
