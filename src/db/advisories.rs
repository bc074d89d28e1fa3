//! Advisories and their revisions as stored. Every write that moves an
//! advisory along is guarded by the version it was read at, so that two
//! concurrent steps cannot both succeed; which steps are allowed is the
//! domain's rule, applied by the use cases.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{
    advisories, advisory_decisions, advisory_evidence, advisory_revisions, advisory_supersedes,
    manufacturers, models,
};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError, one_row_changed, update_versioned};
use crate::domain::advisory::{
    AdvisoryContent, AdvisoryState, Audience, DecisionSpec, Lifecycle, Stage, Tlp, reference,
};
use crate::domain::audit::Actor;
use crate::domain::clearance::{Decision, Scope};
use crate::domain::firmware::FirmwareRange;
use crate::domain::severity::Severity;
use crate::domain::text::{Line, Prose};
use crate::domain::wording;

/// The rows of `$table`, one of a revision's child tables, that belong to
/// revision `$number` of advisory `$id`.
macro_rules! revision_rows {
    ($table:ident, $id:expr, $number:expr) => {
        $table::table
            .filter($table::advisory_id.eq(DbId($id)))
            .filter($table::revision.eq($number))
    };
}

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
    /// The name of each model and manufacturer the decisions name.
    pub names: HashMap<Uuid, String>,
    /// What each target of a decision is called in a sentence: "Xiaomi
    /// Redmi 1S", "All Xiaomi phones".
    pub target_names: HashMap<Scope, String>,
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

#[derive(Queryable, Selectable)]
#[diesel(table_name = advisories)]
struct AdvisoryRow {
    id: DbId,
    reference: Option<String>,
    state: String,
    current_revision: i32,
    working_revision: Option<i32>,
    author: String,
    author_name: String,
    withdrawn_reason: Option<String>,
    withdrawn_by: Option<String>,
    withdrawn_at: Option<DbTime>,
    superseded_by: Option<DbId>,
    superseded_at: Option<DbTime>,
    version: i64,
    created_at: DbTime,
    updated_at: DbTime,
}

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

/// advisory, revision, (model, manufacturer, category), the name of the one
/// named, decision, conditions, firmware.
type DecisionRow = (
    DbId,
    i32,
    (Option<DbId>, Option<DbId>, Option<String>),
    (Option<String>, Option<String>),
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

/// The columns of a revision that its content decides: written when the
/// revision is opened and whenever its draft changes.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = advisory_revisions, treat_none_as_null = true)]
struct ContentColumns<'a> {
    title: &'a str,
    summary: &'a str,
    body: &'a str,
    severity: &'a str,
    tlp: &'a str,
    audience_all: bool,
    audience_units: String,
    acknowledgement_required: bool,
    effective_at: Option<DbTime>,
    review_due: Option<DbTime>,
}

impl<'a> ContentColumns<'a> {
    fn of(content: &'a AdvisoryContent) -> Result<Self, DbError> {
        Ok(Self {
            title: content.title.as_str(),
            summary: content.summary.as_str(),
            body: &content.body,
            severity: content.severity.as_str(),
            tlp: content.tlp.as_str(),
            audience_all: content.audience.all_personnel,
            audience_units: to_json(&content.audience.units)?,
            acknowledgement_required: content.acknowledgement_required,
            effective_at: content.effective_at.map(DbTime),
            review_due: content.review_due.map(DbTime),
        })
    }
}

