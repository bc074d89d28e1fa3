//! `/api/v1/models`

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    Change, IfMatchHeader, JsonBody, Page, PageParams, PageRequest, created, id_of, query_param,
    text_filter, with_etag,
};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Analyst, Authorized, Reader};
use crate::db::clearance::{self as db_clearance, StatusChange};
use crate::db::models::{self, ModelFilter};
use crate::domain::clearance::{self, Clearance, ClearanceStatus};
use crate::domain::registry::{Category, Model, ModelPatch, NewModel};
use crate::error::ApiError;
use crate::lookup::LookupIndex;
use crate::workflow::registry;

/// A model with its current clearance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    #[serde(flatten)]
    pub model: Model,
    pub clearance: Clearance,
}

impl ModelView {
    /// The model with its clearance as the lookup index has it now.
    pub fn of(model: Model, state: &AppState) -> Self {
        Self::new(
            model,
            &state.lookup.snapshot(),
            state.workflow.clock().now(),
        )
    }

    pub fn new(model: Model, index: &LookupIndex, now: DateTime<Utc>) -> Self {
        let clearance = index
            .get(model.id)
            .map(|indexed| indexed.clearance(now, None))
            .unwrap_or_else(|| clearance::derive(&[], None, now, model.created_at, None));
        Self { model, clearance }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Text in a name, alias, model number or manufacturer name (any case).
    q: Option<String>,
    #[param(value_type = Option<Uuid>)]
    manufacturer_id: Option<String>,
    /// A clearance status.
    #[param(value_type = Option<ClearanceStatus>)]
    status: Option<String>,
    #[param(value_type = Option<Category>)]
    category: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/models", tag = "registry",
    summary = "Register a device model",
    params(IdempotencyKeyHeader),
    request_body = NewModel,
    responses(
        (status = 201, description = "Registered", body = ModelView,
         headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "Name taken for this manufacturer, or a TAC claimed by another model"),
        (status = 422, description = "Invalid field, e.g. a TAC that is not 8 digits"),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    body: JsonBody<NewModel>,
) -> Result<HttpResponse, ApiError> {
    let model = registry::register_model(&state.workflow, analyst.actor(), body.0)
        .await?
        .value;
    let location = format!("/api/v1/models/{}", model.id);
    let version = model.version;
    Ok(created(location, version, &ModelView::of(model, &state)))
}

#[utoipa::path(
    get, path = "/api/v1/models", tag = "registry",
    summary = "List and search models",
    params(ListParams, PageParams),
    responses(
        (status = 200, body = Page<ModelView>),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    params: web::Query<ListParams>,
    page: PageRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = ModelFilter {
        q: text_filter(params.q.as_deref()),
        manufacturer_id: query_param(
            "manufacturer_id",
            params.manufacturer_id.as_deref(),
            id_of("a manufacturer"),
        )?,
        category: query_param("category", params.category.as_deref(), str::parse)?,
        status: query_param("status", params.status.as_deref(), ClearanceStatus::parse)?,
    };
    let rows = state
        .db
        .read(move |conn| models::list(conn, &filter, page.after, page.fetch()))
        .await?;
    let index = state.lookup.snapshot();
    let now = state.workflow.clock().now();
    Ok(HttpResponse::Ok().json(page.page(rows, |m| m.id, |m| ModelView::new(m, &index, now))))
}

#[utoipa::path(
    get, path = "/api/v1/models/{id}", tag = "registry",
    summary = "Get a model and its clearance",
    responses(
        (status = 200, body = ModelView, headers(("ETag" = String))),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let model = state.db.read(move |conn| models::get(conn, id)).await?;
    Ok(with_etag(model.version, &ModelView::of(model, &state)))
}

#[utoipa::path(
    patch, path = "/api/v1/models/{id}", tag = "registry",
    summary = "Change a model's names, model numbers, TACs or category",
    description = "With `If-Match`, the change applies only if the model is unchanged since that ETag (else 412).",
    params(IfMatchHeader),
    request_body = ModelPatch,
    responses(
        (status = 200, body = ModelView, headers(("ETag" = String))),
        (status = 409, description = "Name taken for this manufacturer, or a TAC claimed by another model"),
    ),
)]
pub async fn update(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    change: Change<ModelPatch>,
) -> Result<HttpResponse, ApiError> {
    let Change { id, expected, body } = change;
    let done = registry::change_model(&state.workflow, analyst.actor(), id, body, expected).await?;
    Ok(with_etag(
        done.value.version,
        &ModelView::of(done.value, &state),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/models/{id}/clearance/history", tag = "registry",
    summary = "Every change of a model's clearance, oldest first",
    params(PageParams),
    responses(
        (status = 200, body = Page<StatusChange>),
    ),
)]
pub async fn clearance_history(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    id: web::Path<Uuid>,
    page: PageRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let rows = state
        .db
        .read(move |conn| db_clearance::history(conn, id, page.after, page.fetch()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |c| c.id, |c| c)))
}
