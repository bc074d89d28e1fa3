//! Evidence records with their models, responses and artifacts. Nothing here
//! updates or deletes a row: evidence is filed once and only appended to.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::{evidence, evidence_artifacts, evidence_models, evidence_responses};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError, group, or_taken};
use crate::domain::evidence::{
    Artifact, Evidence, EvidenceResponse, FileName, NewEvidence, NewResponse, Sha256Digest,
};
use crate::domain::text::Line;

/// Bytes already in the artifact store, to be filed with evidence.
pub struct NewArtifact {
    pub sha256: Sha256Digest,
    pub size: u64,
    pub filename: FileName,
    pub content_type: String,
}

/// What filing an artifact did.
pub enum Filed {
    Created(Artifact),
    /// The evidence already had these bytes: the earlier record stands.
    Existing(Artifact),
}

#[derive(Default)]
pub struct EvidenceFilter {
    pub model_id: Option<Uuid>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = evidence)]
struct Row {
    id: DbId,
    title: String,
    source: String,
    kind: String,
    observed_at: DbTime,
    firmware: Option<String>,
    summary: String,
    severity: String,
    findings: String,
    refs: String,
    created_by: String,
    created_at: DbTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = evidence_responses)]
struct ResponseRow {
    id: DbId,
    evidence_id: DbId,
    kind: String,
    author: String,
    received_at: DbTime,
    text: String,
    supersedes: Option<DbId>,
    created_by: String,
    created_at: DbTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = evidence_artifacts)]
struct ArtifactRow {
    evidence_id: DbId,
    sha256: String,
    size: i64,
    filename: String,
    content_type: String,
    uploaded_by: String,
    uploaded_at: DbTime,
}

