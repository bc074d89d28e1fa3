//! Requests in `/metrics`: a count and a latency histogram per route,
//! method and status, and how many are being handled now. Every label
//! comes from a fixed set — the route's pattern (`/api/v1/models/{id}`) or
//! `other` for a path no route serves, the standard methods or `other` — so
//! no request, however odd, adds a series: the scrape stays the same size
//! whatever clients send.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The request series, registered in the registry `/metrics` serves.
#[derive(Clone)]
pub struct RequestMetrics {
    total: IntCounterVec,
    duration: HistogramVec,
    /// Requests arrived and not yet answered: what a graceful stop waits for.
    in_flight: IntGauge,
}

impl RequestMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let labels = ["endpoint", "method", "status"];
        let total = IntCounterVec::new(
            Opts::new("clearance_http_requests_total", "HTTP requests answered"),
            &labels,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "clearance_http_requests_duration_seconds",
                "Time from a request's arrival to its response's head",
            ),
            &labels,
        )?;
        let in_flight = IntGauge::new(
            "clearance_http_requests_in_flight",
            "HTTP requests arrived and not yet answered",
        )?;
        Ok(Self {
            total: registered(registry, total)?,
            duration: registered(registry, duration)?,
            in_flight: registered(registry, in_flight)?,
        })
    }
}

/// `metric`, once added to `registry` (the one `/metrics` serves).
pub fn registered<M>(registry: &Registry, metric: M) -> prometheus::Result<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// The label of a method: one of the standard ones, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// App middleware: counts and times every request.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<RequestMetrics>>().cloned();
    let method = method_label(req.method());
    // Counted down on drop: also when the client goes away mid-request.
    let _in_flight = metrics.as_ref().map(|m| InFlight::begin(&m.in_flight));
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let endpoint = response.request().match_pattern();
        let status = response.status();
        let labels = [
            endpoint.as_deref().unwrap_or("other"),
            method,
            status.as_str(),
        ];
        metrics.total.with_label_values(&labels).inc();
        metrics
            .duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// One request being handled, for as long as this lives.
struct InFlight(IntGauge);

impl InFlight {
    fn begin(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `GET /metrics`: the registry in the Prometheus text format.
pub async fn scrape(registry: web::Data<Registry>) -> HttpResponse {
    let mut text = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut text) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(error) => crate::error::ApiError::internal(error).error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        for odd in ["X12345", "PROPFIND", "get"] {
            let method = Method::from_bytes(odd.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{odd}");
        }
    }
}
