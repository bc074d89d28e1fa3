//! `/api/v1/manufacturers`

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::{JsonBody, Page, PageRequest, created, with_etag};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::manufacturers;
use crate::domain::registry::{Manufacturer, NewManufacturer};
use crate::error::ApiError;
use crate::workflow::registry;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/manufacturers", tag = "registry",
    summary = "Register a manufacturer",
    params(IdempotencyKeyHeader),
    request_body = NewManufacturer,
    responses(
        (status = 201, description = "Registered", body = Manufacturer,
         headers(("Location" = String, description = "URL of the new manufacturer"), ("ETag" = String))),
        (status = 409, description = "A manufacturer with this name (ignoring case) exists"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<NewManufacturer>,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.acting_as(Role::Analyst)?;
    let made = registry::register_manufacturer(&state.workflow, actor, body.0).await?;
    let location = format!("/api/v1/manufacturers/{}", made.value.id);
    Ok(created(location, made.value.version, &made.value))
}

#[utoipa::path(
    get, path = "/api/v1/manufacturers", tag = "registry",
    summary = "List manufacturers",
    params(ListParams),
    responses(
        (status = 200, body = Page<Manufacturer>),
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