/// Files new evidence, by `created_by`, about models that exist.
pub fn insert(
    conn: &mut DbConnection,
    new: &NewEvidence,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<Evidence, DbError> {
    let wanted: Vec<DbId> = new.model_ids.as_slice().iter().copied().map(DbId).collect();
    let id = Uuid::now_v7();
    diesel::insert_into(evidence::table)
        .values((
            evidence::id.eq(DbId(id)),
            evidence::title.eq(new.title.as_str()),
            evidence::source.eq(new.source.as_str()),
            evidence::kind.eq(new.kind.as_str()),
            evidence::observed_at.eq(DbTime(new.observed_at)),
            evidence::firmware.eq(new.firmware.as_ref().map(Line::as_str)),
            evidence::summary.eq(new.summary.as_str()),
            evidence::severity.eq(new.severity.as_str()),
            evidence::findings.eq(to_json(&new.findings)?),
            evidence::refs.eq(to_json(&new.references)?),
            evidence::created_by.eq(created_by),
            evidence::created_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    for (position, model_id) in wanted.into_iter().enumerate() {
        diesel::insert_into(evidence_models::table)
            .values((
                evidence_models::evidence_id.eq(DbId(id)),
                evidence_models::model_id.eq(model_id),
                evidence_models::position.eq(position as i32),
            ))
            .execute(conn)?;
    }
    get(conn, id)
}

pub fn exists(conn: &mut DbConnection, id: Uuid) -> Result<bool, DbError> {
    Ok(!existing(conn, &[id])?.is_empty())
}

/// Which of `ids` name an evidence record.
pub fn existing(conn: &mut DbConnection, ids: &[Uuid]) -> Result<HashSet<Uuid>, DbError> {
    super::existing_ids!(conn, evidence, ids)
}

pub fn get(conn: &mut DbConnection, id: Uuid) -> Result<Evidence, DbError> {
    let row = evidence::table
        .find(DbId(id))
        .select(Row::as_select())
        .first(conn)?;
    let mut children = children_of(conn, &[DbId(id)])?;
    assemble(row, &mut children)
}

/// One page in id (filing) order, starting after `after`.
pub fn list(
    conn: &mut DbConnection,
    filter: &EvidenceFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Evidence>, DbError> {
    let mut query = super::page_after!(evidence, Row::as_select(), after.map(DbId), limit);
    if let Some(model_id) = filter.model_id {
        let about_model = evidence_models::table
            .select(evidence_models::evidence_id)
            .filter(evidence_models::model_id.eq(DbId(model_id)));
        query = query.filter(evidence::id.eq_any(about_model));
    }
    let rows: Vec<Row> = query.load(conn)?;
    let ids: Vec<DbId> = rows.iter().map(|r| r.id).collect();
    let mut children = children_of(conn, &ids)?;
    rows.into_iter()
        .map(|row| assemble(row, &mut children))
        .collect()
}

/// Appends a response, by `created_by`, to evidence that exists.
pub fn respond(
    conn: &mut DbConnection,
    evidence_id: Uuid,
    new: &NewResponse,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<EvidenceResponse, DbError> {
    let id = Uuid::now_v7();
    diesel::insert_into(evidence_responses::table)
        .values((
            evidence_responses::id.eq(DbId(id)),
            evidence_responses::evidence_id.eq(DbId(evidence_id)),
            evidence_responses::kind.eq(new.kind.as_str()),
            evidence_responses::author.eq(new.author.as_str()),
            evidence_responses::received_at.eq(DbTime(new.received_at)),
            evidence_responses::text.eq(new.text.as_str()),
            evidence_responses::supersedes.eq(new.supersedes.map(DbId)),
            evidence_responses::created_by.eq(created_by),
            evidence_responses::created_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    let row = evidence_responses::table
        .find(DbId(id))
        .select(ResponseRow::as_select())
        .first(conn)?;
    to_response(row)
}

/// The artifact with this digest filed with evidence `evidence_id`.
pub fn artifact(
    conn: &mut DbConnection,
    evidence_id: Uuid,
    sha256: &Sha256Digest,
) -> Result<Artifact, DbError> {
    let row = evidence_artifacts::table
        .filter(evidence_artifacts::evidence_id.eq(DbId(evidence_id)))
        .filter(evidence_artifacts::sha256.eq(sha256.to_hex()))
        .select(ArtifactRow::as_select())
        .first(conn)?;
    Ok(to_artifact(row))
}

/// Files stored bytes, uploaded by `uploaded_by`, with evidence that
/// exists. The same bytes filed twice with the same evidence keep their
/// first record.
pub fn add_artifact(
    conn: &mut DbConnection,
    evidence_id: Uuid,
    new: &NewArtifact,
    uploaded_by: &str,
    now: DateTime<Utc>,
) -> Result<Filed, DbError> {
    match artifact(conn, evidence_id, &new.sha256) {
        Ok(existing) => return Ok(Filed::Existing(existing)),
        Err(DbError::NotFound) => {}
        Err(other) => return Err(other),
    }
    let size = i64::try_from(new.size).map_err(|e| DbError::Other(e.into()))?;
    let inserted = diesel::insert_into(evidence_artifacts::table)
        .values((
            evidence_artifacts::evidence_id.eq(DbId(evidence_id)),
            evidence_artifacts::sha256.eq(new.sha256.to_hex()),
            evidence_artifacts::size.eq(size),
            evidence_artifacts::filename.eq(new.filename.as_str()),
            evidence_artifacts::content_type.eq(&new.content_type),
            evidence_artifacts::uploaded_by.eq(uploaded_by),
            evidence_artifacts::uploaded_at.eq(DbTime(now)),
        ))
        .execute(conn);
    // The same bytes may have been filed by a concurrent request a moment ago.
    or_taken(inserted, || {
        DbError::Conflict(
            "these bytes are being filed with this evidence by another request; retry to get its record".into(),
        )
    })?;
    artifact(conn, evidence_id, &new.sha256).map(Filed::Created)
}

#[derive(Default)]
struct Children {
    model_ids: Vec<Uuid>,
    responses: Vec<EvidenceResponse>,
    artifacts: Vec<Artifact>,
    superseded_by: Vec<Uuid>,
}

/// What belongs to the given evidence records: four queries for any number.
fn children_of(conn: &mut DbConnection, ids: &[DbId]) -> Result<HashMap<DbId, Children>, DbError> {
    let mut children: HashMap<DbId, Children> = HashMap::new();
    if ids.is_empty() {
        return Ok(children);
    }
    let model_rows: Vec<(DbId, DbId)> = evidence_models::table
        .select((evidence_models::evidence_id, evidence_models::model_id))
        .filter(evidence_models::evidence_id.eq_any(ids))
        .order((evidence_models::evidence_id, evidence_models::position))
        .load(conn)?;
    for (id, model_ids) in group(model_rows) {
        children.entry(id).or_default().model_ids = model_ids.into_iter().map(|m| m.0).collect();
    }
    // UUIDv7 ids sort by creation: oldest response first.
    let response_rows: Vec<ResponseRow> = evidence_responses::table
        .select(ResponseRow::as_select())
        .filter(evidence_responses::evidence_id.eq_any(ids))
        .order((evidence_responses::evidence_id, evidence_responses::id))
        .load(conn)?;
    for row in response_rows {
        let response = to_response(row)?;
        children
            .entry(DbId(response.evidence_id))
            .or_default()
            .responses
            .push(response);
    }
    let artifact_rows: Vec<ArtifactRow> = evidence_artifacts::table
        .select(ArtifactRow::as_select())
        .filter(evidence_artifacts::evidence_id.eq_any(ids))
        .order((
            evidence_artifacts::evidence_id,
            evidence_artifacts::uploaded_at,
            evidence_artifacts::sha256,
        ))
        .load(conn)?;
    for row in artifact_rows {
        children
            .entry(row.evidence_id)
            .or_default()
            .artifacts
            .push(to_artifact(row));
    }
    let superseding: Vec<(Option<DbId>, DbId)> = evidence_responses::table
        .select((
            evidence_responses::supersedes,
            evidence_responses::evidence_id,
        ))
        .filter(evidence_responses::supersedes.eq_any(ids))
        .order((evidence_responses::supersedes, evidence_responses::id))
        .load(conn)?;
    for (superseded, by) in superseding {
        let Some(superseded) = superseded else {
            continue;
        };
        let list = &mut children.entry(superseded).or_default().superseded_by;
        // Two corrections filed with one record name it once.
        if !list.contains(&by.0) {
            list.push(by.0);
        }
    }
    Ok(children)
}

fn assemble(row: Row, children: &mut HashMap<DbId, Children>) -> Result<Evidence, DbError> {
    let Children {
        model_ids,
        responses,
        artifacts,
        superseded_by,
    } = children.remove(&row.id).unwrap_or_default();
    Ok(Evidence {
        id: row.id.0,
        model_ids,
        title: row.title,
        source: row.source,
        kind: stored("evidence.kind", &row.kind)?,
        observed_at: row.observed_at.0,
        firmware: row.firmware,
        summary: row.summary,
        severity: stored("evidence.severity", &row.severity)?,
        findings: from_json("evidence.findings", &row.findings)?,
        references: from_json("evidence.refs", &row.refs)?,
        responses,
        artifacts,
        superseded_by,
        created_by: row.created_by,
        created_at: row.created_at.0,
    })
}

fn to_response(row: ResponseRow) -> Result<EvidenceResponse, DbError> {
    Ok(EvidenceResponse {
        id: row.id.0,
        evidence_id: row.evidence_id.0,
        kind: stored("evidence_responses.kind", &row.kind)?,
        author: row.author,
        received_at: row.received_at.0,
        text: row.text,
        supersedes: row.supersedes.map(|s| s.0),
        created_by: row.created_by,
        created_at: row.created_at.0,
    })
}

fn to_artifact(row: ArtifactRow) -> Artifact {
    Artifact {
        sha256: row.sha256,
        size: row.size,
        filename: row.filename,
        content_type: row.content_type,
        uploaded_by: row.uploaded_by,
        uploaded_at: row.uploaded_at.0,
    }
}

/// Only valid values are ever written; one that does not parse means the
/// database was changed behind the service's back.
fn stored<T: FromStr<Err = String>>(column: &str, raw: &str) -> Result<T, DbError> {
    raw.parse()
        .map_err(|e| DbError::Other(anyhow::anyhow!("{column} holds `{raw}`: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, raw: &str) -> Result<T, DbError> {
    serde_json::from_str(raw)
        .map_err(|e| DbError::Other(anyhow::anyhow!("{column} is not what was written: {e}")))
}

fn to_json<T: Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Other(e.into()))
}
