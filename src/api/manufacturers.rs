//! `/api/v1/manufacturers`

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::extract::{JsonBody, Page, PageParams, PageRequest, created, with_etag};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Analyst, Authorized, Reader};
use crate::db::manufacturers;
use crate::domain::registry::{Manufacturer, NewManufacturer};
use crate::error::ApiError;
use crate::workflow::registry;

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
)]
pub async fn create(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    body: JsonBody<NewManufacturer>,
) -> Result<HttpResponse, ApiError> {
    let made = registry::register_manufacturer(&state.workflow, analyst.actor(), body.0).await?;
    let location = format!("/api/v1/manufacturers/{}", made.value.id);
    Ok(created(location, made.value.version, &made.value))
}

#[utoipa::path(
    get, path = "/api/v1/manufacturers", tag = "registry",
    summary = "List manufacturers",
    params(PageParams),
    responses(
        (status = 200, body = Page<Manufacturer>),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    page: PageRequest,
) -> Result<HttpResponse, ApiError> {
    let rows = state
        .db
        .read(move |conn| manufacturers::list(conn, page.after, page.fetch()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |m| m.id, |m| m)))
}

#[utoipa::path(
    get, path = "/api/v1/manufacturers/{id}", tag = "registry",
    summary = "Get a manufacturer",
    responses(
        (status = 200, body = Manufacturer, headers(("ETag" = String))),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let manufacturer = state
        .db
        .read(move |conn| manufacturers::get(conn, id))
        .await?;
    Ok(with_etag(manufacturer.version, &manufacturer))
}
