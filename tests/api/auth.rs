//! Authentication and authorisation through the HTTP API: which bearer tokens
//! are refused (401 with `WWW-Authenticate: Bearer` and a problem), which
//! signed tokens are trusted, which role may call which registry endpoint, and
//! when the lookup is public.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clearance::auth::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, SpawnOptions, TestApp, body, fixture, problem};

crate::backend_tests!(
    a_token_that_cannot_be_trusted_is_refused_with_401,
    rs256_and_es256_tokens_signed_with_jwks_keys_are_accepted,
    each_role_reaches_exactly_the_registry_endpoints_it_may_use,
    lookup_is_public_by_default_but_a_bad_token_is_still_refused,
);

/// Starts its own app (public lookup switched off).
mod private_lookup {
    use super::*;
    crate::backend_tests!(with SpawnOptions { public_lookup: false, ..SpawnOptions::default() } => lookup_needs_a_reader_token_when_public_lookup_is_off);
}

/// Valid claims for the service's issuer and audience, as an identity
/// provider would issue them.
pub(crate) fn claims(roles: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": "idp-user-1",
        "email": "idp-user-1@example.org",
        "name": "IdP User",
        "roles": roles,
        "iss": "clearance",
        "aud": "clearance",
        "iat": now,
        "exp": now + 3600,
    })
}

/// Reader claims with one claim replaced.
fn reader_claims_with(claim: &str, value: Value) -> Value {
    let mut claims = claims(&["reader"]);
    claims[claim] = value;
    claims
}

pub(crate) fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("the test token can be signed")
}

/// Signed with the service's own HS256 secret, like `app.token(..)`.
fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        claims,
    )
}

pub(crate) fn rsa_key(file: &str) -> EncodingKey {
    let pem = std::fs::read(fixture(file)).expect("the RSA key fixture");
    EncodingKey::from_rsa_pem(&pem).expect("an RSA private key")
}

fn ec_key(file: &str) -> EncodingKey {
    let pem = std::fs::read(fixture(file)).expect("the EC key fixture");
    EncodingKey::from_ec_pem(&pem).expect("an EC private key")
}

/// An unsigned token: `{"alg":"none"}`, the claims and an empty signature.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// `GET path` with this `Authorization` header value, or none.
pub(crate) async fn get_with(app: &TestApp, path: &str, authorization: Option<&str>) -> Response {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    request.send().await.expect("request sent")
}

/// Asserts a 401 that asks for a bearer token and carries a problem; returns
/// the problem.
pub(crate) async fn assert_unauthorized(response: Response, why: &str) -> Value {
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    if status != 401 {
        panic!(
            "{why}: expected 401, got {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer"),
        "{why}: the WWW-Authenticate header"
    );
    problem(response, 401).await
}

