//! The one error type of the HTTP API, rendered once as RFC 9457
//! `application/problem+json`.
//!
//! Handlers return `Result<_, ApiError>`; the framework's own failures (bad
//! JSON, unknown routes, wrong methods…) are turned into the same shape by
//! [`crate::app`]'s error handlers, so a client only ever sees one kind of
//! error body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::rejection::Rejection;

pub const PROBLEM_JSON: &str = "application/problem+json";

pub use crate::domain::rejection::FieldError;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:clearance:problem:validation")]
    pub type_: String,
    #[schema(example = "Unprocessable Content")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "tacs[0]: a TAC is exactly 8 digits")]
    pub detail: String,
    /// Present on validation errors: every invalid field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Present on lifecycle conflicts: the state the resource is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_state: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{detail}")]
    Conflict {
        detail: String,
        current_state: Option<String>,
    },
    #[error(
        "the resource has changed since it was read: fetch it again and retry with the new ETag"
    )]
    PreconditionFailed,
    #[error("this change requires an If-Match header with the resource's current ETag")]
    PreconditionRequired,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{}", summarise(.0))]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unprocessable(String),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("too many requests: slow down and retry later")]
    TooManyRequests,
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

fn summarise(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            detail: detail.into(),
            current_state: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// 422 naming each bad line of an uploaded file.
    pub fn bad_lines(lines: Vec<crate::domain::csv_upload::LineError>) -> Self {
        Self::Validation(
            lines
                .into_iter()
                .map(|e| FieldError::new(format!("line {}", e.line), e.message))
                .collect(),
        )
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed(_) => "method-not-allowed",
            Self::Conflict { .. } => "conflict",
            Self::PreconditionFailed => "precondition-failed",
            Self::PreconditionRequired => "precondition-required",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::HeadersTooLarge(_) => "headers-too-large",
            Self::Validation(_) | Self::Unprocessable(_) => "validation",
            Self::RequestTimeout => "request-timeout",
            Self::TooManyRequests => "rate-limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let detail = match self {
            Self::Internal(_) => {
                "the server failed to handle this request; it has been logged with the request id"
                    .to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            type_: format!("urn:clearance:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
            current_state: match self {
                Self::Conflict { current_state, .. } => current_state.clone(),
                _ => None,
            },
        }
    }

    /// The problem for a bare status code produced by the framework itself
    /// (an unknown route, a wrong method).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::NotFound("no such resource".into()),
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::MethodNotAllowed("this method is not allowed on this resource".into())
            }
            StatusCode::UNAUTHORIZED => Self::Unauthorized("a bearer token is required".into()),
            StatusCode::FORBIDDEN => Self::Forbidden("not allowed".into()),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge("the request body is too large".into())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::UnsupportedMediaType("unsupported content type".into())
            }
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests,
            StatusCode::SERVICE_UNAVAILABLE => {
                Self::Unavailable("the service is unavailable".into())
            }
            s if s.is_client_error() => {
                Self::BadRequest(s.canonical_reason().unwrap_or("bad request").to_owned())
            }
            _ => Self::Internal(anyhow::anyhow!("framework error with status {status}")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Validation(_) | Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            // The span carries the request id, so the log line can be matched
            // to the X-Request-Id the client saw.
            tracing::error!(error = ?cause, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if matches!(self, Self::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.body(serde_json::to_vec(&self.problem()).unwrap_or_default())
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        use crate::db::DbError;
        match error {
            DbError::NotFound => Self::NotFound("no such resource".into()),
            DbError::Conflict(detail) => Self::conflict(detail),
            DbError::Stale => Self::PreconditionFailed,
            DbError::Unavailable(cause) => {
                tracing::error!(error = ?cause, "database unavailable");
                Self::Unavailable("the database is unavailable; retry shortly".into())
            }
            DbError::Other(cause) => Self::Internal(cause),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Invalid(errors) => Self::Validation(errors),
            Rejection::Refused(detail) => Self::Forbidden(detail),
            Rejection::WrongState {
                detail,
                current_state,
            } => Self::Conflict {
                detail,
                current_state: Some(current_state),
            },
        }
    }
}

impl From<crate::workflow::Error> for ApiError {
    fn from(error: crate::workflow::Error) -> Self {
        match error {
            crate::workflow::Error::Rejected(rejection) => rejection.into(),
            crate::workflow::Error::Store(store) => store.into(),
        }
    }
}
