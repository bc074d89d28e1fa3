//! CSAF 2.0: an advisory's document for readers, and the public provider
//! directory of TLP:CLEAR documents that aggregators walk.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256, Sha512};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{Authorized, Reader};
use crate::error::ApiError;
use crate::export::csaf::{Document, PublisherEntry, Release, Source};
use crate::export::provider::{self, Listing, ProviderMetadata};
use crate::pages;

/// The public URL without its trailing slash, for absolute links.
fn base(state: &AppState) -> String {
    state
        .settings
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// The publisher the documents and the metadata name, with the contact.
fn publisher(state: &AppState) -> PublisherEntry {
    PublisherEntry::new(
        &state.settings.csaf_publisher,
        state.settings.contact.as_deref(),
    )
}

fn not_found() -> ApiError {
    ApiError::NotFound("no published advisory has this id".into())
}

/// The document's bytes, exactly as served and hashed.
fn render(state: &AppState, source: &Source) -> Result<Vec<u8>, ApiError> {
    let document =
        Document::build(source, &publisher(state), &base(state)).ok_or_else(not_found)?;
    serde_json::to_vec(&document).map_err(|e| ApiError::Internal(e.into()))
}

#[utoipa::path(
    get, path = "/api/v1/advisories/{id}/csaf", tag = "advisories",
    summary = "The advisory as a CSAF 2.0 document",
    description = "The revision in force as a CSAF 2.0 `csaf_security_advisory`, valid against the \
        official schema. Readers may fetch every advisory they may read, whatever its TLP; an \
        advisory never published is a 404.",
    responses(
        (status = 200, description = "A CSAF 2.0 document", content_type = "application/json", body = Object),
    ),
)]
pub async fn document(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let source = state
        .db
        .read(move |conn| crate::export::csaf::load(conn, id))
        .await?
        .filter(|s| s.advisory.lifecycle.state.is_public())
        .ok_or_else(not_found)?;
    let bytes = render(&state, &source)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(bytes))
}

#[utoipa::path(
    get, path = "/.well-known/csaf/provider-metadata.json", tag = "advisories",
    summary = "CSAF provider metadata (TLP:CLEAR documents)",
    responses(
        (status = 200, description = "The provider's metadata", content_type = "application/json", body = Object),
    ),
)]
pub async fn provider_metadata(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let releases = state.db.read(provider::releases).await?;
    let metadata = ProviderMetadata::new(&base(&state), &publisher(&state), &releases);
    Ok(HttpResponse::Ok().json(metadata))
}

#[utoipa::path(
    get, path = "/.well-known/csaf/clear/index.txt", tag = "advisories",
    summary = "The TLP:CLEAR documents, one path a line",
    responses(
        (status = 200, description = "Paths under the directory", content_type = "text/plain", body = String),
    ),
)]
pub async fn index(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    releases_as(&state, ContentType::plaintext(), provider::index).await
}

#[utoipa::path(
    get, path = "/.well-known/csaf/clear/changes.csv", tag = "advisories",
    summary = "The TLP:CLEAR documents and when each last changed",
    responses(
        (status = 200, description = "`\"path\",\"time\"` lines, newest first", content_type = "text/csv", body = String),
    ),
)]
pub async fn changes(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let csv = ContentType(actix_web::mime::TEXT_CSV_UTF_8);
    releases_as(&state, csv, provider::changes).await
}

/// The TLP:CLEAR releases as `render` lists them, sent as `content_type`.
async fn releases_as(
    state: &AppState,
    content_type: ContentType,
    render: fn(&[(Uuid, Release)]) -> String,
) -> Result<HttpResponse, ApiError> {
    let releases = state.db.read(provider::releases).await?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .body(render(&releases)))
}

#[utoipa::path(
    get, path = "/.well-known/csaf/clear/", tag = "advisories",
    summary = "The TLP:CLEAR directory's listing",
    description = "An HTML page of links (CSAF 2.0 requirement 14, directory listings): `changes.csv`, `index.txt` and a folder per year, newest first.",
    responses(
        (status = 200, description = "The listing", content_type = "text/html", body = String),
    ),
)]
pub async fn clear_directory(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let releases = state.db.read(provider::releases).await?;
    Ok(pages::document(StatusCode::OK, &Listing::clear(&releases)))
}

#[utoipa::path(
    get, path = "/.well-known/csaf/clear/{year}/", tag = "advisories",
    summary = "A year folder's listing",
    description = "An HTML page of links (CSAF 2.0 requirement 14): each TLP:CLEAR document first published that year, with its `.sha256` and `.sha512`. A year without one is a 404.",
    params(("year" = String, Path, description = "The year of first publication")),
    responses(
        (status = 200, description = "The listing", content_type = "text/html", body = String),
    ),
)]
pub async fn clear_year_directory(
    state: web::Data<AppState>,
    year: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let releases = state.db.read(provider::releases).await?;
    let listing = Listing::year(&releases, &year).ok_or_else(|| {
        ApiError::NotFound("no TLP:CLEAR document was published that year".into())
    })?;
    Ok(pages::document(StatusCode::OK, &listing))
}

/// The digests CSAF providers publish beside each document.
#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hex(self, bytes: &[u8]) -> String {
        match self {
            Self::Sha256 => hex::encode(Sha256::digest(bytes)),
            Self::Sha512 => hex::encode(Sha512::digest(bytes)),
        }
    }
}

#[utoipa::path(
    get, path = "/.well-known/csaf/clear/{year}/{file}", tag = "advisories",
    summary = "A TLP:CLEAR CSAF document, or its hash",
    description = "A document (`clr-2026-0001.json`), or its `.sha256` / `.sha512` beside it (hex digest, two spaces, file name, as `sha256sum` writes and checks them).",
    params(
        ("year" = String, Path, description = "The year of first publication"),
        ("file" = String, Path, description = "The document's file name, or it with `.sha256` or `.sha512`"),
    ),
    responses(
        (status = 200, description = "The document or its hash", content(
            (Object = "application/json"),
            (String = "text/plain"),
        )),
    ),
)]
pub async fn clear_file(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (year, file) = path.into_inner();
    let (document_file, hash) = match (file.strip_suffix(".sha256"), file.strip_suffix(".sha512")) {
        (Some(stem), _) => (stem, Some(Hash::Sha256)),
        (_, Some(stem)) => (stem, Some(Hash::Sha512)),
        _ => (file.as_str(), None),
    };
    let wanted = document_file.to_owned();
    let source = state
        .db
        .read(move |conn| provider::find(conn, &year, &wanted))
        .await?
        .ok_or_else(|| ApiError::NotFound("no TLP:CLEAR document is published here".into()))?;
    let bytes = render(&state, &source)?;
    Ok(match hash {
        Some(hash) => HttpResponse::Ok()
            .content_type(ContentType::plaintext())
            .body(format!("{}  {document_file}\n", hash.hex(&bytes))),
        None => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(bytes),
    })
}
