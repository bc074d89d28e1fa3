//! `/api/v1/evidence`: what was observed about models, the responses
//! appended to it since, and its artifacts. Evidence is never edited — no
//! PATCH, PUT or DELETE is routed — and a correction is new evidence whose
//! correction response supersedes the old.

use std::io;

use actix_web::body::SizedStream;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, EntityTag, ExtendedValue,
};
use actix_web::{HttpRequest, HttpResponse, mime, web};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    JsonBody, Page, PageParams, PageRequest, created, id_of, query_param, unchanged, with_etag,
};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::artifacts::PutError;
use crate::auth::{Analyst, Authorized, Reader};
use crate::db::evidence::{self, EvidenceFilter, Filed, NewArtifact};
use crate::domain::evidence::{
    Artifact, Evidence, EvidenceResponse, FileName, NewEvidence, NewResponse, Sha256Digest,
};
use crate::error::ApiError;
use crate::workflow;

/// The schema of a raw body: bytes, of whatever media type the message
/// says (OpenAPI 3.1 describes them by media type, not as JSON).
pub struct RawBytes;

impl utoipa::PartialSchema for RawBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .content_media_type(OCTET_STREAM)
            .into()
    }
}

impl ToSchema for RawBytes {}

const OCTET_STREAM: &str = "application/octet-stream";
const MAX_CONTENT_TYPE_CHARS: usize = 255;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only evidence about this model.
    #[param(value_type = Option<Uuid>)]
    model_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadParams {
    /// The name to file the artifact under: 1 to 255 characters, no `/`,
    /// `\` or control characters, not `.` or `..`.
    #[param(required = true, example = "redmi-1s-capture.pcap")]
    filename: Option<String>,
}

impl UploadParams {
    fn filename(&self) -> Result<FileName, ApiError> {
        match self.filename.as_deref() {
            None => Err("is required: name the file with `?filename=`".to_owned()),
            Some(raw) => FileName::parse(raw),
        }
        .map_err(|message| ApiError::invalid("filename", message))
    }
}

#[utoipa::path(
    post, path = "/api/v1/evidence", tag = "evidence",
    summary = "File evidence about one or more models",
    params(IdempotencyKeyHeader),
    request_body = NewEvidence,
    responses(
        (status = 201, description = "Filed", body = Evidence,
         headers(("Location" = String), ("ETag" = String))),
        (status = 422, description = "Invalid field, e.g. `model_ids[0]` naming no model"),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    body: JsonBody<NewEvidence>,
) -> Result<HttpResponse, ApiError> {
    let evidence = workflow::evidence::file(&state.workflow, analyst.actor(), body.0)
        .await?
        .value;
    Ok(created(
        format!("/api/v1/evidence/{}", evidence.id),
        evidence.version(),
        &evidence,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/evidence", tag = "evidence",
    summary = "List evidence, oldest filed first",
    params(ListParams, PageParams),
    responses(
        (status = 200, body = Page<Evidence>),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    params: web::Query<ListParams>,
    page: PageRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = EvidenceFilter {
        model_id: query_param("model_id", params.model_id.as_deref(), id_of("a model"))?,
    };
    let rows = state
        .db
        .read(move |conn| evidence::list(conn, &filter, page.after, page.fetch()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |e| e.id, |e| e)))
}

#[utoipa::path(
    get, path = "/api/v1/evidence/{id}", tag = "evidence",
    summary = "Get evidence with its responses, artifacts and what supersedes it",
    responses(
        (status = 200, body = Evidence, headers(("ETag" = String))),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let evidence = state.db.read(move |conn| evidence::get(conn, id)).await?;
    Ok(with_etag(evidence.version(), &evidence))
}

#[utoipa::path(
    post, path = "/api/v1/evidence/{id}/responses", tag = "evidence",
    summary = "Append a response: a vendor's answer, a retest, an acknowledgement or a correction",
    params(IdempotencyKeyHeader),
    request_body = NewResponse,
    responses(
        (status = 201, description = "Appended", body = EvidenceResponse,
         headers(("Location" = String, description = "URL of the evidence"))),
        (status = 422, description = "Invalid field, e.g. `supersedes` on a response that is not a correction"),
    ),
)]
pub async fn respond(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    id: web::Path<Uuid>,
    body: JsonBody<NewResponse>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let done = workflow::evidence::respond(&state.workflow, analyst.actor(), id, body.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/evidence/{id}")))
        .json(done.value))
}

