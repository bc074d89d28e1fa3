//! Tokens from an identity provider whose keys are at a JWK Set URL (a
//! local server that rotates its keys and goes away when told): a rotated
//! key is picked up, forged `kid`s do not make the service hammer the
//! provider, an unreachable provider leaves the last good keys in use and
//! shows in `/readyz` and `/metrics`; and roles read from a nested claim.

use std::time::Duration;

use clearance::auth::jwks_url::{RefreshPolicy, RemoteJwks};
use clearance::config::JwksSource;
use futures_util::future::join_all;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::auth::{assert_unauthorized, claims, get_with, rsa_key, sign};
use crate::helpers::{Backend, SpawnOptions, TestApp, body, wait_for};
use crate::jwks_server::{JwksServer, initial_set, rotated_set};

/// The service, with its keys at `url` (plain http to loopback, allowed).
async fn app_with_jwks_at(url: &str) -> TestApp {
    let options = SpawnOptions {
        jwt_jwks: JwksSource::parse(url, true).expect("a loopback JWK Set URL"),
        ..SpawnOptions::default()
    };
    TestApp::spawn_with(Backend::Sqlite, options).await
}

/// `Bearer` and a reader token signed with the fixture key `file` under `kid`.
fn bearer(file: &str, kid: &str) -> String {
    let token = sign(
        Algorithm::RS256,
        Some(kid),
        &rsa_key(file),
        &claims(&["reader"]),
    );
    format!("Bearer {token}")
}

fn before_rotation() -> String {
    bearer("rsa-private.pem", "test-rsa")
}

fn after_rotation() -> String {
    bearer("other-rsa-private.pem", "other-rsa")
}

async fn status_of(app: &TestApp, authorization: &str) -> u16 {
    get_with(app, "/api/v1/models", Some(authorization))
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_once_and_forged_kids_fetch_nothing() {
    let server = JwksServer::start(&initial_set(), "public, max-age=3600").await;
    let app = app_with_jwks_at(&server.url()).await;
    assert_eq!(server.fetches(), 1, "the set is fetched at start");
    assert_eq!(status_of(&app, &before_rotation()).await, 200);
    assert_eq!(server.fetches(), 1, "a known kid is served from the cache");

    server.rotate(&rotated_set());
    assert_eq!(
        status_of(&app, &after_rotation()).await,
        200,
        "a token signed with the new key is accepted at once"
    );
    assert_eq!(server.fetches(), 2, "its unknown kid fetched the set once");
    let refused = get_with(&app, "/api/v1/models", Some(&before_rotation())).await;
    let problem = assert_unauthorized(refused, "the key rotated out").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("test-rsa"),
        "{problem}"
    );

    // A storm of tokens naming kids nobody has: within the minute after
    // the last such fetch, none of them reaches the provider.
    let storm = (0..30).map(|i| {
        let forged = bearer("other-rsa-private.pem", &format!("forged-{i}"));
        let app = &app;
        async move { status_of(app, &forged).await }
    });
    let statuses = join_all(storm).await;
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    assert_eq!(server.fetches(), 2, "the storm fetched nothing");
    assert_eq!(status_of(&app, &after_rotation()).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_leaves_the_last_good_keys_in_use_and_readyz_says_so() {
    let mut server = JwksServer::start(&initial_set(), "max-age=3600").await;
    let app = app_with_jwks_at(&server.url()).await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let ready = body(ready).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["jwks"]["keys"], 2, "{ready}");
    assert_eq!(ready["jwks"]["error"], Value::Null, "{ready}");
    assert_eq!(app.metric("clearance_jwks_up").await, Some(1.0));
    assert_eq!(app.metric("clearance_jwks_keys").await, Some(2.0));

    server.stop().await;
    // A new kid sends the service to the provider, which is gone.
    let refused = get_with(&app, "/api/v1/models", Some(&after_rotation())).await;
    assert_unauthorized(refused, "a kid only the unreachable provider knows").await;

    let ready = app.get("/readyz", None).await;
    assert_eq!(
        ready.status(),
        200,
        "still ready: the last good keys are at hand"
    );
    let ready = body(ready).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("the JWK Set at {}", server.url())),
        "{ready}"
    );
    assert!(ready["jwks"]["error"].is_string(), "{ready}");
    assert!(ready["jwks"]["failing_since"].is_string(), "{ready}");
    assert_eq!(ready["jwks"]["keys"], 2, "{ready}");
    assert_eq!(app.metric("clearance_jwks_up").await, Some(0.0));
    assert_eq!(
        app.metric("clearance_jwks_fetches_total{outcome=\"error\"}")
            .await,
        Some(1.0)
    );
    assert_eq!(
        status_of(&app, &before_rotation()).await,
        200,
        "tokens signed with a cached key still pass"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_from_the_provider_the_service_is_not_ready() {
    let mut server = JwksServer::start(&initial_set(), "max-age=3600").await;
    let url = server.url();
    server.stop().await;
    let app = app_with_jwks_at(&url).await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 503);
    let ready = body(ready).await;
    assert_eq!(ready["status"], "unavailable", "{ready}");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .starts_with("no signing keys from the JWK Set"),
        "{ready}"
    );
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    // The service's own tokens do not depend on the provider.
    let own = app
        .get("/api/v1/models", Some(clearance::auth::Role::Reader))
        .await;
    assert_eq!(own.status(), 200);
}

