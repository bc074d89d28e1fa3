//! Operations: liveness, readiness, the OpenAPI document.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::AuthKeys;
use crate::auth::jwks_url::JwksHealth;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`; `degraded` (ready, but something needs attention: see
    /// `reason`); `unavailable` (not ready, with HTTP status 503).
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Why the service is not ready or degraded, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The identity provider's JWK Set URL, when keys come from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwksHealth>,
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
        jwks: None,
    })
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    summary = "The database answers, its migrations are applied, and token keys are at hand",
    description = "503 while the database is unreachable or migrations are pending, or while \
        no keys could yet be fetched from the JWK Set URL. A JWK Set URL that stops answering \
        after keys were fetched leaves the service ready on the last good keys: \
        `status` is then `degraded` and `jwks.error` says why.",
    responses(
        (status = 200, body = Health),
        (status = 503, body = Health),
    )
)]
pub async fn readyz(state: web::Data<AppState>, keys: web::Data<AuthKeys>) -> HttpResponse {
    let jwks = keys.jwks_health();
    let (ready, status, reason) = readiness(state.db.readiness().await, jwks.as_ref());
    let health = Health {
        status,
        reason,
        jwks,
    };
    if ready {
        HttpResponse::Ok().json(health)
    } else {
        HttpResponse::ServiceUnavailable().json(health)
    }
}

/// Whether to take traffic, the status word, and why when not plainly ok.
fn readiness(
    database: Result<(), String>,
    jwks: Option<&JwksHealth>,
) -> (bool, &'static str, Option<String>) {
    match (database, jwks) {
        (Err(reason), _) => (false, "unavailable", Some(reason)),
        (Ok(()), Some(jwks)) if jwks.keys == 0 => (
            false,
            "unavailable",
            Some(format!(
                "no signing keys from the JWK Set at {} yet: {}",
                jwks.url,
                jwks.error.as_deref().unwrap_or("not fetched")
            )),
        ),
        (
            Ok(()),
            Some(JwksHealth {
                url,
                error: Some(error),
                keys,
                ..
            }),
        ) => (
            true,
            "degraded",
            Some(format!(
                "the JWK Set at {url} cannot be fetched ({error}); the {keys} keys fetched before are still used"
            )),
        ),
        (Ok(()), _) => (true, "ok", None),
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