async fn a_token_that_cannot_be_trusted_is_refused_with_401(app: TestApp) {
    // The control: these claims, correctly signed, are let in. Every case
    // below differs from it in one respect only.
    let response = get_with(
        &app,
        "/api/v1/models",
        Some(&format!("Bearer {}", hs256(&claims(&["reader"])))),
    )
    .await;
    assert_eq!(response.status(), 200, "the well-signed control token");

    let hour_ago = chrono::Utc::now().timestamp() - 3600;
    let in_an_hour = chrono::Utc::now().timestamp() + 3600;
    let reader = claims(&["reader"]);
    let other_secret = EncodingKey::from_secret(b"another-secret-of-at-least-32-characters!!");
    // (Authorization header, a fragment of the reason given, the case)
    let cases: Vec<(Option<String>, &str, &str)> = vec![
        (None, "bearer token is required", "no Authorization header"),
        (
            Some("Basic dXNlcjpwYXNzd29yZA==".into()),
            "Bearer <token>",
            "Basic credentials",
        ),
        (
            Some(format!("Bearer {}", unsigned(&reader))),
            "algorithm",
            "alg: none, no signature",
        ),
        (
            Some(format!(
                "Bearer {}",
                hs256(&reader_claims_with("aud", json!("another-service")))
            )),
            "audience",
            "a token for another audience",
        ),
        (
            Some(format!(
                "Bearer {}",
                hs256(&reader_claims_with("iss", json!("https://idp.example.org")))
            )),
            "issuer",
            "a token from another issuer",
        ),
        (
            Some(format!(
                "Bearer {}",
                hs256(&reader_claims_with("exp", json!(hour_ago)))
            )),
            "expired",
            "a token that expired an hour ago",
        ),
        (
            Some(format!(
                "Bearer {}",
                hs256(&reader_claims_with("nbf", json!(in_an_hour)))
            )),
            "not valid yet",
            "a token not valid before an hour from now",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, None, &other_secret, &reader)
            )),
            "signature",
            "HS256 signed with another secret",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(
                    Algorithm::RS256,
                    Some("test-rsa"),
                    &rsa_key("other-rsa-private.pem"),
                    &reader
                )
            )),
            "signature",
            "RS256 under kid test-rsa signed with a key not in the JWKS",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(
                    Algorithm::RS256,
                    Some("unknown-kid"),
                    &rsa_key("rsa-private.pem"),
                    &reader
                )
            )),
            "unknown signing key",
            "RS256 naming a kid the JWKS does not have",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(
                    Algorithm::HS256,
                    Some("test-rsa"),
                    &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
                    &reader
                )
            )),
            "not allowed for its key",
            "HS256 naming the RSA key's kid (algorithm confusion)",
        ),
        (Some("Bearer garbage".into()), "well-formed", "garbage"),
        (
            Some("Bearer not.a.jwt".into()),
            "malformed",
            "garbage in the shape of a JWT",
        ),
    ];
    for (authorization, reason, why) in cases {
        let problem = assert_unauthorized(
            get_with(&app, "/api/v1/models", authorization.as_deref()).await,
            why,
        )
        .await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(reason),
            "{why}: the reason should mention `{reason}`: {detail}"
        );
    }
}

async fn rs256_and_es256_tokens_signed_with_jwks_keys_are_accepted(app: TestApp) {
    let rsa = rsa_key("rsa-private.pem");
    let ec = ec_key("ec-private.pem");
    let cases = [
        (
            sign(
                Algorithm::RS256,
                Some("test-rsa"),
                &rsa,
                &claims(&["reader"]),
            ),
            "RS256, kid test-rsa",
        ),
        (
            sign(Algorithm::ES256, Some("test-ec"), &ec, &claims(&["reader"])),
            "ES256, kid test-ec",
        ),
    ];
    for (token, why) in cases {
        let bearer = format!("Bearer {token}");
        let response = get_with(&app, "/api/v1/models", Some(&bearer)).await;
        assert_eq!(response.status(), 200, "{why}: a reader may list models");
        assert!(
            body(response).await["items"].is_array(),
            "{why}: a page of models"
        );
        // Authenticated, so the roles of the token decide: a reader may not write.
        let response = app
            .client
            .post(format!("{}/api/v1/manufacturers", app.address))
            .header(AUTHORIZATION, &bearer)
            .json(&json!({"name": "Xiaomi", "country": "CN"}))
            .send()
            .await
            .expect("request sent");
        problem(response, 403).await;
    }
    assert_eq!(app.count("/api/v1/manufacturers").await, 0);
}

/// How far a caller gets.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// No token: 401 everywhere.
    Anonymous,
    /// A valid token with no role this service knows: 403 everywhere.
    NoRole,
    /// Reads only.
    Read,
    /// Reads and writes.
    ReadWrite,
}

