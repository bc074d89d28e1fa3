//! `Idempotency-Key` on creating requests: a client that lost the answer to
//! a `POST` retries with the same key and gets the first answer again
//! (status, body, `Location`, `ETag`, content type) instead of creating a
//! second resource. The same key with another request is a 422; while the
//! first request still runs, a 409.
//!
//! Keys belong to the caller (the token's `sub`) and are kept for
//! [`RETENTION`](crate::db::idempotency::RETENTION). Apply it to a resource
//! with `.wrap(from_fn(idempotency::replay))`; it acts on `POST` only.
//! Requests without a key, or without a valid token (the handler answers
//! 401 for those), pass through untouched.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::extract::{JsonLimit, declared_length, read_limited};
use crate::app::AppState;
use crate::auth::principal::authenticate;
use crate::db::idempotency::{self, Claim, IdempotencyKey, StoredResponse};
use crate::error::ApiError;

static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Marks an answer that is a replay of an earlier one.
static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The headers a replay repeats besides status and body: what a client of a
/// creating request reads.
const REPLAYED_HEADERS: [HeaderName; 3] = [header::LOCATION, header::ETAG, header::CONTENT_TYPE];

const MAX_KEY_LENGTH: usize = 255;

/// The header as the OpenAPI document of a creating request shows it.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters, unique per request. A retry with
    /// the same key and body gets the first answer again, marked
    /// `Idempotent-Replayed: true`; the same key with another request is a
    /// 422, and while the first request still runs a 409. Keys are kept 24
    /// hours, separately for each caller.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
}

/// The middleware: see the module documentation.
pub async fn replay(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST || !req.headers().contains_key(&IDEMPOTENCY_KEY) {
        return pass(req, next).await;
    }
    let Ok(Some(principal)) = authenticate(req.request()).await else {
        return pass(req, next).await;
    };
    let (state, key, fingerprint) = match keyed_request(&mut req).await {
        Ok(keyed) => keyed,
        Err(error) => return Ok(refuse(req, error)),
    };
    let key = IdempotencyKey {
        principal: principal.sub,
        key,
    };
    let claim = {
        let key = key.clone();
        state
            .db
            .write(move |conn| idempotency::claim(conn, &key, &fingerprint, Utc::now()))
            .await
    };
    match claim {
        Ok(Claim::Claimed(stamp)) => run_and_store(req, next, &state, key, stamp).await,
        Ok(Claim::Replay(stored)) => Ok(match replayed(stored) {
            Ok(response) => req.into_response(response),
            Err(error) => refuse(req, error),
        }),
        Ok(Claim::Mismatch) => Ok(refuse(
            req,
            ApiError::Unprocessable(
                "this Idempotency-Key was used for a different request; use a new key for a new request"
                    .into(),
            ),
        )),
        Ok(Claim::InProgress) => Ok(refuse(
            req,
            ApiError::conflict("a request with this key is still being processed"),
        )),
        Err(error) => Ok(refuse(req, error.into())),
    }
}

/// The service's state, the request's key and its fingerprint. The body is
/// read (within the JSON limit) to be fingerprinted, then put back for the
/// handler.
async fn keyed_request(
    req: &mut ServiceRequest,
) -> Result<(web::Data<AppState>, String, String), ApiError> {
    let key = key_of(req)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("AppState is not registered as app data"))
        })?;
    let limit = JsonLimit::of(req.request());
    let declared = declared_length(req.headers());
    let body = read_limited(req.take_payload(), declared, limit).await?;
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |p| p.as_str());
    let fingerprint = fingerprint(req.method().as_str(), target, &body);
    req.set_payload(Payload::from(body));
    Ok((state, key, fingerprint))
}

async fn pass(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn refuse(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(error.error_response())
}

/// Runs the request holding the claim and stores its answer — unless it is
/// a server error, which a retry should get a fresh chance at.
async fn run_and_store(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: &AppState,
    key: IdempotencyKey,
    stamp: DateTime<Utc>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = match next.call(req).await {
        Ok(response) => response,
        Err(error) => {
            release(state, key, stamp).await;
            return Err(error);
        }
    };
    let (req, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let body = match to_bytes(body).await {
        Ok(body) => body,
        Err(error) => {
            release(state, key, stamp).await;
            let cause = anyhow::anyhow!("cannot collect the response body: {}", error.into());
            return Ok(ServiceResponse::new(
                req,
                ApiError::internal(cause).error_response(),
            ));
        }
    };
    if head.status().is_server_error() {
        release(state, key, stamp).await;
    } else {
        let stored = StoredResponse {
            status: head.status().as_u16(),
            headers: REPLAYED_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = head.headers().get(name)?.to_str().ok()?;
                    Some((name.as_str().to_owned(), value.to_owned()))
                })
                .collect(),
            body: body.to_vec(),
        };
        let stored = state
            .db
            .write(move |conn| idempotency::complete(conn, &key, stamp, &stored))
            .await;
        match stored {
            Ok(true) => {}
            // The answer stands either way; a retry may run the request again.
            Ok(false) => tracing::warn!("an idempotency claim was taken over before it completed"),
            Err(error) => tracing::error!(error = %error, "cannot store an idempotent answer"),
        }
    }
    Ok(ServiceResponse::new(
        req,
        head.set_body(body).map_into_boxed_body(),
    ))
}