#[utoipa::path(
    post, path = "/api/v1/evidence/{id}/artifacts", tag = "evidence",
    summary = "Attach a file to evidence",
    description = "The body is the file itself, of any content type (kept, and served back; `application/octet-stream` when none is given). It is stored once by its SHA-256: the same bytes attached again answer 200 with the first record.",
    params(UploadParams),
    request_body(content = RawBytes, content_type = "application/octet-stream", description = "The file's bytes, in any content type"),
    responses(
        (status = 201, description = "Attached", body = Artifact,
         headers(("Location" = String, description = "URL of the bytes"))),
        (status = 200, description = "These bytes were already attached to this evidence", body = Artifact),
        (status = 409, description = "The same bytes are being attached by a concurrent request"),
        (status = 413, description = "Larger than the configured limit"),
        (status = 415, description = "A Content-Type that is not a media type"),
        (status = 422, description = "A missing or invalid `filename`"),
    ),
)]
pub async fn upload(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    id: web::Path<Uuid>,
    params: web::Query<UploadParams>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let filename = params.filename()?;
    let content_type = content_type_of(&req)?;
    if !state
        .db
        .read(move |conn| evidence::exists(conn, id))
        .await?
    {
        return Err(ApiError::NotFound("no such evidence".into()));
    }
    let stored = store_body(&state, &req, payload).await?;
    let artifact = NewArtifact {
        sha256: stored.sha256,
        size: stored.size,
        filename,
        content_type,
    };
    let filed = workflow::evidence::attach(&state.workflow, analyst.actor(), id, artifact).await?;
    Ok(match filed.value {
        Filed::Created(artifact) => HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("/api/v1/evidence/{id}/artifacts/{}", artifact.sha256),
            ))
            .json(artifact),
        Filed::Existing(artifact) => HttpResponse::Ok().json(artifact),
    })
}

/// Streams the request body into the artifact store, within the size limit.
async fn store_body(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<crate::artifacts::Stored, ApiError> {
    let limit = state.settings.max_artifact_bytes;
    let declared = super::extract::declared_length(req.headers());
    if declared.is_some_and(|length| length as u64 > limit) {
        return Err(too_large(limit));
    }
    let content = payload
        .map(|chunk| chunk.map_err(io::Error::other))
        .boxed_local();
    state
        .artifacts
        .put(content, limit)
        .await
        .map_err(|error| match error {
            PutError::TooLarge(limit) => too_large(limit),
            PutError::Read(e) => ApiError::BadRequest(format!("could not read the body: {e}")),
            PutError::Storage(e) => ApiError::internal(e),
        })
}

#[utoipa::path(
    get, path = "/api/v1/evidence/{id}/artifacts/{sha256}", tag = "evidence",
    summary = "Download an artifact's bytes",
    description = "The bytes exactly as uploaded, with the stored content type, as an attachment that the browser must not sniff or run (`Content-Security-Policy: sandbox`).",
    params(
        ("sha256" = String, Path, description = "The artifact's SHA-256, 64 hex digits"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy already held"),
    ),
    responses(
        (status = 200, description = "The bytes, in the content type they were uploaded with", content_type = "application/octet-stream", body = RawBytes,
         headers(
             ("ETag" = String, description = "The SHA-256, quoted"),
             ("Content-Disposition" = String),
             ("X-Content-Type-Options" = String),
             ("Content-Security-Policy" = String),
         )),
        (status = 304, description = "The copy held is current"),
    ),
)]
pub async fn download(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    path: web::Path<(Uuid, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, raw) = path.into_inner();
    let sha256 =
        Sha256Digest::parse(&raw).ok_or_else(|| ApiError::NotFound("no such artifact".into()))?;
    let artifact = state
        .db
        .read(move |conn| evidence::artifact(conn, id, &sha256))
        .await?;
    let etag = EntityTag::new_strong(artifact.sha256.clone());
    if unchanged(&req, &etag, None) {
        return Ok(HttpResponse::NotModified()
            .insert_header(header::ETag(etag))
            .finish());
    }
    let blob = state
        .artifacts
        .open(&sha256)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "artifact {sha256} is filed with evidence {id} but not in the store"
            ))
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, artifact.content_type.as_str()))
        .insert_header(header::ETag(etag))
        .insert_header(attachment(&artifact.filename))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Uploaded content must never run in this origin.
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .body(SizedStream::new(blob.size, blob.content)))
}

/// The request's media type as given, `application/octet-stream` without
/// one; a value that is no media type is refused, as it could not be served
/// back.
fn content_type_of(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(OCTET_STREAM.to_owned());
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|raw| raw.len() <= MAX_CONTENT_TYPE_CHARS)
        .filter(|raw| raw.parse::<mime::Mime>().is_ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "the Content-Type must be a media type such as {OCTET_STREAM}, at most {MAX_CONTENT_TYPE_CHARS} characters"
            ))
        })
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the artifact is larger than the limit of {limit} bytes"
    ))
}

/// `attachment` with the name (RFC 6266): a plain ASCII `filename` every
/// client understands and, when the name is not ASCII, the exact name as
/// UTF-8 in `filename*`.
fn attachment(filename: &str) -> ContentDisposition {
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    let mut parameters = vec![DispositionParam::Filename(fallback)];
    if !filename.is_ascii() {
        parameters.push(DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: filename.as_bytes().to_vec(),
        }));
    }
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_name_the_file_safely_in_ascii_and_exactly_in_utf8() {
        assert_eq!(
            attachment("capture.pcap").to_string(),
            r#"attachment; filename="capture.pcap""#
        );
        assert_eq!(
            attachment(r#"say "hi".txt"#).to_string(),
            r#"attachment; filename="say \"hi\".txt""#
        );
        assert_eq!(
            attachment("報告 1.pdf").to_string(),
            "attachment; filename=\"__ 1.pdf\"; filename*=UTF-8''%E5%A0%B1%E5%91%8A%201.pdf"
        );
    }
}