async fn each_role_reaches_exactly_the_registry_endpoints_it_may_use(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let model_id = model["id"].as_str().unwrap();
    // Most privileged first, so a refused PATCH would overwrite the last
    // accepted one and show in the end state.
    let callers = [
        ("admin", Some(app.token(Role::Admin)), Access::ReadWrite),
        (
            "approver",
            Some(app.token(Role::Approver)),
            Access::ReadWrite,
        ),
        ("analyst", Some(app.token(Role::Analyst)), Access::ReadWrite),
        ("reader", Some(app.token(Role::Reader)), Access::Read),
        (
            "visitor",
            Some(hs256(&claims(&["visitor"]))),
            Access::NoRole,
        ),
        ("no token", None, Access::Anonymous),
    ];
    for (caller, token, access) in callers {
        // Distinct names per caller, so that every allowed create succeeds.
        let endpoints: [(Method, String, Option<Value>, u16); 7] = [
            (
                Method::POST,
                "/api/v1/manufacturers".into(),
                Some(json!({"name": format!("Maker by {caller}"), "country": "CN", "aliases": []})),
                201,
            ),
            (Method::GET, "/api/v1/manufacturers".into(), None, 200),
            (
                Method::GET,
                format!("/api/v1/manufacturers/{maker}"),
                None,
                200,
            ),
            (
                Method::POST,
                "/api/v1/models".into(),
                Some(
                    json!({"manufacturer_id": maker, "name": format!("Model by {caller}"), "category": "phone"}),
                ),
                201,
            ),
            (Method::GET, "/api/v1/models".into(), None, 200),
            (Method::GET, format!("/api/v1/models/{model_id}"), None, 200),
            (
                Method::PATCH,
                format!("/api/v1/models/{model_id}"),
                Some(json!({"aliases": [format!("Alias by {caller}")]})),
                200,
            ),
        ];
        for (method, path, payload, success) in endpoints {
            let writes = method != Method::GET;
            let expected = match (access, writes) {
                (Access::Anonymous, _) => 401,
                (Access::NoRole, _) | (Access::Read, true) => 403,
                (Access::Read, false) | (Access::ReadWrite, _) => success,
            };
            let why = format!("{caller}: {method} {path}");
            let mut request = app.client.request(method, format!("{}{path}", app.address));
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            if let Some(payload) = &payload {
                request = request.json(payload);
            }
            let response = request.send().await.expect("request sent");
            match expected {
                401 => {
                    assert_unauthorized(response, &why).await;
                }
                403 => {
                    assert_eq!(response.status(), 403, "{why}");
                    problem(response, 403).await;
                }
                _ => assert_eq!(response.status(), expected, "{why}"),
            }
        }
    }
    // Only the three writers' creates landed, and the last PATCH that was
    // allowed is the one that stands.
    assert_eq!(
        app.count("/api/v1/manufacturers").await,
        1 + 3,
        "manufacturers"
    );
    assert_eq!(app.count("/api/v1/models").await, 1 + 3, "models");
    let model = body(
        app.get(&format!("/api/v1/models/{model_id}"), Some(Role::Reader))
            .await,
    )
    .await;
    assert_eq!(
        model["aliases"],
        json!(["Alias by analyst"]),
        "refused PATCHes change nothing"
    );
}

async fn lookup_is_public_by_default_but_a_bad_token_is_still_refused(app: TestApp) {
    let response = get_with(&app, "/api/v1/lookup?q=x", None).await;
    assert_eq!(response.status(), 200, "anonymous lookup");
    assert_eq!(body(response).await["matches"], json!([]));
    let bearer = format!("Bearer {}", app.token(Role::Reader));
    assert_eq!(
        get_with(&app, "/api/v1/lookup?q=x", Some(&bearer))
            .await
            .status(),
        200,
        "a reader's lookup"
    );
    let visitor = format!("Bearer {}", hs256(&claims(&["visitor"])));
    assert_eq!(
        get_with(&app, "/api/v1/lookup?q=x", Some(&visitor))
            .await
            .status(),
        200,
        "a valid token without a known role may ask what anyone may ask"
    );
    // A token that is present but invalid is never taken for an anonymous call.
    let expired = hs256(&reader_claims_with(
        "exp",
        json!(chrono::Utc::now().timestamp() - 3600),
    ));
    let response = get_with(
        &app,
        "/api/v1/lookup?q=x",
        Some(&format!("Bearer {expired}")),
    )
    .await;
    assert_unauthorized(response, "an expired token on the public lookup").await;
}

async fn lookup_needs_a_reader_token_when_public_lookup_is_off(app: TestApp) {
    assert_unauthorized(
        get_with(&app, "/api/v1/lookup?q=x", None).await,
        "anonymous lookup",
    )
    .await;
    let visitor = format!("Bearer {}", hs256(&claims(&["visitor"])));
    assert_eq!(
        get_with(&app, "/api/v1/lookup?q=x", Some(&visitor))
            .await
            .status(),
        403,
        "a token without the reader role"
    );
    let response = app.get("/api/v1/lookup?q=x", Some(Role::Reader)).await;
    assert_eq!(response.status(), 200, "a reader's lookup");
    assert_eq!(body(response).await["matches"], json!([]));
}