async fn release(state: &AppState, key: IdempotencyKey, stamp: DateTime<Utc>) {
    let released = state
        .db
        .write(move |conn| idempotency::release(conn, &key, stamp))
        .await;
    if let Err(error) = released {
        // The claim lapses on its own once abandoned.
        tracing::error!(error = %error, "cannot release an idempotency claim");
    }
}

/// The stored answer again, marked as a replay.
fn replayed(stored: StoredResponse) -> Result<HttpResponse, ApiError> {
    let status = StatusCode::from_u16(stored.status).map_err(ApiError::internal)?;
    let mut response = HttpResponse::build(status);
    for (name, value) in stored.headers {
        let name = HeaderName::try_from(name).map_err(ApiError::internal)?;
        let value = HeaderValue::try_from(value).map_err(ApiError::internal)?;
        response.insert_header((name, value));
    }
    response.insert_header((
        IDEMPOTENT_REPLAYED.clone(),
        HeaderValue::from_static("true"),
    ));
    Ok(response.body(stored.body))
}

/// The request's key: one header of 1 to 255 visible ASCII characters,
/// else 400.
fn key_of(req: &ServiceRequest) -> Result<String, ApiError> {
    let mut values = req.headers().get_all(&IDEMPOTENCY_KEY);
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::BadRequest(
            "send exactly one Idempotency-Key header".into(),
        ));
    };
    parse_key(value.as_bytes())
}

fn parse_key(raw: &[u8]) -> Result<String, ApiError> {
    if (1..=MAX_KEY_LENGTH).contains(&raw.len()) && raw.iter().all(u8::is_ascii_graphic) {
        // Visible ASCII is valid UTF-8.
        Ok(String::from_utf8_lossy(raw).into_owned())
    } else {
        Err(ApiError::BadRequest(format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"
        )))
    }
}

/// What makes two requests with one key "the same": method, path and query,
/// and body. A JSON body is compared by meaning (object keys sorted
/// recursively, whitespace ignored); any other body byte for byte.
pub fn fingerprint(method: &str, target: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(target.as_bytes());
    hasher.update([0]);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut json) => {
            // serde_json keeps insertion order in this build
            // (`preserve_order`), so sort explicitly.
            json.sort_all_objects();
            hasher.update(b"json\0");
            hasher.update(json.to_string().as_bytes());
        }
        Err(_) => {
            hasher.update(b"raw\0");
            hasher.update(body);
        }
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/api/v1/manufacturers";

    #[test]
    fn json_bodies_are_compared_by_meaning() {
        let a = fingerprint(
            "POST",
            PATH,
            br#"{"name":"Xiaomi","nested":{"b":1,"a":[{"y":2,"x":1}]}}"#,
        );
        let b = fingerprint(
            "POST",
            PATH,
            b"{ \"nested\" : {\"a\":[{\"x\":1,\"y\":2}],\"b\":1},\n \"name\":\"Xiaomi\" }",
        );
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("POST", PATH, br#"{"name":"Xiaomi"}"#));
        assert_ne!(
            fingerprint("POST", PATH, b"[1,2]"),
            fingerprint("POST", PATH, b"[2,1]"),
            "array order matters"
        );
    }

    #[test]
    fn method_path_and_query_count() {
        let body = br#"{"name":"Xiaomi"}"#;
        let first = fingerprint("POST", PATH, body);
        assert_ne!(first, fingerprint("PUT", PATH, body));
        assert_ne!(first, fingerprint("POST", "/api/v1/models", body));
        assert_ne!(first, fingerprint("POST", &format!("{PATH}?x=1"), body));
    }

    #[test]
    fn other_bodies_are_compared_byte_for_byte() {
        assert_eq!(
            fingerprint("POST", PATH, b"a,b\n"),
            fingerprint("POST", PATH, b"a,b\n")
        );
        assert_ne!(
            fingerprint("POST", PATH, b"a,b\n"),
            fingerprint("POST", PATH, b"a, b\n")
        );
        assert_ne!(
            fingerprint("POST", PATH, b"{\"a\":1"),
            fingerprint("POST", PATH, b"{\"a\": 1"),
        );
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        for good in [
            &b"k"[..],
            b"8e03978e-40d5-43e8-bc93-6894a57f9324",
            &[b'x'; 255],
        ] {
            assert!(parse_key(good).is_ok(), "{good:?}");
        }
        for bad in [
            &b""[..],
            b"with space",
            b"tab\t",
            "clé".as_bytes(),
            &[b'x'; 256],
        ] {
            assert!(
                matches!(parse_key(bad), Err(ApiError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }
}
