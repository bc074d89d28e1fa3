//! `/api/v1/audit`: the audit log in chain order, and a re-walk of the chain
//! that says whether any row was altered, removed or reordered.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{Page, PageParams, PageRequest};
use crate::app::AppState;
use crate::auth::{Admin, Authorized};
use crate::db::audit::{self, AuditFilter};
use crate::domain::audit::AuditRow;
use crate::error::ApiError;

/// One recorded change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    /// Position in the chain, from 1.
    #[schema(example = 1)]
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The `sub` of whoever made the change.
    #[schema(example = "analyst-1")]
    pub actor: String,
    #[schema(example = "model.create")]
    pub action: String,
    #[schema(example = "model")]
    pub entity: String,
    pub entity_id: String,
    /// The entity as recorded. The hash covers the stored text, which is
    /// JSON; should a row have been tampered into something else, the raw
    /// text is shown as a string.
    pub payload: Value,
    /// The hash of the previous row (64 zeros for the first).
    pub prev_hash: String,
    /// `hex(HMAC-SHA256(audit key, prev_hash ‖ this row))`; rows written
    /// before the chain was keyed keep `hex(SHA-256(prev_hash ‖ this row))`.
    pub hash: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        let payload = serde_json::from_str(&row.payload).unwrap_or(Value::String(row.payload));
        Self {
            id: row.id,
            seq: row.seq,
            at: row.at,
            actor: row.actor,
            action: row.action,
            entity: row.entity,
            entity_id: row.entity_id,
            payload,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// The outcome of re-walking the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainReport {
    /// Whether every row follows the one before, hashes as recorded (keyed
    /// with the audit key), and the chain ends where its signed head says.
    pub ok: bool,
    /// How many rows were checked.
    pub rows: u64,
    /// The id of the first row that does not fit: altered itself, or the
    /// first after a removed or altered row; null when the rows at fault
    /// are missing (removed from the end) or the head is.
    pub first_broken: Option<Uuid>,
    /// The seq of the first row that does not fit, or of the first missing
    /// one.
    #[schema(example = 42)]
    pub first_broken_seq: Option<i64>,
    /// Why, in words.
    #[schema(example = "its hash is not the keyed hash of its content: the row was changed")]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only changes to this kind of entity, e.g. `model`.
    entity: Option<String>,
    /// Only changes to the entity with this id.
    entity_id: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    summary = "The audit log, oldest first",
    params(ListParams, PageParams),
    responses(
        (status = 200, body = Page<AuditEntry>),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    params: web::Query<ListParams>,
    page: PageRequest<i64>,
) -> Result<HttpResponse, ApiError> {
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let filter = AuditFilter {
        entity: given(&params.entity),
        entity_id: given(&params.entity_id),
    };
    let rows = state
        .db
        .read(move |conn| audit::list(conn, &filter, page.after, page.fetch()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |row| row.seq, AuditEntry::from)))
}

#[utoipa::path(
    get, path = "/api/v1/audit/verify", tag = "audit",
    summary = "Re-walk the audit chain",
    description = "Recomputes every row's keyed hash in chain order, compares the end with the chain's signed head, and names the first row that does not fit (or the first missing one) and why.",
    responses(
        (status = 200, body = ChainReport),
    ),
)]
pub async fn verify(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
) -> Result<HttpResponse, ApiError> {
    let key = state.workflow.audit_key().clone();
    let walk = state.db.read(move |conn| audit::verify(conn, &key)).await?;
    let broken = walk.first_broken;
    Ok(HttpResponse::Ok().json(ChainReport {
        ok: broken.is_none(),
        rows: walk.rows,
        first_broken: broken.as_ref().and_then(|b| b.id),
        first_broken_seq: broken.as_ref().map(|b| b.seq),
        reason: broken.map(|b| b.reason),
    }))
}
