//! Operations: liveness, readiness, the OpenAPI document.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Why the service is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    summary = "The process is up",
    responses(
        (status = 200, body = Health),
    )
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        reason: None,
    })
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    summary = "The database answers and its migrations are applied",
    responses(
        (status = 200, body = Health),
        (status = 503, body = Health),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.db.readiness().await {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "ok",
            reason: None,
        }),
        Err(reason) => HttpResponse::ServiceUnavailable().json(Health {
            status: "unavailable",
            reason: Some(reason),
        }),
    }
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    summary = "This API's OpenAPI 3.1 document",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
    )
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::to_json())
}
