//! `/api/v1/models.csv` and `/api/v1/models/import`: the register as a CSV
//! file, out and in. The format is [`crate::export::models_csv`]'s.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::{query_param, read_csv};
use super::models::ModelView;
use crate::app::AppState;
use crate::auth::{Analyst, Authorized, Reader};
use crate::db::model_import::ModelImportSummary;
use crate::db::models::{self, ModelFilter};
use crate::domain::clearance::ClearanceStatus;
use crate::domain::registry::Model;
use crate::error::ApiError;
use crate::export::models_csv;
use crate::workflow::registry;

/// Models fetched per database round trip of the export.
const EXPORT_PAGE: i64 = 500;

/// The largest import accepted: some 100,000 models.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportParams {
    /// Only models of this clearance status.
    #[param(value_type = Option<ClearanceStatus>)]
    status: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/models.csv", tag = "registry",
    summary = "Export the models as CSV",
    description = "UTF-8 CSV (RFC 4180, CRLF line ends) with the header \
        `manufacturer,manufacturer_country,name,model_numbers,aliases,tacs,category,clearance_status,reference`, \
        one model per record in registration order. `model_numbers`, `aliases` and `tacs` hold their values \
        joined with `|` (a `|` or `\\` inside a value is escaped with `\\`). `reference` is the deciding \
        advisory's (the most restrictive decision in force), empty when none. The body is streamed page by \
        page from the database, so any number of models is exported in bounded memory.",
    params(ExportParams),
    responses(
        (status = 200, description = "The models", content_type = "text/csv", body = String),
    ),
)]
pub async fn export(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let status = query_param("status", params.status.as_deref(), ClearanceStatus::parse)?;
    // The first page is read before answering, so that a database failure
    // is still a problem response rather than a cut-off file.
    let first = page(&state, status, None).await?;
    let mut head = models_csv::writer();
    head.write_record(models_csv::HEADER)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let head = head
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let rest = futures_util::stream::unfold(Some(first), move |next| {
        let state = state.clone();
        async move {
            let (chunk, after) = next?;
            let more = match after {
                Some(after) => match page(&state, status, Some(after)).await {
                    Ok(page) => Some(page),
                    Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                },
                None => None,
            };
            Some((Ok(chunk), more))
        }
    });
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"models.csv\"",
        ))
        .streaming(body))
}

/// One page of models after `after`, as CSV records, and the cursor of the
/// next page (`None` after the last).
async fn page(
    state: &web::Data<AppState>,
    status: Option<ClearanceStatus>,
    after: Option<Uuid>,
) -> Result<(Bytes, Option<Uuid>), ApiError> {
    let filter = ModelFilter {
        status,
        ..ModelFilter::default()
    };
    let rows: Vec<Model> = state
        .db
        .read(move |conn| models::list(conn, &filter, after, EXPORT_PAGE))
        .await?;
    let next = (rows.len() as i64 == EXPORT_PAGE)
        .then(|| rows.last().map(|m| m.id))
        .flatten();
    let index = state.lookup.snapshot();
    let now = state.workflow.clock().now();
    let mut writer = models_csv::writer();
    for model in rows {
        let view = ModelView::new(model, &index, now);
        writer
            .write_record(models_csv::record(&view.model, &view.clearance))
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    Ok((Bytes::from(bytes), next))
}

#[utoipa::path(
    post, path = "/api/v1/models/import", tag = "registry",
    summary = "Import models from CSV: all of it, or nothing",
    description = "The body is UTF-8 CSV in the export's format (`Content-Type: text/csv`); \
        `clearance_status` and `reference` are ignored, since advisories decide them. Each model is found \
        by manufacturer and model name (ignoring case and spacing) and created or updated to the file's \
        model numbers, aliases, TACs and category. A manufacturer not yet registered is created with \
        `manufacturer_country`, which is then required; for a known one it is ignored. If any line is bad \
        (a wrong number of fields, a bad name, a TAC not of 8 digits, an unknown category, a TAC another \
        model holds, a model or TAC repeated in the file, a new manufacturer without country) nothing is \
        imported and the 422 lists every bad line as `{field: \"line N\", message}`. An import is an \
        upsert, so repeating it is harmless: it takes no `Idempotency-Key`. At most 32 MiB.",
    request_body(content = String, content_type = "text/csv",
        example = "manufacturer,manufacturer_country,name,model_numbers,aliases,tacs,category,clearance_status,reference\nXiaomi,CN,Redmi 1S,2014011|HM 1SW,Hongmi 1S,86452102,phone,,\n"),
    responses(
        (status = 200, description = "Imported", body = ModelImportSummary),
        (status = 415, description = "Not sent as `text/csv`"),
        (status = 422, description = "Bad lines; nothing was imported"),
    ),
)]
pub async fn import(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_csv(&req, payload, "the models", MAX_IMPORT_BYTES).await?;
    let rows = models_csv::parse(&body).map_err(ApiError::bad_lines)?;
    let done = registry::import_models(&state.workflow, analyst.actor(), rows).await?;
    Ok(HttpResponse::Ok().json(done.value))
}
