//! `/api/v1/reviews`: a model under examination until a due date.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::{
    JsonBody, Page, PageParams, PageRequest, boolean, created, id_of, query_param, with_etag,
};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Analyst, Approver, Authorized, Reader};
use crate::db::reviews::{self, Review, ReviewFilter};
use crate::domain::review::{NewReview, ReviewOutcome};
use crate::error::ApiError;
use crate::workflow;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// `true`: only open reviews past their due date.
    #[param(value_type = Option<bool>)]
    overdue: Option<String>,
    /// `true`: only open reviews; `false`: only closed ones.
    #[param(value_type = Option<bool>)]
    open: Option<String>,
    #[param(value_type = Option<Uuid>)]
    model_id: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/reviews", tag = "reviews",
    summary = "Open a review of a model",
    params(IdempotencyKeyHeader),
    description = "While a review is open and no decision applies, the model is `under_review`. A model has at most one open review.",
    request_body = NewReview,
    responses(
        (status = 201, body = Review, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "The model already has an open review"),
    ),
)]
pub async fn open(
    state: web::Data<AppState>,
    analyst: Authorized<Analyst>,
    body: JsonBody<NewReview>,
) -> Result<HttpResponse, ApiError> {
    let review = workflow::reviews::open(&state.workflow, analyst.actor(), body.0)
        .await?
        .value;
    let location = format!("/api/v1/reviews/{}", review.id);
    Ok(created(location, review.version(), &review))
}

#[utoipa::path(
    get, path = "/api/v1/reviews", tag = "reviews",
    summary = "List reviews",
    params(ListParams, PageParams),
    responses(
        (status = 200, body = Page<Review>),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    params: web::Query<ListParams>,
    page: PageRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = ReviewFilter {
        overdue: query_param("overdue", params.overdue.as_deref(), boolean)?.unwrap_or(false),
        open: query_param("open", params.open.as_deref(), boolean)?,
        model_id: query_param("model_id", params.model_id.as_deref(), id_of("a model"))?,
    };
    let now = state.workflow.clock().now();
    let rows = state
        .db
        .read(move |conn| reviews::list(conn, &filter, page.after, page.fetch(), now))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |r| r.id, |r| r)))
}

#[utoipa::path(
    get, path = "/api/v1/reviews/{id}", tag = "reviews",
    summary = "Get a review",
    responses(
        (status = 200, body = Review, headers(("ETag" = String))),
    ),
)]
pub async fn get(
    state: web::Data<AppState>,
    _: Authorized<Reader>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let now = state.workflow.clock().now();
    let review = state
        .db
        .read(move |conn| reviews::get(conn, id, now))
        .await?;
    Ok(with_etag(review.version(), &review))
}

#[utoipa::path(
    post, path = "/api/v1/reviews/{id}/close", tag = "reviews",
    summary = "Close a review with its outcome",
    request_body = ReviewOutcome,
    responses(
        (status = 200, body = Review, headers(("ETag" = String))),
        (status = 409, description = "Already closed"),
    ),
)]
pub async fn close(
    state: web::Data<AppState>,
    approver: Authorized<Approver>,
    id: web::Path<Uuid>,
    body: JsonBody<ReviewOutcome>,
) -> Result<HttpResponse, ApiError> {
    let done = workflow::reviews::close(&state.workflow, approver.actor(), id.into_inner(), body.0)
        .await?;
    Ok(with_etag(done.value.version(), &done.value))
}
