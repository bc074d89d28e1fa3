//! Advisories and their revisions. Every lifecycle step loads the advisory,
//! asks the domain's state machine whether the step is allowed, and writes
//! the outcome guarded by the version it read, so that two concurrent steps
//! cannot both succeed.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Change};
use super::clearance::{self, Cause, StatusChange};
use super::outbox::{self, FanOut};
use super::schema::{
    advisories, advisory_decisions, advisory_evidence, advisory_revisions, advisory_supersedes,
    evidence, models,
};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};
use crate::domain::advisory::{
    Action, AdvisoryContent, AdvisoryState, Audience, ContentPatch, DecisionSpec, Lifecycle, Stage,
    Tlp, may_approve, reference,
};
use crate::domain::audit::Actor;
use crate::domain::clearance::Decision;
use crate::domain::firmware::FirmwareRange;
use crate::domain::mail::MailKind;
use crate::domain::severity::Severity;
use crate::domain::text::{Line, Prose};
use crate::error::FieldError;

/// An advisory as stored, with its published and its working revision.
#[derive(Debug, Clone)]
pub struct AdvisoryRecord {
    pub id: Uuid,
    pub reference: Option<String>,
    pub lifecycle: Lifecycle,
    pub author: String,
    pub author_name: String,
    /// The revision in force (the latest published), if any.
    pub current: Option<RevisionRecord>,
    /// The revision being written: the first one, or an amendment.
    pub working: Option<RevisionRecord>,
    pub withdrawn: Option<Withdrawal>,
    pub superseded_by: Option<Uuid>,
    pub superseded_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RevisionRecord {
    pub number: i32,
    pub stage: Stage,
    pub content: AdvisoryContent,
    /// The name of each model the decisions name.
    pub model_names: HashMap<Uuid, String>,
    pub author: String,
    /// Everyone who wrote this revision (its author and later editors).
    pub contributors: Vec<String>,
    pub rejection_reason: Option<String>,
    pub submitted: Option<(String, DateTime<Utc>)>,
    pub approved: Option<(String, DateTime<Utc>)>,
    pub published: Option<(String, DateTime<Utc>)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct AdvisoryFilter {
    pub state: Option<AdvisoryState>,
    pub model_id: Option<Uuid>,
    /// Only what readers may see: published, withdrawn or superseded.
    pub public_only: bool,
}

type AdvisoryRow = (
    DbId,
    Option<String>,
    String,
    i32,
    Option<i32>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<DbTime>,
    Option<DbId>,
    Option<DbTime>,
    i64,
    DbTime,
    DbTime,
);

type AdvisoryColumns = (
    advisories::id,
    advisories::reference,
    advisories::state,
    advisories::current_revision,
    advisories::working_revision,
    advisories::author,
    advisories::author_name,
    advisories::withdrawn_reason,
    advisories::withdrawn_by,
    advisories::withdrawn_at,
    advisories::superseded_by,
    advisories::superseded_at,
    advisories::version,
    advisories::created_at,
    advisories::updated_at,
);

const ADVISORY_COLUMNS: AdvisoryColumns = (
    advisories::id,
    advisories::reference,
    advisories::state,
    advisories::current_revision,
    advisories::working_revision,
    advisories::author,
    advisories::author_name,
    advisories::withdrawn_reason,
    advisories::withdrawn_by,
    advisories::withdrawn_at,
    advisories::superseded_by,
    advisories::superseded_at,
    advisories::version,
    advisories::created_at,
    advisories::updated_at,
);

type RevisionRow = (
    (DbId, i32, String, String, String, String, String, String),
    (
        bool,
        String,
        bool,
        Option<DbTime>,
        Option<DbTime>,
        String,
        String,
    ),
    (
        Option<String>,
        Option<String>,
        Option<DbTime>,
        Option<String>,
        Option<DbTime>,
        Option<String>,
        Option<DbTime>,
        DbTime,
        DbTime,
    ),
);

/// advisory, revision, model, model name, decision, conditions, firmware.
type DecisionRow = (
    DbId,
    i32,
    DbId,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn stored<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> DbError {
    let what = what.to_owned();
    move |e| DbError::Other(anyhow::anyhow!("stored {what} is invalid: {e}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Other(e.into()))
}

/// Creates a draft advisory (revision 1) written by `actor`.
pub fn create(
    conn: &mut DbConnection,
    content: AdvisoryContent,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<AdvisoryRecord, DbError> {
    let id = Uuid::now_v7();
    check_content(conn, &content, id)?;
    diesel::insert_into(advisories::table)
        .values((
            advisories::id.eq(DbId(id)),
            advisories::state.eq(AdvisoryState::Draft.as_str()),
            advisories::current_revision.eq(0),
            advisories::working_revision.eq(Some(1)),
            advisories::author.eq(&actor.sub),
            advisories::author_name.eq(&actor.name),
            advisories::version.eq(1_i64),
            advisories::created_at.eq(DbTime(now)),
            advisories::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    insert_revision(conn, id, 1, &content, actor, now)?;
    let record = get(conn, id)?;
    audit::append(
        conn,
        actor,
        vec![Change::new(
            "advisory.create",
            "advisory",
            id,
            json!({"revision": 1, "content": content_json(&content)}),
        )],
        now,
    )?;
    Ok(record)
}

/// Changes the working draft, if the advisory is still at `expected_version`.
pub fn edit(
    conn: &mut DbConnection,
    id: Uuid,
    patch: ContentPatch,
    expected_version: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<AdvisoryRecord, DbError> {
    let record = get(conn, id)?;
    if record.version != expected_version {
        return Err(DbError::Stale);
    }
    let lifecycle = allowed(&record, Action::Edit)?;
    let working = record.working.as_ref().ok_or(DbError::NotFound)?;
    let content = patch.apply(working.content.clone());
    check_content(conn, &content, id)?;
    let mut contributors = working.contributors.clone();
    if !contributors.contains(&actor.sub) {
        contributors.push(actor.sub.clone());
    }
    delete_children(conn, id, working.number)?;
    update_revision_content(conn, id, working.number, &content, &contributors, now)?;
    insert_children(conn, id, working.number, &content)?;
    advance(conn, &record, lifecycle, now)?;
    let updated = get(conn, id)?;
    audit::append(
        conn,
        actor,
        vec![Change::new(
            "advisory.edit",
            "advisory",
            id,
            json!({"revision": working.number, "content": content_json(&content)}),
        )],
        now,
    )?;
    Ok(updated)
}

/// Submits, rejects (with a reason), approves, amends or withdraws (with a
/// reason). Publishing has its own function. Returns the advisory, the
/// clearance changes, and the models whose lookup answer changed.
pub fn step(
    conn: &mut DbConnection,
    id: Uuid,
    action: Action,
    reason: Option<&Prose>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(AdvisoryRecord, Vec<StatusChange>, Vec<Uuid>), DbError> {
    let record = get(conn, id)?;
    let lifecycle = allowed(&record, action)?;
    let mut changes = Vec::new();
    let mut decided = Vec::new();
    match action {
        Action::Submit | Action::Reject | Action::Approve => {
            let working = record.working.as_ref().ok_or(DbError::NotFound)?;
            if action == Action::Approve
                && !may_approve(&actor.sub, &record.author, &working.contributors)
            {
                return Err(DbError::Refused(
                    "two-person rule: an advisory cannot be approved by its author or by anyone who wrote this revision"
                        .into(),
                ));
            }
            let stage = lifecycle.working.unwrap_or(Stage::Draft);
            let target = advisory_revisions::table
                .filter(advisory_revisions::advisory_id.eq(DbId(id)))
                .filter(advisory_revisions::revision.eq(working.number));
            let base = (
                advisory_revisions::stage.eq(stage.as_str()),
                advisory_revisions::updated_at.eq(DbTime(now)),
            );
            let by = Some(actor.sub.as_str());
            let at = Some(DbTime(now));
            match action {
                Action::Submit => diesel::update(target)
                    .set((
                        base,
                        advisory_revisions::submitted_by.eq(by),
                        advisory_revisions::submitted_at.eq(at),
                        advisory_revisions::rejection_reason.eq(None::<String>),
                    ))
                    .execute(conn)?,
                Action::Reject => diesel::update(target)
                    .set((
                        base,
                        advisory_revisions::rejection_reason.eq(reason.map(Prose::as_str)),
                    ))
                    .execute(conn)?,
                _ => diesel::update(target)
                    .set((
                        base,
                        advisory_revisions::approved_by.eq(by),
                        advisory_revisions::approved_at.eq(at),
                    ))
                    .execute(conn)?,
            };
            advance(conn, &record, lifecycle, now)?;
        }
        Action::Amend => {
            let current = record.current.as_ref().ok_or(DbError::NotFound)?;
            let number = current.number + 1;
            // The supersessions already happened with the revision in force.
            let content = AdvisoryContent {
                supersedes: Vec::new(),
                ..current.content.clone()
            };
            insert_revision(conn, id, number, &content, actor, now)?;
            advance_to_revision(conn, &record, lifecycle, Some(number), now)?;
        }
        Action::Withdraw => {
            discard_working(conn, &record)?;
            let updated = diesel::update(
                advisories::table
                    .filter(advisories::id.eq(DbId(id)))
                    .filter(advisories::version.eq(record.version)),
            )
            .set((
                advisories::state.eq(AdvisoryState::Withdrawn.as_str()),
                advisories::working_revision.eq(None::<i32>),
                advisories::withdrawn_reason.eq(reason.map(Prose::as_str)),
                advisories::withdrawn_by.eq(Some(&actor.sub)),
                advisories::withdrawn_at.eq(Some(DbTime(now))),
                advisories::version.eq(record.version + 1),
                advisories::updated_at.eq(DbTime(now)),
            ))
            .execute(conn)?;
            if updated == 0 {
                return Err(changed_meanwhile());
            }
            decided = decided_by_current(&record);
            let cause = Cause {
                advisory_id: Some(id),
                review_id: None,
            };
            changes = clearance::rederive(conn, &decided, cause, now)?;
            super::changes::record(conn, &decided)?;
            if let Some(current) = &record.current {
                outbox::fan_out(conn, &mail_plan(id, current, MailKind::Withdrawn), now)?;
            }
        }
        Action::Edit | Action::Publish | Action::Supersede => {
            return Err(DbError::Other(anyhow::anyhow!(
                "{action} is not a simple step"
            )));
        }
    }
    let updated = get(conn, id)?;
    let mut entries = vec![Change::new(
        match action {
            Action::Submit => "advisory.submit",
            Action::Reject => "advisory.reject",
            Action::Approve => "advisory.approve",
            Action::Amend => "advisory.amend",
            _ => "advisory.withdraw",
        },
        "advisory",
        id,
        json!({
            "state": updated.lifecycle.state,
            "working_stage": updated.lifecycle.working,
            "revision": updated.working.as_ref().or(updated.current.as_ref()).map(|r| r.number),
            "reason": reason.map(Prose::as_str),
        }),
    )];
    for change in &changes {
        entries.push(change.audit()?);
    }
    audit::append(conn, actor, entries, now)?;
    Ok((updated, changes, decided))
}

/// Publishes the approved working revision: assigns the reference on first
/// publication, supersedes the advisories it names, and re-derives the
/// clearance of every model concerned — all in the caller's transaction.
/// Returns the advisory, the clearance changes, and the models concerned.
pub fn publish(
    conn: &mut DbConnection,
    id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(AdvisoryRecord, Vec<StatusChange>, Vec<Uuid>), DbError> {
    let record = get(conn, id)?;
    let lifecycle = allowed(&record, Action::Publish)?;
    let working = record.working.as_ref().ok_or(DbError::NotFound)?;
    let problems = working.content.publication_problems();
    if !problems.is_empty() {
        return Err(DbError::Invalid(
            problems
                .into_iter()
                .map(|(field, message)| FieldError::new(field, message))
                .collect(),
        ));
    }
    let mut superseded = Vec::new();
    for target in &working.content.supersedes {
        let other = get(conn, *target)?;
        let next = other
            .lifecycle
            .apply(Action::Supersede)
            .map_err(|e| DbError::WrongState {
                detail: format!(
                    "advisory {} cannot be superseded: {e}",
                    other.reference.as_deref().unwrap_or("(unpublished)")
                ),
                current_state: e.current.to_owned(),
            })?;
        discard_working(conn, &other)?;
        let updated = diesel::update(
            advisories::table
                .filter(advisories::id.eq(DbId(other.id)))
                .filter(advisories::version.eq(other.version)),
        )
        .set((
            advisories::state.eq(next.state.as_str()),
            advisories::working_revision.eq(None::<i32>),
            advisories::superseded_by.eq(Some(DbId(id))),
            advisories::superseded_at.eq(Some(DbTime(now))),
            advisories::version.eq(other.version + 1),
            advisories::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Err(changed_meanwhile());
        }
        superseded.push(other);
    }
    let reference = match &record.reference {
        Some(existing) => existing.clone(),
        None => next_reference(conn, now.year())?,
    };
    diesel::update(
        advisory_revisions::table
            .filter(advisory_revisions::advisory_id.eq(DbId(id)))
            .filter(advisory_revisions::revision.eq(working.number)),
    )
    .set((
        advisory_revisions::stage.eq(Stage::Published.as_str()),
        advisory_revisions::published_by.eq(Some(&actor.sub)),
        advisory_revisions::published_at.eq(Some(DbTime(now))),
        advisory_revisions::effective_at
            .eq(Some(DbTime(working.content.effective_at.unwrap_or(now)))),
        advisory_revisions::updated_at.eq(DbTime(now)),
    ))
    .execute(conn)?;
    let updated = diesel::update(
        advisories::table
            .filter(advisories::id.eq(DbId(id)))
            .filter(advisories::version.eq(record.version)),
    )
    .set((
        advisories::state.eq(lifecycle.state.as_str()),
        advisories::reference.eq(Some(&reference)),
        advisories::current_revision.eq(working.number),
        advisories::working_revision.eq(None::<i32>),
        advisories::version.eq(record.version + 1),
        advisories::updated_at.eq(DbTime(now)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(changed_meanwhile());
    }
    // Models the new revision decides on, those the revision it replaces
    // decided on (an amendment may drop one), and those of the superseded.
    let mut concerned: Vec<Uuid> = working
        .content
        .decisions
        .iter()
        .map(|d| d.model_id)
        .collect();
    for old in std::iter::once(&record).chain(&superseded) {
        concerned.extend(decided_by_current(old));
    }
    let cause = Cause {
        advisory_id: Some(id),
        review_id: None,
    };
    let changes = clearance::rederive(conn, &concerned, cause, now)?;
    // Conditions and firmware ranges change the lookup's answer even where
    // the status stays: every model concerned is logged, not just those.
    super::changes::record(conn, &concerned)?;
    let kind = if record.current.is_some() {
        MailKind::Amended
    } else {
        MailKind::Published
    };
    let queued = outbox::fan_out(conn, &mail_plan(id, working, kind), now)?;
    let published = get(conn, id)?;
    let mut entries = vec![Change::new(
        "advisory.publish",
        "advisory",
        id,
        json!({"reference": reference, "revision": working.number, "mail_queued": queued}),
    )];
    for other in &superseded {
        entries.push(Change::new(
            "advisory.supersede",
            "advisory",
            other.id,
            json!({"superseded_by": id, "reference": other.reference}),
        ));
    }
    for change in &changes {
        entries.push(change.audit()?);
    }
    audit::append(conn, actor, entries, now)?;
    Ok((published, changes, concerned))
}

/// Who gets the mail about `revision` of advisory `id`.
fn mail_plan(id: Uuid, revision: &RevisionRecord, kind: MailKind) -> FanOut {
    let content = &revision.content;
    FanOut {
        advisory_id: id,
        revision: revision.number,
        kind,
        all_personnel: content.audience.all_personnel,
        units: content
            .audience
            .units
            .iter()
            .map(ToString::to_string)
            .collect(),
        // Subscribers need no clearance to read: public (TLP:CLEAR) only.
        to_subscribers: content.tlp == Tlp::Clear,
        severity_rank: content.severity.rank(),
    }
}

fn changed_meanwhile() -> DbError {
    DbError::Conflict("the advisory changed while this request ran; read it again and retry".into())
}

/// The lifecycle after `action`, or a conflict naming the current state.
fn allowed(record: &AdvisoryRecord, action: Action) -> Result<Lifecycle, DbError> {
    record
        .lifecycle
        .apply(action)
        .map_err(|e| DbError::WrongState {
            detail: e.to_string(),
            current_state: e.current.to_owned(),
        })
}

/// Moves the advisory to `lifecycle`, keeping its working revision.
fn advance(
    conn: &mut DbConnection,
    record: &AdvisoryRecord,
    lifecycle: Lifecycle,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let working = record.working.as_ref().map(|w| w.number);
    advance_to_revision(conn, record, lifecycle, working, now)
}

fn advance_to_revision(
    conn: &mut DbConnection,
    record: &AdvisoryRecord,
    lifecycle: Lifecycle,
    working: Option<i32>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let updated = diesel::update(
        advisories::table
            .filter(advisories::id.eq(DbId(record.id)))
            .filter(advisories::version.eq(record.version)),
    )
    .set((
        advisories::state.eq(lifecycle.state.as_str()),
        advisories::working_revision.eq(working),
        advisories::version.eq(record.version + 1),
        advisories::updated_at.eq(DbTime(now)),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(changed_meanwhile());
    }
    Ok(())
}

/// Drops an unpublished amendment of an advisory leaving force (the audit
/// log keeps what it said).
fn discard_working(conn: &mut DbConnection, record: &AdvisoryRecord) -> Result<(), DbError> {
    if let (Some(working), Some(_)) = (&record.working, &record.current) {
        delete_children(conn, record.id, working.number)?;
        diesel::delete(
            advisory_revisions::table
                .filter(advisory_revisions::advisory_id.eq(DbId(record.id)))
                .filter(advisory_revisions::revision.eq(working.number)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// The models the advisory's revision in force decides on.
fn decided_by_current(record: &AdvisoryRecord) -> Vec<Uuid> {
    record
        .current
        .iter()
        .flat_map(|c| c.content.decisions.iter().map(|d| d.model_id))
        .collect()
}

/// The next reference number of `year`, taken in the caller's transaction:
/// the counter row stays locked until it commits, and a rollback returns the
/// number, so references have neither gaps nor duplicates.
fn next_reference(conn: &mut DbConnection, year: i32) -> Result<String, DbError> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        last: i32,
    }
    // The multi-backend connection has no upsert; both backends speak this.
    let upsert = diesel::sql_query(
        "INSERT INTO reference_counters (year, last) VALUES ($1, 1) \
         ON CONFLICT (year) DO UPDATE SET last = reference_counters.last + 1 RETURNING last",
    )
    .bind::<diesel::sql_types::Integer, _>(year);
    let taken: Taken = match conn {
        DbConnection::Postgres(pg) => upsert.get_result(pg)?,
        DbConnection::Sqlite(sqlite) => upsert.get_result(sqlite)?,
    };
    Ok(reference(year, taken.last))
}

/// Checks that everything the content names exists.
fn check_content(
    conn: &mut DbConnection,
    content: &AdvisoryContent,
    own_id: Uuid,
) -> Result<(), DbError> {
    let mut errors: Vec<FieldError> = content
        .problems(Some(own_id))
        .into_iter()
        .map(|(field, message)| FieldError::new(field, message))
        .collect();
    let model_ids: Vec<DbId> = content.decisions.iter().map(|d| DbId(d.model_id)).collect();
    let known: Vec<DbId> = models::table
        .filter(models::id.eq_any(&model_ids))
        .select(models::id)
        .load(conn)?;
    unknown(
        &mut errors,
        &model_ids,
        &known,
        |i| format!("decisions[{i}].model_id"),
        "model",
    );
    let evidence_ids: Vec<DbId> = content.evidence_ids.iter().copied().map(DbId).collect();
    let known: Vec<DbId> = evidence::table
        .filter(evidence::id.eq_any(&evidence_ids))
        .select(evidence::id)
        .load(conn)?;
    unknown(
        &mut errors,
        &evidence_ids,
        &known,
        |i| format!("evidence_ids[{i}]"),
        "evidence record",
    );
    // Naming itself is reported by `problems` above.
    let superseded: Vec<DbId> = content.supersedes.iter().copied().map(DbId).collect();
    let mut known: Vec<DbId> = advisories::table
        .filter(advisories::id.eq_any(&superseded))
        .select(advisories::id)
        .load(conn)?;
    known.push(DbId(own_id));
    unknown(
        &mut errors,
        &superseded,
        &known,
        |i| format!("supersedes[{i}]"),
        "advisory",
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DbError::Invalid(errors))
    }
}

/// Adds an error for each of `ids` not among `known`.
fn unknown(
    errors: &mut Vec<FieldError>,
    ids: &[DbId],
    known: &[DbId],
    field: impl Fn(usize) -> String,
    what: &str,
) {
    for (i, id) in ids.iter().enumerate() {
        if !known.contains(id) {
            errors.push(FieldError::new(field(i), format!("no {what} has this id")));
        }
    }
}

fn insert_revision(
    conn: &mut DbConnection,
    id: Uuid,
    number: i32,
    content: &AdvisoryContent,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(advisory_revisions::table)
        .values((
            advisory_revisions::advisory_id.eq(DbId(id)),
            advisory_revisions::revision.eq(number),
            advisory_revisions::stage.eq(Stage::Draft.as_str()),
            advisory_revisions::title.eq(content.title.as_str()),
            advisory_revisions::summary.eq(content.summary.as_str()),
            advisory_revisions::body.eq(&content.body),
            advisory_revisions::severity.eq(content.severity.as_str()),
            advisory_revisions::tlp.eq(content.tlp.as_str()),
            advisory_revisions::audience_all.eq(content.audience.all_personnel),
            advisory_revisions::audience_units.eq(to_json(&content.audience.units)?),
            advisory_revisions::acknowledgement_required.eq(content.acknowledgement_required),
            advisory_revisions::effective_at.eq(content.effective_at.map(DbTime)),
            advisory_revisions::review_due.eq(content.review_due.map(DbTime)),
            advisory_revisions::author.eq(&actor.sub),
            advisory_revisions::contributors.eq(to_json(&[&actor.sub])?),
            advisory_revisions::created_at.eq(DbTime(now)),
            advisory_revisions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    insert_children(conn, id, number, content)
}

fn update_revision_content(
    conn: &mut DbConnection,
    id: Uuid,
    number: i32,
    content: &AdvisoryContent,
    contributors: &[String],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(
        advisory_revisions::table
            .filter(advisory_revisions::advisory_id.eq(DbId(id)))
            .filter(advisory_revisions::revision.eq(number)),
    )
    .set((
        advisory_revisions::title.eq(content.title.as_str()),
        advisory_revisions::summary.eq(content.summary.as_str()),
        advisory_revisions::body.eq(&content.body),
        advisory_revisions::severity.eq(content.severity.as_str()),
        advisory_revisions::tlp.eq(content.tlp.as_str()),
        advisory_revisions::audience_all.eq(content.audience.all_personnel),
        advisory_revisions::audience_units.eq(to_json(&content.audience.units)?),
        advisory_revisions::acknowledgement_required.eq(content.acknowledgement_required),
        advisory_revisions::effective_at.eq(content.effective_at.map(DbTime)),
        advisory_revisions::review_due.eq(content.review_due.map(DbTime)),
        advisory_revisions::contributors.eq(to_json(&contributors)?),
        advisory_revisions::updated_at.eq(DbTime(now)),
    ))
    .execute(conn)?;
    Ok(())
}

/// Deletes a revision's decisions, citations and supersessions.
fn delete_children(conn: &mut DbConnection, id: Uuid, number: i32) -> Result<(), DbError> {
    diesel::delete(
        advisory_decisions::table
            .filter(advisory_decisions::advisory_id.eq(DbId(id)))
            .filter(advisory_decisions::revision.eq(number)),
    )
    .execute(conn)?;
    diesel::delete(
        advisory_evidence::table
            .filter(advisory_evidence::advisory_id.eq(DbId(id)))
            .filter(advisory_evidence::revision.eq(number)),
    )
    .execute(conn)?;
    diesel::delete(
        advisory_supersedes::table
            .filter(advisory_supersedes::advisory_id.eq(DbId(id)))
            .filter(advisory_supersedes::revision.eq(number)),
    )
    .execute(conn)?;
    Ok(())
}

fn insert_children(
    conn: &mut DbConnection,
    id: Uuid,
    number: i32,
    content: &AdvisoryContent,
) -> Result<(), DbError> {
    for (position, decision) in content.decisions.iter().enumerate() {
        diesel::insert_into(advisory_decisions::table)
            .values((
                advisory_decisions::advisory_id.eq(DbId(id)),
                advisory_decisions::revision.eq(number),
                advisory_decisions::position.eq(position as i32),
                advisory_decisions::model_id.eq(DbId(decision.model_id)),
                advisory_decisions::decision.eq(decision.decision.as_str()),
                advisory_decisions::conditions.eq(decision.conditions.as_ref().map(Prose::as_str)),
                advisory_decisions::firmware
                    .eq(decision.firmware.as_ref().map(ToString::to_string)),
            ))
            .execute(conn)?;
    }
    for (position, evidence_id) in content.evidence_ids.iter().enumerate() {
        diesel::insert_into(advisory_evidence::table)
            .values((
                advisory_evidence::advisory_id.eq(DbId(id)),
                advisory_evidence::revision.eq(number),
                advisory_evidence::position.eq(position as i32),
                advisory_evidence::evidence_id.eq(DbId(*evidence_id)),
            ))
            .execute(conn)?;
    }
    for (position, superseded) in content.supersedes.iter().enumerate() {
        diesel::insert_into(advisory_supersedes::table)
            .values((
                advisory_supersedes::advisory_id.eq(DbId(id)),
                advisory_supersedes::revision.eq(number),
                advisory_supersedes::position.eq(position as i32),
                advisory_supersedes::superseded_id.eq(DbId(*superseded)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The content as the audit log records it.
fn content_json(content: &AdvisoryContent) -> serde_json::Value {
    json!({
        "title": content.title,
        "summary": content.summary,
        "body": content.body,
        "severity": content.severity,
        "tlp": content.tlp,
        "audience": content.audience,
        "acknowledgement_required": content.acknowledgement_required,
        "decisions": content.decisions,
        "evidence_ids": content.evidence_ids,
        "supersedes": content.supersedes,
        "effective_at": content.effective_at,
        "review_due": content.review_due,
    })
}

pub fn get(conn: &mut DbConnection, id: Uuid) -> Result<AdvisoryRecord, DbError> {
    let row: AdvisoryRow = advisories::table
        .find(DbId(id))
        .select(ADVISORY_COLUMNS)
        .first(conn)?;
    let mut records = assemble(conn, vec![row])?;
    records.pop().ok_or(DbError::NotFound)
}

/// The advisory with this reference (`CLR-2026-0001`), if any.
pub fn find_by_reference(
    conn: &mut DbConnection,
    reference: &str,
) -> Result<Option<AdvisoryRecord>, DbError> {
    let row: Option<AdvisoryRow> = advisories::table
        .filter(advisories::reference.eq(reference))
        .select(ADVISORY_COLUMNS)
        .first(conn)
        .optional()?;
    match row {
        Some(row) => Ok(assemble(conn, vec![row])?.pop()),
        None => Ok(None),
    }
}

/// One page of advisories in id order, after `after`.
pub fn list(
    conn: &mut DbConnection,
    filter: &AdvisoryFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AdvisoryRecord>, DbError> {
    let mut query = advisories::table
        .select(ADVISORY_COLUMNS)
        .order(advisories::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(advisories::id.gt(DbId(after)));
    }
    if let Some(state) = filter.state {
        query = query.filter(advisories::state.eq(state.as_str()));
    }
    if filter.public_only {
        let public: Vec<&str> = AdvisoryState::ALL
            .iter()
            .filter(|s| s.is_public())
            .map(|s| s.as_str())
            .collect();
        query = query.filter(advisories::state.eq_any(public));
    }
    if let Some(model_id) = filter.model_id {
        // The revision in force counts for everyone; analysts also find
        // advisories whose working revision names the model.
        let naming: Vec<(DbId, i32, i32, Option<i32>)> = advisory_decisions::table
            .inner_join(advisories::table.on(advisories::id.eq(advisory_decisions::advisory_id)))
            .filter(advisory_decisions::model_id.eq(DbId(model_id)))
            .select((
                advisories::id,
                advisory_decisions::revision,
                advisories::current_revision,
                advisories::working_revision,
            ))
            .load(conn)?;
        let ids: Vec<DbId> = naming
            .into_iter()
            .filter(|(_, revision, current, working)| {
                revision == current || (!filter.public_only && Some(*revision) == *working)
            })
            .map(|(id, ..)| id)
            .collect();
        query = query.filter(advisories::id.eq_any(ids));
    }
    let rows: Vec<AdvisoryRow> = query.load(conn)?;
    assemble(conn, rows)
}

/// Every published revision of an advisory, oldest first.
pub fn published_revisions(
    conn: &mut DbConnection,
    id: Uuid,
) -> Result<Vec<RevisionRecord>, DbError> {
    let mut revisions = load_revisions(conn, &[DbId(id)])?;
    let mut published: Vec<RevisionRecord> = revisions
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.stage == Stage::Published)
        .collect();
    published.sort_by_key(|r| r.number);
    Ok(published)
}

fn assemble(
    conn: &mut DbConnection,
    rows: Vec<AdvisoryRow>,
) -> Result<Vec<AdvisoryRecord>, DbError> {
    let ids: Vec<DbId> = rows.iter().map(|r| r.0).collect();
    let mut revisions = load_revisions(conn, &ids)?;
    rows.into_iter()
        .map(|row| {
            let (
                id,
                reference,
                state,
                current_revision,
                working_revision,
                author,
                author_name,
                withdrawn_reason,
                withdrawn_by,
                withdrawn_at,
                superseded_by,
                superseded_at,
                version,
                created_at,
                updated_at,
            ) = row;
            let mut own = revisions.remove(&id.0).unwrap_or_default();
            let mut take = |number: Option<i32>| {
                number.and_then(|n| {
                    own.iter()
                        .position(|r| r.number == n)
                        .map(|i| own.swap_remove(i))
                })
            };
            let current = take((current_revision > 0).then_some(current_revision));
            let working = take(working_revision);
            let state: AdvisoryState = state.parse().map_err(stored("advisory state"))?;
            Ok(AdvisoryRecord {
                id: id.0,
                reference,
                lifecycle: Lifecycle {
                    state,
                    working: working.as_ref().map(|w| w.stage),
                },
                author,
                author_name,
                current,
                working,
                withdrawn: match (withdrawn_reason, withdrawn_by, withdrawn_at) {
                    (Some(reason), Some(by), Some(at)) => Some(Withdrawal {
                        reason,
                        by,
                        at: at.0,
                    }),
                    _ => None,
                },
                superseded_by: superseded_by.map(|s| s.0),
                superseded_at: superseded_at.map(|s| s.0),
                version,
                created_at: created_at.0,
                updated_at: updated_at.0,
            })
        })
        .collect()
}

/// Every revision of the given advisories, with their decisions, citations
/// and supersessions: four queries whatever the count.
fn load_revisions(
    conn: &mut DbConnection,
    ids: &[DbId],
) -> Result<HashMap<Uuid, Vec<RevisionRecord>>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<RevisionRow> = advisory_revisions::table
        .filter(advisory_revisions::advisory_id.eq_any(ids))
        .select((
            (
                advisory_revisions::advisory_id,
                advisory_revisions::revision,
                advisory_revisions::stage,
                advisory_revisions::title,
                advisory_revisions::summary,
                advisory_revisions::body,
                advisory_revisions::severity,
                advisory_revisions::tlp,
            ),
            (
                advisory_revisions::audience_all,
                advisory_revisions::audience_units,
                advisory_revisions::acknowledgement_required,
                advisory_revisions::effective_at,
                advisory_revisions::review_due,
                advisory_revisions::author,
                advisory_revisions::contributors,
            ),
            (
                advisory_revisions::rejection_reason,
                advisory_revisions::submitted_by,
                advisory_revisions::submitted_at,
                advisory_revisions::approved_by,
                advisory_revisions::approved_at,
                advisory_revisions::published_by,
                advisory_revisions::published_at,
                advisory_revisions::created_at,
                advisory_revisions::updated_at,
            ),
        ))
        .order((
            advisory_revisions::advisory_id,
            advisory_revisions::revision,
        ))
        .load(conn)?;
    let decisions: Vec<DecisionRow> = advisory_decisions::table
        .inner_join(models::table)
        .filter(advisory_decisions::advisory_id.eq_any(ids))
        .select((
            advisory_decisions::advisory_id,
            advisory_decisions::revision,
            advisory_decisions::model_id,
            models::name,
            advisory_decisions::decision,
            advisory_decisions::conditions,
            advisory_decisions::firmware,
        ))
        .order((
            advisory_decisions::advisory_id,
            advisory_decisions::revision,
            advisory_decisions::position,
        ))
        .load(conn)?;
    let cited: Vec<(DbId, i32, DbId)> = advisory_evidence::table
        .filter(advisory_evidence::advisory_id.eq_any(ids))
        .select((
            advisory_evidence::advisory_id,
            advisory_evidence::revision,
            advisory_evidence::evidence_id,
        ))
        .order((
            advisory_evidence::advisory_id,
            advisory_evidence::revision,
            advisory_evidence::position,
        ))
        .load(conn)?;
    let supersedes: Vec<(DbId, i32, DbId)> = advisory_supersedes::table
        .filter(advisory_supersedes::advisory_id.eq_any(ids))
        .select((
            advisory_supersedes::advisory_id,
            advisory_supersedes::revision,
            advisory_supersedes::superseded_id,
        ))
        .order((
            advisory_supersedes::advisory_id,
            advisory_supersedes::revision,
            advisory_supersedes::position,
        ))
        .load(conn)?;
    let mut decisions_of: HashMap<(Uuid, i32), Vec<(DecisionSpec, String)>> = HashMap::new();
    for (advisory, revision, model_id, model_name, decision, conditions, firmware) in decisions {
        let spec = DecisionSpec {
            model_id: model_id.0,
            decision: decision.parse::<Decision>().map_err(stored("decision"))?,
            conditions: conditions
                .map(|c| Prose::parse(&c))
                .transpose()
                .map_err(stored("conditions"))?,
            firmware: firmware
                .map(|f| FirmwareRange::parse(&f))
                .transpose()
                .map_err(stored("firmware range"))?,
        };
        decisions_of
            .entry((advisory.0, revision))
            .or_default()
            .push((spec, model_name));
    }
    let mut cited_by: HashMap<(Uuid, i32), Vec<Uuid>> = HashMap::new();
    for (advisory, revision, evidence_id) in cited {
        cited_by
            .entry((advisory.0, revision))
            .or_default()
            .push(evidence_id.0);
    }
    let mut superseded_by: HashMap<(Uuid, i32), Vec<Uuid>> = HashMap::new();
    for (advisory, revision, superseded) in supersedes {
        superseded_by
            .entry((advisory.0, revision))
            .or_default()
            .push(superseded.0);
    }
    let mut by_advisory: HashMap<Uuid, Vec<RevisionRecord>> = HashMap::new();
    for (head, body, tail) in rows {
        let (advisory, number, stage, title, summary, text, severity, tlp) = head;
        let (all, units, ack, effective_at, review_due, author, contributors) = body;
        let (
            rejection,
            submitted_by,
            submitted_at,
            approved_by,
            approved_at,
            published_by,
            published_at,
            created_at,
            updated_at,
        ) = tail;
        let key = (advisory.0, number);
        let (decisions, names): (Vec<DecisionSpec>, Vec<String>) = decisions_of
            .remove(&key)
            .unwrap_or_default()
            .into_iter()
            .unzip();
        let model_names = decisions.iter().map(|d| d.model_id).zip(names).collect();
        let signed = |by: Option<String>, at: Option<DbTime>| by.zip(at.map(|t| t.0));
        by_advisory
            .entry(advisory.0)
            .or_default()
            .push(RevisionRecord {
                number,
                stage: stage.parse().map_err(stored("stage"))?,
                content: AdvisoryContent {
                    title: Line::parse(&title).map_err(stored("title"))?,
                    summary: Prose::parse(&summary).map_err(stored("summary"))?,
                    body: text,
                    severity: severity.parse::<Severity>().map_err(stored("severity"))?,
                    tlp: tlp.parse::<Tlp>().map_err(stored("tlp"))?,
                    audience: Audience {
                        all_personnel: all,
                        units: serde_json::from_str(&units).map_err(stored("units"))?,
                    },
                    acknowledgement_required: ack,
                    decisions,
                    evidence_ids: cited_by.remove(&key).unwrap_or_default(),
                    supersedes: superseded_by.remove(&key).unwrap_or_default(),
                    effective_at: effective_at.map(|t| t.0),
                    review_due: review_due.map(|t| t.0),
                },
                model_names,
                author,
                contributors: serde_json::from_str(&contributors)
                    .map_err(stored("contributors"))?,
                rejection_reason: rejection,
                submitted: signed(submitted_by, submitted_at),
                approved: signed(approved_by, approved_at),
                published: signed(published_by, published_at),
                created_at: created_at.0,
                updated_at: updated_at.0,
            });
    }
    Ok(by_advisory)
}

/// A TLP:CLEAR advisory as the public feed shows it: its revision in force
/// and when it last changed for a reader of the feed.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub id: Uuid,
    pub reference: String,
    pub state: AdvisoryState,
    pub title: String,
    pub summary: String,
    /// The latest of the current revision's publication, the withdrawal and
    /// the supersession: each changes what the entry says.
    pub updated: DateTime<Utc>,
}

/// The `limit` most recently published TLP:CLEAR advisories that are public
/// (published, withdrawn or superseded), newest change first. The TLP is the
/// revision in force's, so an amendment that raises it takes the entry out.
pub fn feed(conn: &mut DbConnection, limit: i64) -> Result<Vec<FeedItem>, DbError> {
    let public: Vec<&str> = AdvisoryState::ALL
        .iter()
        .filter(|s| s.is_public())
        .map(|s| s.as_str())
        .collect();
    type FeedRow = (
        DbId,
        Option<String>,
        String,
        String,
        String,
        Option<DbTime>,
        Option<DbTime>,
        Option<DbTime>,
    );
    let rows: Vec<FeedRow> = advisories::table
        .inner_join(
            advisory_revisions::table.on(advisory_revisions::advisory_id
                .eq(advisories::id)
                .and(advisory_revisions::revision.eq(advisories::current_revision))),
        )
        .filter(advisories::state.eq_any(public))
        .filter(advisory_revisions::tlp.eq(Tlp::Clear.as_str()))
        .order((
            advisory_revisions::published_at.desc(),
            advisories::id.desc(),
        ))
        .limit(limit)
        .select((
            advisories::id,
            advisories::reference,
            advisories::state,
            advisory_revisions::title,
            advisory_revisions::summary,
            advisory_revisions::published_at,
            advisories::withdrawn_at,
            advisories::superseded_at,
        ))
        .load(conn)?;
    let mut items = Vec::with_capacity(rows.len());
    for (id, reference, state, title, summary, published, withdrawn, superseded) in rows {
        let (Some(reference), Some(published)) = (reference, published) else {
            // A public advisory always has both; skip rather than guess.
            continue;
        };
        let updated = [withdrawn, superseded]
            .into_iter()
            .flatten()
            .map(|t| t.0)
            .fold(published.0, DateTime::max);
        items.push(FeedItem {
            id: id.0,
            reference,
            state: state.parse().map_err(stored("advisory state"))?,
            title,
            summary,
            updated,
        });
    }
    items.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
    Ok(items)
}