/// Inserts a draft advisory (revision 1) written by `author`.
pub fn insert(
    conn: &mut DbConnection,
    id: Uuid,
    content: &AdvisoryContent,
    author: &Actor,
    now: DateTime<Utc>,
) -> Result<AdvisoryRecord, DbError> {
    diesel::insert_into(advisories::table)
        .values((
            advisories::id.eq(DbId(id)),
            advisories::state.eq(AdvisoryState::Draft.as_str()),
            advisories::current_revision.eq(0),
            advisories::working_revision.eq(Some(1)),
            advisories::author.eq(&author.sub),
            advisories::author_name.eq(&author.name),
            advisories::version.eq(1_i64),
            advisories::created_at.eq(DbTime(now)),
            advisories::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    insert_revision(conn, id, 1, content, &author.sub, now)?;
    get(conn, id)
}

/// Gives revision `number` of advisory `id` new content, written (also) by
/// `contributors`.
pub fn replace_content(
    conn: &mut DbConnection,
    id: Uuid,
    number: i32,
    content: &AdvisoryContent,
    contributors: &[String],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    delete_children(conn, id, number)?;
    diesel::update(revision_rows!(advisory_revisions, id, number))
        .set((
            ContentColumns::of(content)?,
            advisory_revisions::contributors.eq(to_json(&contributors)?),
            advisory_revisions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    insert_children(conn, id, number, content)
}

/// A step of a revision on its way to publication, with who took it.
pub enum SignOff<'a> {
    Submitted { by: &'a str },
    Rejected { reason: &'a Prose },
    Approved { by: &'a str },
}

/// Moves revision `number` of advisory `id` to `stage`, recording the step.
pub fn sign_off(
    conn: &mut DbConnection,
    id: Uuid,
    number: i32,
    stage: Stage,
    step: SignOff<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let target = revision_rows!(advisory_revisions, id, number);
    let base = (
        advisory_revisions::stage.eq(stage.as_str()),
        advisory_revisions::updated_at.eq(DbTime(now)),
    );
    let at = Some(DbTime(now));
    match step {
        SignOff::Submitted { by } => diesel::update(target)
            .set((
                base,
                advisory_revisions::submitted_by.eq(Some(by)),
                advisory_revisions::submitted_at.eq(at),
                advisory_revisions::rejection_reason.eq(None::<String>),
            ))
            .execute(conn)?,
        SignOff::Rejected { reason } => diesel::update(target)
            .set((
                base,
                advisory_revisions::rejection_reason.eq(Some(reason.as_str())),
            ))
            .execute(conn)?,
        SignOff::Approved { by } => diesel::update(target)
            .set((
                base,
                advisory_revisions::approved_by.eq(Some(by)),
                advisory_revisions::approved_at.eq(at),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Updates the advisory as read (`record`) with `changes`, a new version
/// and `now`, provided no one changed it meanwhile (else a conflict). A
/// macro, because diesel's changeset types cannot be named short of
/// spelling out each step's columns.
macro_rules! update_as_read {
    ($conn:expr, $record:expr, $now:expr, ($($change:expr),* $(,)?)) => {
        one_row_changed(
            update_versioned!($conn, advisories, $record.id, $record.version, $now, ($($change),*))?,
            "advisory",
            None,
        )
    };
}

/// How an advisory leaves force.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// Withdrawn by `by`, for `reason`.
    Withdrawn { reason: &'a Prose, by: &'a str },
    /// Superseded by the advisory `by`, which leaves it in `state`.
    Superseded { by: Uuid, state: AdvisoryState },
}

/// Takes the advisory as read (`record`) out of force as `ending` says: its
/// open amendment is discarded and its decisions stop applying.
pub fn end(
    conn: &mut DbConnection,
    record: &AdvisoryRecord,
    ending: Ending<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let (state, withdrawal, superseded_by) = match ending {
        Ending::Withdrawn { reason, by } => (AdvisoryState::Withdrawn, Some((reason, by)), None),
        Ending::Superseded { by, state } => (state, None, Some(DbId(by))),
    };
    discard_working(conn, record)?;
    update_as_read!(
        conn,
        record,
        now,
        (
            advisories::state.eq(state.as_str()),
            advisories::working_revision.eq(None::<i32>),
            advisories::withdrawn_reason.eq(withdrawal.map(|(reason, _)| reason.as_str())),
            advisories::withdrawn_by.eq(withdrawal.map(|(_, by)| by)),
            advisories::withdrawn_at.eq(withdrawal.map(|_| DbTime(now))),
            advisories::superseded_by.eq(superseded_by),
            advisories::superseded_at.eq(superseded_by.map(|_| DbTime(now))),
        )
    )
}

/// Publishes the working revision `number` of the advisory as read
/// (`record`) under `reference`, by `by`; its decisions apply from
/// `effective_at`.
pub fn publish(
    conn: &mut DbConnection,
    record: &AdvisoryRecord,
    number: i32,
    reference: &str,
    by: &str,
    effective_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let id = record.id;
    diesel::update(revision_rows!(advisory_revisions, id, number))
        .set((
            advisory_revisions::stage.eq(Stage::Published.as_str()),
            advisory_revisions::published_by.eq(Some(by)),
            advisory_revisions::published_at.eq(Some(DbTime(now))),
            advisory_revisions::effective_at.eq(Some(DbTime(effective_at))),
            advisory_revisions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    update_as_read!(
        conn,
        record,
        now,
        (
            advisories::state.eq(AdvisoryState::Published.as_str()),
            advisories::reference.eq(Some(reference)),
            advisories::current_revision.eq(number),
            advisories::working_revision.eq(None::<i32>),
        )
    )
}

/// Moves the advisory as read (`record`) to `state`, with `working` as its
/// working revision.
pub fn advance(
    conn: &mut DbConnection,
    record: &AdvisoryRecord,
    state: AdvisoryState,
    working: Option<i32>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    update_as_read!(
        conn,
        record,
        now,
        (
            advisories::state.eq(state.as_str()),
            advisories::working_revision.eq(working),
        )
    )
}

/// Drops an unpublished amendment of an advisory leaving force (the audit
/// log keeps what it said).
fn discard_working(conn: &mut DbConnection, record: &AdvisoryRecord) -> Result<(), DbError> {
    if let (Some(working), Some(_)) = (&record.working, &record.current) {
        delete_children(conn, record.id, working.number)?;
        diesel::delete(revision_rows!(
            advisory_revisions,
            record.id,
            working.number
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// The next reference number of `year`, taken in the caller's transaction:
/// the counter row stays locked until it commits, and a rollback returns the
/// number, so references have neither gaps nor duplicates.
pub fn next_reference(conn: &mut DbConnection, year: i32) -> Result<String, DbError> {
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

/// Which of `ids` name an advisory.
pub fn existing(conn: &mut DbConnection, ids: &[Uuid]) -> Result<HashSet<Uuid>, DbError> {
    super::existing_ids!(conn, advisories, ids)
}

/// Inserts revision `number` of advisory `id`, a draft written by `author`.
pub fn insert_revision(
    conn: &mut DbConnection,
    id: Uuid,
    number: i32,
    content: &AdvisoryContent,
    author: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(advisory_revisions::table)
        .values((
            advisory_revisions::advisory_id.eq(DbId(id)),
            advisory_revisions::revision.eq(number),
            advisory_revisions::stage.eq(Stage::Draft.as_str()),
            ContentColumns::of(content)?,
            advisory_revisions::author.eq(author),
            advisory_revisions::contributors.eq(to_json(&[author])?),
            advisory_revisions::created_at.eq(DbTime(now)),
            advisory_revisions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    insert_children(conn, id, number, content)
}

/// Deletes a revision's decisions, citations and supersessions.
/// Inserts `$ids`, in order, as the rows of the child table `$table` (its
/// id column `$column`) of revision `$number` of advisory `$id`.
macro_rules! insert_id_list {
    ($conn:expr, $table:ident . $column:ident, $id:expr, $number:expr, $ids:expr) => {
        for (position, listed) in $ids.iter().enumerate() {
            diesel::insert_into($table::table)
                .values((
                    $table::advisory_id.eq(DbId($id)),
                    $table::revision.eq($number),
                    $table::position.eq(position as i32),
                    $table::$column.eq(DbId(*listed)),
                ))
                .execute($conn)?;
        }
    };
}

/// The id lists of the child table `$table` (its id column `$column`) of
/// the advisories `$ids`, as `(advisory, revision, listed id)` in list order.
macro_rules! load_id_lists {
    ($conn:expr, $table:ident . $column:ident, $ids:expr) => {
        $table::table
            .filter($table::advisory_id.eq_any($ids))
            .select(($table::advisory_id, $table::revision, $table::$column))
            .order(($table::advisory_id, $table::revision, $table::position))
            .load::<(DbId, i32, DbId)>($conn)?
    };
}

fn delete_children(conn: &mut DbConnection, id: Uuid, number: i32) -> Result<(), DbError> {
    diesel::delete(revision_rows!(advisory_decisions, id, number)).execute(conn)?;
    diesel::delete(revision_rows!(advisory_evidence, id, number)).execute(conn)?;
    diesel::delete(revision_rows!(advisory_supersedes, id, number)).execute(conn)?;
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
                advisory_decisions::model_id.eq(decision.scope.model().map(DbId)),
                advisory_decisions::manufacturer_id.eq(decision.scope.manufacturer().map(DbId)),
                advisory_decisions::category.eq(decision.scope.category().map(|c| c.as_str())),
                advisory_decisions::decision.eq(decision.decision.as_str()),
                advisory_decisions::conditions.eq(decision.conditions.as_ref().map(Prose::as_str)),
                advisory_decisions::firmware
                    .eq(decision.firmware.as_ref().map(ToString::to_string)),
            ))
            .execute(conn)?;
    }
    insert_id_list!(
        conn,
        advisory_evidence.evidence_id,
        id,
        number,
        content.evidence_ids
    );
    insert_id_list!(
        conn,
        advisory_supersedes.superseded_id,
        id,
        number,
        content.supersedes
    );
    Ok(())
}

pub fn get(conn: &mut DbConnection, id: Uuid) -> Result<AdvisoryRecord, DbError> {
    let row: AdvisoryRow = advisories::table
        .find(DbId(id))
        .select(AdvisoryRow::as_select())
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
        .select(AdvisoryRow::as_select())
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
    let mut query =
        super::page_after!(advisories, AdvisoryRow::as_select(), after.map(DbId), limit);
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
        // advisories whose working revision names the model. A decision
        // about every model of its maker (of its category) names it too.
        let (maker, category): (DbId, String) = models::table
            .find(DbId(model_id))
            .select((models::manufacturer_id, models::category))
            .first(conn)
            .optional()?
            .unwrap_or((DbId(Uuid::nil()), String::new()));
        let naming: Vec<(DbId, i32, i32, Option<i32>)> = advisory_decisions::table
            .inner_join(advisories::table.on(advisories::id.eq(advisory_decisions::advisory_id)))
            .filter(
                advisory_decisions::model_id.eq(DbId(model_id)).or(
                    advisory_decisions::manufacturer_id.eq(maker).and(
                        advisory_decisions::category
                            .is_null()
                            .or(advisory_decisions::category.eq(category)),
                    ),
                ),
            )
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
    let ids: Vec<DbId> = rows.iter().map(|r| r.id).collect();
    let mut revisions = load_revisions(conn, &ids)?;
    rows.into_iter()
        .map(|row| {
            let mut own = revisions.remove(&row.id.0).unwrap_or_default();
            let mut take = |number: Option<i32>| {
                number.and_then(|n| {
                    own.iter()
                        .position(|r| r.number == n)
                        .map(|i| own.swap_remove(i))
                })
            };
            let current = take((row.current_revision > 0).then_some(row.current_revision));
            let working = take(row.working_revision);
            let state: AdvisoryState = row.state.parse().map_err(stored("advisory state"))?;
            Ok(AdvisoryRecord {
                id: row.id.0,
                reference: row.reference,
                lifecycle: Lifecycle {
                    state,
                    working: working.as_ref().map(|w| w.stage),
                },
                author: row.author,
                author_name: row.author_name,
                current,
                working,
                withdrawn: match (row.withdrawn_reason, row.withdrawn_by, row.withdrawn_at) {
                    (Some(reason), Some(by), Some(at)) => Some(Withdrawal {
                        reason,
                        by,
                        at: at.0,
                    }),
                    _ => None,
                },
                superseded_by: row.superseded_by.map(|s| s.0),
                superseded_at: row.superseded_at.map(|s| s.0),
                version: row.version,
                created_at: row.created_at.0,
                updated_at: row.updated_at.0,
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
        .left_join(models::table.on(advisory_decisions::model_id.eq(models::id.nullable())))
        .left_join(
            manufacturers::table
                .on(advisory_decisions::manufacturer_id.eq(manufacturers::id.nullable())),
        )
        .filter(advisory_decisions::advisory_id.eq_any(ids))
        .select((
            advisory_decisions::advisory_id,
            advisory_decisions::revision,
            (
                advisory_decisions::model_id,
                advisory_decisions::manufacturer_id,
                advisory_decisions::category,
            ),
            (models::name.nullable(), manufacturers::name.nullable()),
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
    let cited = load_id_lists!(conn, advisory_evidence.evidence_id, ids);
    let supersedes = load_id_lists!(conn, advisory_supersedes.superseded_id, ids);
    let named_models: Vec<DbId> = decisions.iter().filter_map(|d| (d.2).0).collect();
    let makers: HashMap<Uuid, String> = models::table
        .inner_join(manufacturers::table)
        .filter(models::id.eq_any(named_models))
        .select((models::id, manufacturers::name))
        .load::<(DbId, String)>(conn)?
        .into_iter()
        .map(|(id, maker)| (id.0, maker))
        .collect();
    let mut decisions_of: HashMap<(Uuid, i32), Vec<(DecisionSpec, String)>> = HashMap::new();
    for (advisory, revision, scope, names, decision, conditions, firmware) in decisions {
        let spec = DecisionSpec {
            scope: super::clearance::scope_of(scope)?,
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
        let name = names.0.or(names.1).unwrap_or_default();
        decisions_of
            .entry((advisory.0, revision))
            .or_default()
            .push((spec, name));
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
        let target_names = decisions
            .iter()
            .zip(&names)
            .map(|(d, name)| {
                let full = match d.scope {
                    Scope::Model(id) => makers
                        .get(&id)
                        .map_or_else(|| name.clone(), |maker| wording::model_name(maker, name)),
                    Scope::Manufacturer { .. } => name.clone(),
                };
                (d.scope, wording::target_name(d.scope, &full))
            })
            .collect();
        let names = decisions
            .iter()
            .map(|d| d.scope.target())
            .zip(names)
            .collect();
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
                names,
                target_names,
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
    /// When its first revision was published.
    pub published: DateTime<Utc>,
    /// The latest of the current revision's publication, the withdrawal and
    /// the supersession: each changes what the entry says.
    pub updated: DateTime<Utc>,
    /// The revision in force's decisions, each with what its target is
    /// called ("All Xiaomi phones").
    pub decisions: Vec<(DecisionSpec, String)>,
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
    let ids: Vec<DbId> = rows.iter().map(|r| r.0).collect();
    let mut revisions = load_revisions(conn, &ids)?;
    let mut items = Vec::with_capacity(rows.len());
    for (id, reference, state, title, summary, published, withdrawn, superseded) in rows {
        let mine = revisions.remove(&id.0).unwrap_or_default();
        let first_published = mine
            .iter()
            .filter_map(|r| r.published.as_ref().map(|(_, at)| *at))
            .min();
        let decisions = mine
            .iter()
            .filter(|r| r.published.is_some())
            .max_by_key(|r| r.number)
            .map(|current| {
                current
                    .content
                    .decisions
                    .iter()
                    .map(|d| {
                        let name = current.target_names.get(&d.scope).cloned();
                        (d.clone(), name.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
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
            published: first_published.unwrap_or(published.0),
            updated,
            decisions,
        });
    }
    items.sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
    Ok(items)
}
