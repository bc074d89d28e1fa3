//! The office's view of an advisory's mail: per recipient whether it went
//! out, re-queueing what failed, acknowledgements and reminders.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{PageParams, PageRequest, query_param};
use crate::app::AppState;
use crate::auth::{Admin, Authorized};
use crate::db::outbox::{self, Delivery};
use crate::db::{acknowledgements, advisories};
use crate::domain::mail::DeliveryState;
use crate::error::ApiError;
use crate::workflow::deliveries::{self, acknowledged_revision};

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryParams {
    #[param(value_type = Option<DeliveryState>)]
    state: Option<String>,
}

/// How many mails of the advisory are in each state, and whether any are
/// still on their way.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliverySummary {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub retrying: i64,
    pub failed: i64,
    pub suppressed: i64,
    /// True only when no mail of the advisory is still pending.
    pub delivered: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub summary: DeliverySummary,
    pub items: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    /// How many mails were queued again.
    pub requeued: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reminded {
    /// How many reminders were queued.
    pub queued: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Acknowledgements {
    /// Whether the advisory asks its readers to acknowledge it.
    pub required: bool,
    /// The revision in force, which acknowledgements are for.
    pub revision: i32,
    /// How many people it was mailed to.
    pub recipients: usize,
    pub acknowledged: usize,
    /// Who has not acknowledged it yet.
    pub outstanding: Vec<String>,
}

fn summary(counts: &[(DeliveryState, i64)]) -> DeliverySummary {
    let n = |state: DeliveryState| {
        counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    let pending: i64 = (counts.iter())
        .filter(|(state, _)| state.is_pending())
        .map(|(_, n)| n)
        .sum();
    DeliverySummary {
        queued: n(DeliveryState::Queued),
        sending: n(DeliveryState::Sending),
        sent: n(DeliveryState::Sent),
        retrying: n(DeliveryState::Retrying),
        failed: n(DeliveryState::Failed),
        suppressed: n(DeliveryState::Suppressed),
        delivered: pending == 0,
    }
}

#[utoipa::path(
    get, path = "/api/v1/advisories/{id}/deliveries", tag = "advisories",
    summary = "Per recipient, where the advisory's mail stands",
    params(DeliveryParams, PageParams),
    responses(
        (status = 200, body = DeliveryPage),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    id: web::Path<Uuid>,
    params: web::Query<DeliveryParams>,
    page: PageRequest<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let filter = query_param("state", params.state.as_deref(), str::parse)?;
    let (rows, counts) = state
        .db
        .read(move |conn| {
            advisories::get(conn, id)?;
            Ok((
                outbox::deliveries(conn, id, filter, page.after, page.fetch())?,
                outbox::counts(conn, Some(id))?,
            ))
        })
        .await?;
    let page = page.page(rows, |d| d.id, |d| d);
    Ok(HttpResponse::Ok().json(DeliveryPage {
        summary: summary(&counts),
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/advisories/{id}/deliveries/retry", tag = "advisories",
    summary = "Queue the advisory's failed mails again",
    responses(
        (status = 200, body = Requeued),
    ),
)]
pub async fn retry(
    state: web::Data<AppState>,
    admin: Authorized<Admin>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let done = deliveries::retry_failed(&state.workflow, admin.actor(), id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Requeued {
        requeued: done.value,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/advisories/{id}/acknowledgements", tag = "advisories",
    summary = "Who acknowledged the advisory in force, and who has not",
    responses(
        (status = 200, body = Acknowledgements),
        (status = 409, description = "Not published"),
    ),
)]
pub async fn acknowledgements(
    state: web::Data<AppState>,
    _: Authorized<Admin>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let record = state.db.read(move |conn| advisories::get(conn, id)).await?;
    let (revision, required) = acknowledged_revision(&record)?;
    let status = state
        .db
        .read(move |conn| acknowledgements::status(conn, id, revision))
        .await?;
    let outstanding: Vec<String> = status
        .iter()
        .filter(|(_, at)| at.is_none())
        .map(|(email, _)| email.clone())
        .collect();
    Ok(HttpResponse::Ok().json(Acknowledgements {
        required,
        revision,
        recipients: status.len(),
        acknowledged: status.len() - outstanding.len(),
        outstanding,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/advisories/{id}/remind", tag = "advisories",
    summary = "Remind those who have not acknowledged the advisory",
    description = "Queues one reminder per person and revision; people reminded before are not reminded again.",
    responses(
        (status = 200, body = Reminded),
        (status = 409, description = "Not published, or no acknowledgement asked for"),
    ),
)]
pub async fn remind(
    state: web::Data<AppState>,
    admin: Authorized<Admin>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let done = deliveries::remind(&state.workflow, admin.actor(), id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Reminded { queued: done.value }))
}
