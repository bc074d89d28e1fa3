//! The identity provider's keys, fetched from its JWK Set URL and kept fresh.
//!
//! Identity providers (Keycloak, Entra ID, Authentik, Dex…) publish their
//! public keys at a URL and rotate them. The set is fetched at start and
//! cached; it is fetched again when its cache lifetime (`Cache-Control:
//! max-age`) ends, and when a token names a `kid` the cache does not hold —
//! at most once per [`RefreshPolicy::unknown_kid_interval`], so a stream of
//! forged `kid`s cannot turn the service into a load generator against the
//! provider. A fetch that fails keeps the last good keys; `/readyz` and the
//! `clearance_jwks_*` metrics say so.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use reqwest::header::{AGE, CACHE_CONTROL, HeaderMap};
use serde::Serialize;
use tokio::time::Instant;
use url::{Host, Url};
use utoipa::ToSchema;

use super::keys::{KeySet, parse_jwks};

/// A JWK Set larger than this is refused (real ones are a few kilobytes).
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// A JWK Set URL that may be fetched: `https://`, or `http://` to a loopback
/// address when explicitly allowed (tests, a sidecar on the same host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrl(Url);

impl JwksUrl {
    /// `allow_http` is `CLEARANCE_JWT_JWKS_ALLOW_HTTP`.
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, String> {
        let url =
            Url::parse(raw).map_err(|e| format!("CLEARANCE_JWT_JWKS `{raw}` is not a URL: {e}"))?;
        match url.scheme() {
            "https" => Ok(Self(url)),
            "http" if !allow_http => Err(format!(
                "CLEARANCE_JWT_JWKS `{raw}` is plain http: use https://, or set CLEARANCE_JWT_JWKS_ALLOW_HTTP=true for a loopback address"
            )),
            "http" => {
                let loopback = match url.host() {
                    Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                    Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                    _ => false,
                };
                if loopback {
                    Ok(Self(url))
                } else {
                    Err(format!(
                        "CLEARANCE_JWT_JWKS `{raw}`: plain http is allowed only to a loopback address such as 127.0.0.1 or [::1]"
                    ))
                }
            }
            other => Err(format!(
                "CLEARANCE_JWT_JWKS `{raw}` has the scheme `{other}`: use https:// (or a file path)"
            )),
        }
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// When the set is fetched again.
#[derive(Debug, Clone)]
pub struct RefreshPolicy {
    /// At most one fetch per this interval is caused by unknown `kid`s.
    pub unknown_kid_interval: Duration,
    /// The cache lifetime when the answer carries no `max-age`.
    pub default_lifetime: Duration,
    /// `max-age` is clamped to `min_lifetime..=max_lifetime`, so that
    /// `no-cache` does not mean a fetch per second, nor a year-long
    /// `max-age` a key that is never rotated out.
    pub min_lifetime: Duration,
    pub max_lifetime: Duration,
    /// How soon a failed fetch is tried again.
    pub retry_after_failure: Duration,
    /// The whole fetch, connection included.
    pub timeout: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            unknown_kid_interval: Duration::from_secs(60),
            default_lifetime: Duration::from_secs(300),
            min_lifetime: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(24 * 3600),
            retry_after_failure: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RefreshPolicy {
    /// How long an answer with these headers may be cached: `max-age` less
    /// `Age`, clamped; `no-cache`/`no-store` count as zero.
    pub fn lifetime(&self, headers: &HeaderMap) -> Duration {
        let directives: Vec<String> = headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|directive| directive.trim().to_ascii_lowercase())
            .collect();
        let uncacheable = directives
            .iter()
            .any(|d| d == "no-cache" || d == "no-store");
        let max_age = directives
            .iter()
            .find_map(|d| d.strip_prefix("max-age="))
            .and_then(|secs| secs.trim_matches('"').parse::<u64>().ok());
        let age = headers
            .get(AGE)
            .and_then(|value| value.to_str().ok())
            .and_then(|secs| secs.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let lifetime = match (uncacheable, max_age) {
            (true, _) => Duration::ZERO,
            (false, Some(secs)) => Duration::from_secs(secs.saturating_sub(age)),
            (false, None) => self.default_lifetime,
        };
        lifetime.clamp(self.min_lifetime, self.max_lifetime)
    }
}

/// How the remote set is doing, for `/readyz`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JwksHealth {
    /// The JWK Set URL.
    pub url: String,
    /// Keys in use.
    pub keys: usize,
    /// When the keys in use were fetched; `null` before the first success.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Why the last fetch failed; `null` when it succeeded.
    pub error: Option<String>,
    /// Since when fetches fail.
    pub failing_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Failure {
    error: String,
    since: DateTime<Utc>,
}

/// What the fetches so far have left behind.
struct FetchState {
    fetched_at: Option<DateTime<Utc>>,
    /// When the next scheduled fetch is due.
    due: Instant,
    failure: Option<Failure>,
    /// The last fetch an unknown `kid` caused.
    last_unknown_kid_fetch: Option<Instant>,
}

struct JwksMetrics {
    up: IntGauge,
    keys: IntGauge,
    last_success: IntGauge,
    fetches: IntCounterVec,
}

impl JwksMetrics {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            up: IntGauge::new(
                "clearance_jwks_up",
                "1 when the last fetch of the JWK Set URL succeeded, 0 when it failed (the last good keys are kept)",
            )?,
            keys: IntGauge::new("clearance_jwks_keys", "Keys in use from the JWK Set URL")?,
            last_success: IntGauge::new(
                "clearance_jwks_last_success_timestamp_seconds",
                "When the JWK Set URL was last fetched successfully (Unix time)",
            )?,
            fetches: IntCounterVec::new(
                Opts::new(
                    "clearance_jwks_fetches_total",
                    "Fetches of the JWK Set URL by outcome (ok, error)",
                ),
                &["outcome"],
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> anyhow::Result<()> {
        registry.register(Box::new(self.up.clone()))?;
        registry.register(Box::new(self.keys.clone()))?;
        registry.register(Box::new(self.last_success.clone()))?;
        registry.register(Box::new(self.fetches.clone()))?;
        Ok(())
    }
}

/// The keys of a JWK Set URL, shared by every request; see the module
/// documentation.
pub struct RemoteJwks {
    url: JwksUrl,
    client: reqwest::Client,
    policy: RefreshPolicy,
    keys: ArcSwap<KeySet>,
    state: Mutex<FetchState>,
    /// Held during a fetch: concurrent callers wait for it rather than
    /// fetching again.
    fetching: tokio::sync::Mutex<()>,
    metrics: JwksMetrics,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url.to_string())
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Holds no keys until [`Self::start`] or [`Self::refresh`] fetches them.
    pub fn new(url: JwksUrl, policy: RefreshPolicy) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            // A redirect could lead from https to anywhere: refuse it.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(url.as_url().scheme() == "https")
            .user_agent(concat!("clearance/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for the JWK Set URL")?;
        Ok(Self {
            url,
            client,
            policy,
            keys: ArcSwap::from_pointee(KeySet::new()),
            state: Mutex::new(FetchState {
                fetched_at: None,
                due: Instant::now(),
                failure: None,
                last_unknown_kid_fetch: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
            metrics: JwksMetrics::new()?,
        })
    }

    /// Registers the metrics, fetches the set once and keeps it fresh in a
    /// background task (returned). A failing first fetch does not stop the
    /// start: `/readyz` answers 503 until keys arrive.
    pub async fn start(
        self: &Arc<Self>,
        registry: &Registry,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        self.metrics.register(registry)?;
        self.refresh().await;
        Ok(tokio::spawn(self.clone().keep_fresh()))
    }

    /// The key with this `kid`, if the cached set holds it.
    pub(crate) fn key(&self, kid: &str) -> Option<Arc<super::keys::PinnedKey>> {
        self.keys.load().get(kid).cloned()
    }

    /// Called for a token whose `kid` the cache does not hold: fetches the
    /// set again unless an unknown `kid` did so within the policy's
    /// interval, and in any case waits for a fetch already under way.
    pub async fn refresh_for_unknown_kid(&self) {
        let allowed = {
            let mut state = self.state();
            let now = Instant::now();
            let allowed = state
                .last_unknown_kid_fetch
                .is_none_or(|last| now.duration_since(last) >= self.policy.unknown_kid_interval);
            if allowed {
                state.last_unknown_kid_fetch = Some(now);
            }
            allowed
        };
        if allowed {
            self.refresh().await;
        } else {
            drop(self.fetching.lock().await);
        }
    }

    /// Fetches the set now; on failure the keys in use stay.
    pub async fn refresh(&self) {
        let _fetching = self.fetching.lock().await;
        let outcome = self.fetch().await;
        let now = Instant::now();
        let mut state = self.state();
        match outcome {
            Ok((keys, lifetime)) => {
                let fetched_at = Utc::now();
                self.metrics.keys.set(keys.len() as i64);
                self.metrics.up.set(1);
                self.metrics.last_success.set(fetched_at.timestamp());
                self.metrics.fetches.with_label_values(&["ok"]).inc();
                if let Some(failure) = state.failure.take() {
                    tracing::info!(url = %self.url, failing_since = %failure.since, "the JWK Set URL answers again");
                }
                tracing::debug!(url = %self.url, keys = keys.len(), ?lifetime, "JWK Set fetched");
                self.keys.store(Arc::new(keys));
                state.fetched_at = Some(fetched_at);
                state.due = now + lifetime;
            }
            Err(error) => {
                self.metrics.up.set(0);
                self.metrics.fetches.with_label_values(&["error"]).inc();
                tracing::warn!(url = %self.url, %error, kept = self.keys.load().len(), "cannot fetch the JWK Set; keeping the last good keys");
                let since = state
                    .failure
                    .as_ref()
                    .map_or_else(Utc::now, |failure| failure.since);
                state.failure = Some(Failure { error, since });
                state.due = now + self.policy.retry_after_failure;
            }
        }
    }

    /// Fetches again whenever the cache lifetime (or, after a failure, the
    /// retry delay) runs out; runs until aborted.
    pub async fn keep_fresh(self: Arc<Self>) {
        loop {
            let due = self.state().due;
            tokio::time::sleep_until(due).await;
            // A fetch caused by an unknown kid may have moved the due time.
            if self.state().due <= Instant::now() {
                self.refresh().await;
            }
        }
    }

    pub fn health(&self) -> JwksHealth {
        let state = self.state();
        JwksHealth {
            url: self.url.to_string(),
            keys: self.keys.load().len(),
            fetched_at: state.fetched_at,
            error: state.failure.as_ref().map(|f| f.error.clone()),
            failing_since: state.failure.as_ref().map(|f| f.since),
        }
    }

    /// One GET: the parsed keys and how long they may be cached.
    async fn fetch(&self) -> Result<(KeySet, Duration), String> {
        let mut response = self
            .client
            .get(self.url.as_url().clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the server answered {status}"));
        }
        let lifetime = self.policy.lifetime(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the answer is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())?;
        let keys = parse_jwks(&text).map_err(|e| format!("{e:#}"))?;
        Ok((keys, lifetime))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn https_is_accepted_and_http_only_to_loopback_when_allowed() {
        assert!(JwksUrl::parse("https://idp.example.org/certs", false).is_ok());
        let error = JwksUrl::parse("http://127.0.0.1:8081/certs", false).unwrap_err();
        assert!(error.contains("CLEARANCE_JWT_JWKS_ALLOW_HTTP"), "{error}");
        assert!(JwksUrl::parse("http://127.0.0.1:8081/certs", true).is_ok());
        assert!(JwksUrl::parse("http://127.8.9.10/certs", true).is_ok());
        assert!(JwksUrl::parse("http://[::1]:8081/certs", true).is_ok());
        for remote in [
            "http://idp.example.org/certs",
            "http://10.0.0.1/certs",
            "http://localhost/certs",
            "http://[::ffff:127.0.0.1]/certs",
        ] {
            let error = JwksUrl::parse(remote, true).unwrap_err();
            assert!(error.contains("loopback"), "{remote}: {error}");
        }
        let error = JwksUrl::parse("ftp://idp.example.org/certs", true).unwrap_err();
        assert!(error.contains("`ftp`"), "{error}");
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_cache_lifetime_follows_max_age_within_bounds() {
        let policy = RefreshPolicy::default();
        let lifetime = |pairs: &[(&'static str, &'static str)]| policy.lifetime(&headers(pairs));
        assert_eq!(
            lifetime(&[("cache-control", "public, max-age=3600")]),
            Duration::from_secs(3600)
        );
        assert_eq!(
            lifetime(&[("cache-control", "Max-Age=7200, must-revalidate")]),
            Duration::from_secs(7200)
        );
        // What a shared cache already held it for is deducted.
        assert_eq!(
            lifetime(&[("cache-control", "max-age=3600"), ("age", "600")]),
            Duration::from_secs(3000)
        );
        assert_eq!(lifetime(&[]), policy.default_lifetime);
        assert_eq!(
            lifetime(&[("cache-control", "max-age=nonsense")]),
            policy.default_lifetime
        );
        assert_eq!(
            lifetime(&[("cache-control", "no-cache")]),
            policy.min_lifetime
        );
        assert_eq!(
            lifetime(&[("cache-control", "max-age=5")]),
            policy.min_lifetime
        );
        assert_eq!(
            lifetime(&[("cache-control", "max-age=31536000")]),
            policy.max_lifetime
        );
    }
}
