//! `/api/v1/models`

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    JsonBody, Page, PageRequest, created, id_of, if_match_version, query_param, with_etag,
};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::clearance::{self as db_clearance, StatusChange};
use crate::db::models::{self, ModelFilter, ModelPatch, NewModel};
use crate::domain::clearance::{self, Clearance, ClearanceStatus};
use crate::domain::imei::Tac;
use crate::domain::registry::{Category, Model, Name};
use crate::error::{ApiError, Problem};
use crate::lookup::LookupIndex;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModel {
    manufacturer_id: Uuid,
    #[schema(example = "Redmi 1S")]
    name: Name,
    #[serde(default)]
    #[schema(example = json!(["2014011", "HM 1SW"]))]
    model_numbers: Vec<Name>,
    #[serde(default)]
    #[schema(example = json!(["Hongmi 1S"]))]
    aliases: Vec<Name>,
    category: Category,
    /// Each exactly 8 digits; a TAC another model claims is a 409.
    #[serde(default)]
    tacs: Vec<Tac>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModel {
    name: Option<Name>,
    model_numbers: Option<Vec<Name>>,
    aliases: Option<Vec<Name>>,
    category: Option<Category>,
    tacs: Option<Vec<Tac>>,
}

/// A model with its current clearance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    #[serde(flatten)]
    pub model: Model,
    pub clearance: Clearance,
}

impl ModelView {
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
    manufacturer_id: Option<String>,
    /// A clearance status.
    #[param(value_type = Option<ClearanceStatus>)]
    status: Option<String>,
    #[param(value_type = Option<Category>)]
    category: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/models", tag = "registry",
    summary = "Register a device model",
    params(IdempotencyKeyHeader),
    request_body = CreateModel,
    responses(
        (status = 201, description = "Registered", body = ModelView,
         headers(("Location" = String), ("ETag" = String))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "Name taken for this manufacturer, or a TAC claimed by another model", body = Problem),
        (status = 422, description = "Invalid field, e.g. a TAC that is not 8 digits", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<CreateModel>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Analyst)?;
    let actor = principal.actor();
    let CreateModel {
        manufacturer_id,
        name,
        model_numbers,
        aliases,
        category,
        tacs,
    } = body.0;
    let new = NewModel {
        manufacturer_id,
        name,
        model_numbers,
        aliases,
        category,
        tacs,
    };
    let model = state
        .db
        .write(move |conn| models::insert(conn, new, &actor, Utc::now()))
        .await?;
    state.lookup.apply(&[model.id]).await;
    let location = format!("/api/v1/models/{}", model.id);
    let version = model.version;
    Ok(created(
        location,
        version,
        &ModelView::new(model, &state.lookup.snapshot(), Utc::now()),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/models", tag = "registry",
    summary = "List and search models",
    params(ListParams),
    responses(
        (status = 200, body = Page<ModelView>),
        (status = 401, body = Problem), (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Reader)?;
    let page = PageRequest::parse(params.limit.as_deref(), params.cursor.as_deref())?;
    let filter = ModelFilter {
        q: params
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
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
    let now = Utc::now();
    Ok(HttpResponse::Ok().json(page.page(rows, |m| m.id, |m| ModelView::new(m, &index, now))))
}

#[utoipa::path(
    get, path = "/api/v1/models/{id}", tag = "registry",
    summary = "Get a model and its clearance",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = ModelView, headers(("ETag" = String))),
        (status = 401, body = Problem), (status = 404, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Reader)?;
    let id = id.into_inner();
    let model = state.db.read(move |conn| models::get(conn, id)).await?;
    let version = model.version;
    Ok(with_etag(
        version,
        &ModelView::new(model, &state.lookup.snapshot(), Utc::now()),
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/models/{id}", tag = "registry",
    summary = "Change a model's names, model numbers, TACs or category",
    description = "With `If-Match`, the change applies only if the model is unchanged since that ETag (else 412).",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag from a previous read")),
    request_body = UpdateModel,
    responses(
        (status = 200, body = ModelView, headers(("ETag" = String))),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
    body: JsonBody<UpdateModel>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Analyst)?;
    let actor = principal.actor();
    let id = id.into_inner();
    let expected = if_match_version(&req);
    let UpdateModel {
        name,
        model_numbers,
        aliases,
        category,
        tacs,
    } = body.0;
    let patch = ModelPatch {
        name,
        model_numbers,
        aliases,
        category,
        tacs,
    };
    let model = state
        .db
        .write(move |conn| models::update(conn, id, patch, expected, &actor, Utc::now()))
        .await?;
    state.lookup.apply(&[model.id]).await;
    let version = model.version;
    Ok(with_etag(
        version,
        &ModelView::new(model, &state.lookup.snapshot(), Utc::now()),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryParams {
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/models/{id}/clearance/history", tag = "registry",
    summary = "Every change of a model's clearance, oldest first",
    params(("id" = Uuid, Path), HistoryParams),
    responses(
        (status = 200, body = Page<StatusChange>),
        (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn clearance_history(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Reader)?;
    let page = PageRequest::parse(params.limit.as_deref(), params.cursor.as_deref())?;
    let id = id.into_inner();
    let rows = state
        .db
        .read(move |conn| db_clearance::history(conn, id, page.after, page.fetch()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |c| c.id, |c| c)))
}
