//! `/api/v1/advisories`: drafting, the lifecycle, and reading what was
//! published. Readers see only published (and withdrawn or superseded)
//! advisories; a draft is a 404 to them, so its existence does not leak.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    Change, JsonBody, Page, PageParams, PageRequest, RequiredIfMatchHeader, created, id_of,
    query_param, with_etag,
};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Analyst, Approver, Authorized, Principal, Reader, Role};
use crate::db::advisories::{self, AdvisoryFilter, AdvisoryRecord, RevisionRecord};
use crate::domain::advisory::{
    AdvisoryContent, AdvisoryState, Audience, ContentPatch, Reason, Stage, Tlp,
};
use crate::domain::clearance::{Decision, ScopeKind};
use crate::domain::registry::Category;
use crate::domain::severity::Severity;
use crate::error::ApiError;
use crate::workflow::{self, Done};

/// One decision of a revision, with the names of what it decides on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    /// `model`, or `manufacturer` for every model of a maker.
    pub scope: ScopeKind,
    /// With `scope: model`.
    pub model_id: Option<Uuid>,
    pub model_name: Option<String>,
    /// With `scope: manufacturer`.
    pub manufacturer_id: Option<Uuid>,
    pub manufacturer_name: Option<String>,
    /// With `scope: manufacturer`, the one category it is narrowed to.
    pub category: Option<Category>,
    pub decision: Decision,
    pub conditions: Option<String>,
    /// The firmware range it is limited to; null for every version.
    pub firmware: Option<String>,
}

/// What a revision says.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentView {
    pub title: String,
    pub summary: String,
    pub body: String,
    pub severity: Severity,
    pub tlp: Tlp,
    pub audience: Audience,
    pub acknowledgement_required: bool,
    pub decisions: Vec<DecisionView>,
    pub evidence_ids: Vec<Uuid>,
    pub supersedes: Vec<Uuid>,
    pub effective_at: Option<DateTime<Utc>>,
    pub review_due: Option<DateTime<Utc>>,
}

/// Who moved a revision along, and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignOffs {
    pub submitted_by: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub published_by: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    /// Why the revision was last sent back to draft.
    pub rejection_reason: Option<String>,
}

/// One revision of an advisory.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionView {
    pub revision: i32,
    pub state: Stage,
    #[serde(flatten)]
    pub content: ContentView,
    /// Who opened this revision.
    pub author: String,
    #[serde(flatten)]
    pub sign_offs: SignOffs,
    pub updated_at: DateTime<Utc>,
}

/// An advisory: what is in force (or, before publication, the draft), where
/// it stands, and for analysts the amendment being written.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvisoryView {
    pub id: Uuid,
    /// Assigned on first publication, e.g. `CLR-2026-0001`.
    pub reference: Option<String>,
    pub state: AdvisoryState,
    /// The revision shown: the one in force, or the draft before publication.
    pub revision: i32,
    #[serde(flatten)]
    pub content: ContentView,
    /// Who created the advisory.
    pub author: String,
    pub author_name: String,
    #[serde(flatten)]
    pub sign_offs: SignOffs,
    pub withdrawn_reason: Option<String>,
    pub withdrawn_by: Option<String>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub superseded_by: Option<Uuid>,
    pub superseded_at: Option<DateTime<Utc>>,
    /// An amendment being written (analysts only).
    pub amendment: Option<RevisionView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn content_view(revision: &RevisionRecord) -> ContentView {
    let c = &revision.content;
    ContentView {
        title: c.title.to_string(),
        summary: c.summary.to_string(),
        body: c.body.clone(),
        severity: c.severity,
        tlp: c.tlp,
        audience: c.audience.clone(),
        acknowledgement_required: c.acknowledgement_required,
        decisions: c
            .decisions
            .iter()
            .map(|d| {
                let name = revision.names.get(&d.scope.target()).cloned();
                let model = d.scope.model().is_some();
                DecisionView {
                    scope: d.scope.kind(),
                    model_id: d.scope.model(),
                    model_name: name.clone().filter(|_| model),
                    manufacturer_id: d.scope.manufacturer(),
                    manufacturer_name: name.filter(|_| !model),
                    category: d.scope.category(),
                    decision: d.decision,
                    conditions: d.conditions.as_ref().map(ToString::to_string),
                    firmware: d.firmware.as_ref().map(ToString::to_string),
                }
            })
            .collect(),
        evidence_ids: c.evidence_ids.clone(),
        supersedes: c.supersedes.clone(),
        effective_at: c.effective_at,
        review_due: c.review_due,
    }
}

fn sign_offs(revision: &RevisionRecord) -> SignOffs {
    let split = |signed: &Option<(String, DateTime<Utc>)>| {
        signed.as_ref().map(|(by, at)| (by.clone(), *at)).unzip()
    };
    let (submitted_by, submitted_at) = split(&revision.submitted);
    let (approved_by, approved_at) = split(&revision.approved);
    let (published_by, published_at) = split(&revision.published);
    SignOffs {
        submitted_by,
        submitted_at,
        approved_by,
        approved_at,
        published_by,
        published_at,
        rejection_reason: revision.rejection_reason.clone(),
    }
}

