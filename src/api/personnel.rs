//! `/api/v1/personnel`: the directory of people who must follow advisories,
//! kept by admins, one at a time or by importing a CSV roster.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::{
    Change, IfMatchHeader, JsonBody, Page, PageParams, PageRequest, boolean, created, query_param,
    read_csv, text_filter, with_etag,
};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Admin, Authorized};
use crate::db::personnel::{self, ImportSummary, PersonFilter};
use crate::domain::personnel::{NewPerson, Person, PersonPatch, parse_roster};
use crate::error::ApiError;
use crate::workflow;

/// The largest roster accepted: some 200,000 people.
pub const MAX_ROSTER_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Exactly this unit.
    unit: Option<String>,
    /// `true` or `false`.
    #[param(value_type = Option<bool>)]
    active: Option<String>,
    /// Text in the name or the address (any case).
    q: Option<String>,
}

fn location(person: &Person) -> String {
    format!("/api/v1/personnel/{}", person.id)
}

#[utoipa::path(
    post, path = "/api/v1/personnel", tag = "personnel",
    summary = "Add a person to the directory",
    params(IdempotencyKeyHeader),
    request_body = NewPerson,
    responses(
        (status = 201, description = "Added", body = Person,
         headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "The address (ignoring case) is already in the directory"),
        (status = 422, description = "Invalid field, e.g. not an email address"),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    admin: Authorized<Admin>,
    body: JsonBody<NewPerson>,
) -> Result<HttpResponse, ApiError> {
    let person = workflow::personnel::add(&state.workflow, admin.actor(), body.0)
        .await?
        .value;
    Ok(created(location(&person), person.version, &person))
}

#[utoipa::path(
    get, path = "/api/v1/personnel", tag = "personnel",
    summary = "List and search the directory",
    params(ListParams, PageParams),
    responses(
        (status = 200, body = Page<Person>),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    params: web::Query<ListParams>,
    page: PageRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = PersonFilter {
        unit: text_filter(params.unit.as_deref()),
        active: query_param("active", params.active.as_deref(), boolean)?,
        q: text_filter(params.q.as_deref()),
    };
    let rows = state
        .db
        .read(move |conn| personnel::list(conn, &filter, page.after, page.fetch()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |p| p.id, |p| p)))
}

#[utoipa::path(
    get, path = "/api/v1/personnel/{id}", tag = "personnel",
    summary = "Get a person",
    responses(
        (status = 200, body = Person, headers(("ETag" = String))),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let person = state.db.read(move |conn| personnel::get(conn, id)).await?;
    Ok(with_etag(person.version, &person))
}

#[utoipa::path(
    patch, path = "/api/v1/personnel/{id}", tag = "personnel",
    summary = "Change a person's address, name, unit or active flag",
    description = "With `If-Match`, the change applies only if the person is unchanged since that ETag (else 412).",
    params(IfMatchHeader),
    request_body = PersonPatch,
    responses(
        (status = 200, body = Person, headers(("ETag" = String))),
        (status = 409, description = "The new address is another person's"),
    ),
)]
pub async fn update(
    state: web::Data<AppState>,
    admin: Authorized<Admin>,
    change: Change<PersonPatch>,
) -> Result<HttpResponse, ApiError> {
    let Change { id, expected, body } = change;
    let person = workflow::personnel::change(&state.workflow, admin.actor(), id, body, expected)
        .await?
        .value;
    Ok(with_etag(person.version, &person))
}

#[utoipa::path(
    post, path = "/api/v1/personnel/import", tag = "personnel",
    summary = "Import a CSV roster: all of it, or nothing",
    description = "The body is UTF-8 CSV whose header names the columns `email`, `name` and `unit` \
        (any order; `unit` may be empty). People are matched by address, ignoring case: new ones \
        are added, known ones get the file's name and unit and become active. If any line is bad \
        (an invalid address, no name, a wrong number of fields, an address repeated in the file, \
        text that is not UTF-8) nothing is imported and the 422 lists every bad line as \
        `{field: \"line N\", message}`. An import is an upsert, so repeating it is harmless: it \
        takes no `Idempotency-Key`. At most 16 MiB.",
    request_body(content = String, content_type = "text/csv",
        example = "email,name,unit\nada@example.org,\"Lovelace, Ada\",North\n"),
    responses(
        (status = 200, description = "Imported", body = ImportSummary),
        (status = 415, description = "Not sent as `text/csv`"),
        (status = 422, description = "Bad lines; nothing was imported"),
    ),
)]
pub async fn import(
    state: web::Data<AppState>,
    admin: Authorized<Admin>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_csv(&req, payload, "the roster", MAX_ROSTER_BYTES).await?;
    let roster = parse_roster(&body).map_err(ApiError::bad_lines)?;
    let done = workflow::personnel::import(&state.workflow, admin.actor(), roster).await?;
    Ok(HttpResponse::Ok().json(done.value))
}
