//! `/api/v1/manufacturers`

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{JsonBody, Page, PageRequest, created, with_etag};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::manufacturers::{self, NewManufacturer};
use crate::domain::registry::{Country, Manufacturer, Name};
use crate::error::{ApiError, Problem};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateManufacturer {
    #[schema(example = "Xiaomi")]
    name: Name,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "CN")]
    country: Country,
    #[serde(default)]
    #[schema(example = json!(["小米"]))]
    aliases: Vec<Name>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/manufacturers", tag = "registry",
    summary = "Register a manufacturer",
    params(IdempotencyKeyHeader),
    request_body = CreateManufacturer,
    responses(
        (status = 201, description = "Registered", body = Manufacturer,
         headers(("Location" = String, description = "URL of the new manufacturer"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "A manufacturer with this name (ignoring case) exists", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<CreateManufacturer>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Analyst)?;
    let actor = principal.actor();
    let CreateManufacturer {
        name,
        country,
        aliases,
    } = body.0;
    let new = NewManufacturer {
        name,
        country,
        aliases,
    };
    let manufacturer = state
        .db
        .write(move |conn| manufacturers::insert(conn, new, &actor, Utc::now()))
        .await?;
    Ok(created(
        format!("/api/v1/manufacturers/{}", manufacturer.id),
        manufacturer.version,
        &manufacturer,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/manufacturers", tag = "registry",
    summary = "List manufacturers",
    params(ListParams),
    responses(
        (status = 200, body = Page<Manufacturer>),
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
    let rows = state
        .db
        .read(move |conn| manufacturers::list(conn, page.after, page.fetch()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |m| m.id, |m| m)))
}

#[utoipa::path(
    get, path = "/api/v1/manufacturers/{id}", tag = "registry",
    summary = "Get a manufacturer",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Manufacturer, headers(("ETag" = String))),
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
    let manufacturer = state
        .db
        .read(move |conn| manufacturers::get(conn, id))
        .await?;
    Ok(with_etag(manufacturer.version, &manufacturer))
}
