//! Per-client rate limits on what anyone may call without an account:
//! lookups, subscribing, and the pages links in mail open. A token bucket
//! per client address and kind of request (GCRA, the `governor` crate),
//! refilled at `per_minute` and holding `burst`; a request that finds it
//! empty is a 429 with `Retry-After` — a page for browsers, problem+json for
//! programs. IPv6 clients are counted per /64 (one host usually holds a
//! whole /64). Buckets that are full again are forgotten every minute, so
//! memory follows the clients of the last minute.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use prometheus::{IntCounterVec, Opts, Registry};

use super::client::client_address;
use crate::config::{Rate, Settings};
use crate::error::ApiError;
use crate::pages::{self, MessagePage};

/// The kinds of request limited, each with its own bucket per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    Lookup,
    Subscribe,
    LinkPages,
}

impl RateClass {
    /// The kind of request to route `pattern` with `method`, if limited.
    pub fn of(pattern: &str, method: &Method) -> Option<Self> {
        match pattern {
            "/api/v1/lookup" | "/lookup" => Some(Self::Lookup),
            "/api/v1/subscriptions" => Some(Self::Subscribe),
            // GET is the empty form; only posting it subscribes.
            "/subscribe" if method == Method::POST => Some(Self::Subscribe),
            "/api/v1/subscriptions/confirm"
            | "/confirm"
            | "/unsubscribe"
            | "/manage"
            | "/acknowledge" => Some(Self::LinkPages),
            _ => None,
        }
    }

    /// Whether any method of route `pattern` is limited.
    pub fn limits_route(pattern: &str) -> bool {
        Self::of(pattern, &Method::POST).is_some()
    }

    fn label(self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::Subscribe => "subscribe",
            Self::LinkPages => "link_pages",
        }
    }
}

/// The buckets of every client, shared by the HTTP workers.
pub struct RateLimiter {
    lookup: DefaultKeyedRateLimiter<IpAddr>,
    subscribe: DefaultKeyedRateLimiter<IpAddr>,
    link_pages: DefaultKeyedRateLimiter<IpAddr>,
    exempt: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
    clock: DefaultClock,
    /// `clearance_rate_limited_total{class}`: requests refused.
    refused: IntCounterVec,
}

impl RateLimiter {
    /// The limits the settings give, counting refusals in `registry`.
    pub fn new(settings: &Settings, registry: &Registry) -> anyhow::Result<Self> {
        let limits = &settings.rate_limits;
        let keyed = |rate: Rate| {
            DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(rate.per_minute).allow_burst(rate.burst),
            )
        };
        let refused = IntCounterVec::new(
            Opts::new(
                "clearance_rate_limited_total",
                "Requests refused with 429 by the per-client rate limits",
            ),
            &["class"],
        )?;
        Ok(Self {
            lookup: keyed(limits.lookup),
            subscribe: keyed(limits.subscribe),
            link_pages: keyed(limits.link_pages),
            exempt: limits.exempt.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            clock: DefaultClock::default(),
            refused: crate::metrics::registered(registry, refused)?,
        })
    }

    fn bucket(&self, class: RateClass) -> &DefaultKeyedRateLimiter<IpAddr> {
        match class {
            RateClass::Lookup => &self.lookup,
            RateClass::Subscribe => &self.subscribe,
            RateClass::LinkPages => &self.link_pages,
        }
    }

    /// Takes a token for a request of `class` from `peer`; the error is how
    /// long until the client may try again.
    pub fn check(
        &self,
        class: RateClass,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<(), Duration> {
        let client = client_address(peer, headers, &self.trusted_proxies);
        if self.exempt.iter().any(|net| net.contains(&client)) {
            return Ok(());
        }
        self.bucket(class)
            .check_key(&per_host(client))
            .map_err(|not_until| {
                self.refused.with_label_values(&[class.label()]).inc();
                not_until.wait_time_from(self.clock.now())
            })
    }

    /// Forgets, every minute, the clients whose buckets are full again,
    /// until the task is dropped.
    pub async fn forget_idle_clients(self: std::sync::Arc<Self>) {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticker.tick().await;
            for class in [
                RateClass::Lookup,
                RateClass::Subscribe,
                RateClass::LinkPages,
            ] {
                let bucket = self.bucket(class);
                bucket.retain_recent();
                bucket.shrink_to_fit();
            }
        }
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64.
fn per_host(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

/// Route middleware: a 429 instead of the route when the client's bucket
/// for it is empty.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let class = req
        .match_pattern()
        .and_then(|pattern| RateClass::of(&pattern, req.method()));
    let limiter = req.app_data::<web::Data<RateLimiter>>();
    if let (Some(class), Some(limiter), Some(peer)) = (class, limiter, req.peer_addr())
        && let Err(wait) = limiter.check(class, peer.ip(), req.headers())
    {
        let response = too_many_requests(req.request(), wait);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The 429: a page for a browser or for a page's route, else a problem.
fn too_many_requests(req: &HttpRequest, wait: Duration) -> HttpResponse {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = if !req.path().starts_with("/api/") || pages::wants_html(req) {
        pages::html(
            req,
            StatusCode::TOO_MANY_REQUESTS,
            &MessagePage {
                title: "Too many requests",
                paragraphs: vec![
                    "Too many requests came from your address in a short time.".into(),
                    format!("Please wait {seconds} seconds, then try again."),
                ],
            },
        )
    } else {
        ApiError::TooManyRequests.error_response()
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_limited_by_kind_and_the_empty_form_is_not() {
        assert_eq!(
            RateClass::of("/api/v1/lookup", &Method::GET),
            Some(RateClass::Lookup)
        );
        assert_eq!(
            RateClass::of("/subscribe", &Method::POST),
            Some(RateClass::Subscribe)
        );
        assert_eq!(RateClass::of("/subscribe", &Method::GET), None);
        assert_eq!(
            RateClass::of("/unsubscribe", &Method::POST),
            Some(RateClass::LinkPages)
        );
        assert_eq!(RateClass::of("/api/v1/models/{id}", &Method::GET), None);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(per_host(a), per_host(b));
        assert_ne!(per_host(a), per_host(other));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(per_host(v4), v4);
    }
}