/// The cache lifetime, driven by `Cache-Control: max-age`, with the lower
/// bound taken down so that the test waits a second rather than a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_set_is_fetched_again_when_its_max_age_runs_out_and_recovers_after_an_outage() {
    let policy = RefreshPolicy {
        min_lifetime: Duration::from_millis(100),
        retry_after_failure: Duration::from_millis(200),
        ..RefreshPolicy::default()
    };
    let start = |server: &JwksServer| {
        let url = match JwksSource::parse(&server.url(), true).unwrap() {
            JwksSource::Url(url) => url,
            JwksSource::File(_) => unreachable!("a URL"),
        };
        std::sync::Arc::new(RemoteJwks::new(url, policy.clone()).unwrap())
    };
    let mut short = JwksServer::start(&initial_set(), "max-age=1").await;
    let long = JwksServer::start(&initial_set(), "max-age=3600").await;
    let short_lived = start(&short);
    let long_lived = start(&long);
    let registry = prometheus::Registry::new();
    let tasks = [
        short_lived.start(&registry).await.unwrap(),
        long_lived
            .start(&prometheus::Registry::new())
            .await
            .unwrap(),
    ];
    assert_eq!((short.fetches(), long.fetches()), (1, 1));
    let first_fetched = std::time::Instant::now();
    wait_for("two more fetches", Duration::from_secs(10), async || {
        short.fetches() >= 3
    })
    .await;
    // Each fetch is due a second after the one before completed: a third
    // fetch sooner than about two seconds after the first is too often.
    let took = first_fetched.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "fetched again after each second, no more often: three fetches in {took:?}"
    );
    assert_eq!(long.fetches(), 1, "an hour has not passed");

    short.stop().await;
    wait_for("the outage to show", Duration::from_secs(5), async || {
        short_lived.health().error.is_some()
    })
    .await;
    assert_eq!(short_lived.health().keys, 2, "the last good keys stay");
    short.rotate(&rotated_set());
    short.restart();
    wait_for(
        "the rotated set after the outage",
        Duration::from_secs(5),
        async || short_lived.health().error.is_none() && short_lived.health().keys == 1,
    )
    .await;
    for task in tasks {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_read_from_the_configured_nested_claim() {
    let options = SpawnOptions {
        jwt_roles_claim: Some("realm_access.roles".into()),
        ..SpawnOptions::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;
    let mut keycloak = claims(&[]);
    keycloak.as_object_mut().unwrap().remove("roles");
    keycloak["realm_access"] = json!({"roles": ["analyst", "offline_access"]});
    let token = sign(
        Algorithm::RS256,
        Some("test-rsa"),
        &rsa_key("rsa-private.pem"),
        &keycloak,
    );
    let created = app
        .client
        .post(format!("{}/api/v1/manufacturers", app.address))
        .bearer_auth(&token)
        .json(&json!({"name": "Xiaomi", "country": "CN", "aliases": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "an analyst by realm_access.roles");
    let flat = bearer("rsa-private.pem", "test-rsa");
    let refused = get_with(&app, "/api/v1/models", Some(&flat)).await;
    let problem = assert_unauthorized(refused, "roles only at the top level").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("realm_access.roles"),
        "{problem}"
    );
    let own = app
        .get("/api/v1/models", Some(clearance::auth::Role::Reader))
        .await;
    assert_eq!(own.status(), 200, "the service's own tokens keep `roles`");
}