pub fn revision_view(revision: &RevisionRecord) -> RevisionView {
    RevisionView {
        revision: revision.number,
        state: revision.stage,
        content: content_view(revision),
        author: revision.author.clone(),
        sign_offs: sign_offs(revision),
        updated_at: revision.updated_at,
    }
}

impl AdvisoryView {
    /// The view for a caller who may (`analyst`) or may not see drafts;
    /// `None` when the caller may not see the advisory at all.
    pub fn for_caller(record: &AdvisoryRecord, sees_drafts: bool) -> Option<Self> {
        if !sees_drafts && !record.lifecycle.state.is_public() {
            return None;
        }
        let shown = record.current.as_ref().or(record.working.as_ref())?;
        let amendment = match (&record.current, &record.working) {
            (Some(_), Some(working)) if sees_drafts => Some(revision_view(working)),
            _ => None,
        };
        let withdrawn = record.withdrawn.as_ref();
        Some(Self {
            id: record.id,
            reference: record.reference.clone(),
            state: record.lifecycle.state,
            revision: shown.number,
            content: content_view(shown),
            author: record.author.clone(),
            author_name: record.author_name.clone(),
            sign_offs: sign_offs(shown),
            withdrawn_reason: withdrawn.map(|w| w.reason.clone()),
            withdrawn_by: withdrawn.map(|w| w.by.clone()),
            withdrawn_at: withdrawn.map(|w| w.at),
            superseded_by: record.superseded_by,
            superseded_at: record.superseded_at,
            amendment,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("no advisory has this id".into())
}

/// Renders the advisory a step left, as the caller may see it, with its ETag.
fn render(done: Done<AdvisoryRecord>, principal: &Principal) -> Result<HttpResponse, ApiError> {
    let record = done.value;
    let view =
        AdvisoryView::for_caller(&record, principal.has(Role::Analyst)).ok_or_else(not_found)?;
    Ok(with_etag(record.version, &view))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    #[param(value_type = Option<AdvisoryState>)]
    state: Option<String>,
    /// Advisories whose revision in force (for analysts also whose draft)
    /// decides on this model.
    #[param(value_type = Option<Uuid>)]
    model_id: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/advisories", tag = "advisories",
    summary = "Draft an advisory",
    params(IdempotencyKeyHeader),
    request_body = AdvisoryContent,
    responses(
        (status = 201, body = AdvisoryView, headers(("Location" = String), ("ETag" = String))),
        (status = 422, description = "Invalid field, unknown model, evidence or advisory, unparsable firmware range"),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    body: JsonBody<AdvisoryContent>,
) -> Result<HttpResponse, ApiError> {
    let record = workflow::advisories::draft(&state.workflow, analyst.actor(), body.0)
        .await?
        .value;
    let view = AdvisoryView::for_caller(&record, true).ok_or_else(not_found)?;
    Ok(created(
        format!("/api/v1/advisories/{}", record.id),
        record.version,
        &view,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/advisories", tag = "advisories",
    summary = "List advisories",
    description = "Readers see published, withdrawn and superseded advisories only; analysts see drafts too.",
    params(ListParams, PageParams),
    responses(
        (status = 200, body = Page<AdvisoryView>),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    reader: Authorized<Reader>,
    params: web::Query<ListParams>,
    page: PageRequest,
) -> Result<HttpResponse, ApiError> {
    let sees_drafts = reader.has(Role::Analyst);
    let filter = AdvisoryFilter {
        state: query_param("state", params.state.as_deref(), str::parse)?,
        model_id: query_param("model_id", params.model_id.as_deref(), id_of("a model"))?,
        public_only: !sees_drafts,
    };
    let records = state
        .db
        .read(move |conn| advisories::list(conn, &filter, page.after, page.fetch()))
        .await?;
    let page = page.page(
        records,
        |r| r.id,
        |r| AdvisoryView::for_caller(&r, sees_drafts),
    );
    Ok(HttpResponse::Ok().json(Page {
        items: page.items.into_iter().flatten().collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/advisories/{id}", tag = "advisories",
    summary = "Get an advisory",
    responses(
        (status = 200, body = AdvisoryView, headers(("ETag" = String))),
        (status = 404, description = "Unknown, or a draft the caller may not see"),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    reader: Authorized<Reader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let record = state.db.read(move |conn| advisories::get(conn, id)).await?;
    let view =
        AdvisoryView::for_caller(&record, reader.has(Role::Analyst)).ok_or_else(not_found)?;
    Ok(with_etag(record.version, &view))
}

#[utoipa::path(
    patch, path = "/api/v1/advisories/{id}", tag = "advisories",
    summary = "Change a draft",
    description = "Only a draft (or a draft amendment) can change, and only with `If-Match` carrying its current ETag.",
    params(RequiredIfMatchHeader),
    request_body = ContentPatch,
    responses(
        (status = 200, body = AdvisoryView, headers(("ETag" = String))),
        (status = 409, description = "Not a draft"),
    ),
)]
pub async fn update(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    change: Change<ContentPatch>,
) -> Result<HttpResponse, ApiError> {
    let Change { id, expected, body } = change;
    let expected = expected.ok_or(ApiError::PreconditionRequired)?;
    let done =
        workflow::advisories::edit(&state.workflow, analyst.actor(), id, body, expected).await?;
    render(done, &analyst)
}

/// The handler of a lifecycle step, documented by the doc comment given:
/// `$role` takes the step `workflow::advisories::$step` (with the reason the
/// body gives, for a step `with_reason`) and sees the advisory as it left
/// it. Every step answers 409 when the advisory's state does not allow it;
/// some answer more (`responses`).
macro_rules! lifecycle_step {
    (
        $(#[$doc:meta])*
        $step:ident by $role:ident, at $path:tt $(, responses($($responses:tt)*))?
    ) => {
        lifecycle_step!(@handler [$(#[$doc])*] $step, $role, $path,
            [], [], [], [$($($responses)*)?]);
    };
    (
        $(#[$doc:meta])*
        $step:ident with_reason by $role:ident, at $path:tt $(, responses($($responses:tt)*))?
    ) => {
        lifecycle_step!(@handler [$(#[$doc])*] $step, $role, $path,
            [request_body = Reason,], [body: JsonBody<Reason>,], [body.0.reason],
            [$($($responses)*)?]);
    };
    (
        @handler [$($doc:tt)*] $step:ident, $role:ident, $path:tt,
        [$($request_body:tt)*], [$($body:tt)*], [$($reason:tt)*], [$($responses:tt)*]
    ) => {
        $($doc)*
        #[utoipa::path(
            post, path = $path, tag = "advisories",
            $($request_body)*
            responses(
                (status = 200, body = AdvisoryView, headers(("ETag" = String))),
                (status = 409, description = "The advisory's state does not allow this; `current_state` says which it is"),
                $($responses)*
            ),
        )]
        pub async fn $step(
            state: web::Data<AppState>,
            caller: Authorized<$role>,
            id: web::Path<Uuid>,
            $($body)*
        ) -> Result<HttpResponse, ApiError> {
            let (actor, id) = (caller.actor(), id.into_inner());
            let done = workflow::advisories::$step(&state.workflow, actor, id, $($reason)*).await?;
            render(done, &caller)
        }
    };
}

lifecycle_step! {
    /// Submit a draft for approval
    ///
    /// draft → submitted.
    submit by Analyst, at "/api/v1/advisories/{id}/submit"
}

lifecycle_step! {
    /// Send a submitted advisory back to draft
    ///
    /// submitted → draft, with the reason.
    reject with_reason by Approver, at "/api/v1/advisories/{id}/reject"
}

lifecycle_step! {
    /// Approve a submitted advisory
    ///
    /// submitted → approved. The two-person rule: the advisory's author and anyone who wrote the revision cannot approve it (403).
    approve by Approver, at "/api/v1/advisories/{id}/approve",
    responses((status = 403, description = "Not an approver, or the two-person rule"))
}

lifecycle_step! {
    /// Publish an approved advisory
    ///
    /// approved → published, in one transaction: the reference (on first publication), the advisories it supersedes, and every concerned model's clearance.
    publish by Approver, at "/api/v1/advisories/{id}/publish",
    responses((status = 422, description = "No decision or no cited evidence"))
}

lifecycle_step! {
    /// Open an amendment of a published advisory
    ///
    /// A new draft revision, a copy of the one in force, which stays in force (and readable) until the amendment is published.
    amend by Analyst, at "/api/v1/advisories/{id}/amend"
}

lifecycle_step! {
    /// Withdraw a published advisory
    ///
    /// published → withdrawn, with the reason: its decisions stop applying.
    withdraw with_reason by Approver, at "/api/v1/advisories/{id}/withdraw"
}

#[utoipa::path(
    get, path = "/api/v1/advisories/{id}/revisions", tag = "advisories",
    summary = "Every published revision, oldest first",
    responses(
        (status = 200, body = Page<RevisionView>),
    ),
)]
pub async fn revisions(
    state: web::Data<AppState>,
    reader: Authorized<Reader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (record, revisions) = state
        .db
        .read(move |conn| {
            Ok((
                advisories::get(conn, id)?,
                advisories::published_revisions(conn, id)?,
            ))
        })
        .await?;
    AdvisoryView::for_caller(&record, reader.has(Role::Analyst)).ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(Page {
        items: revisions.iter().map(revision_view).collect(),
        next_cursor: None,
    }))
}
