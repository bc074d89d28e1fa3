//! `/api/v1/reviews`: a model under examination until a due date.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::{JsonBody, Page, PageRequest, boolean, created, id_of, query_param};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Principal, Role};
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
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
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
    security(("bearer" = []))
)]
pub async fn open(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<NewReview>,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.acting_as(Role::Analyst)?;
    let review = workflow::reviews::open(&state.workflow, actor, body.0)
        .await?
        .value;
    Ok(created(
        format!("/api/v1/reviews/{}", review.id),
        1,
        &review,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/reviews", tag = "reviews",
    summary = "List reviews",
    params(ListParams),
    responses(
        (status = 200, body = Page<Review>),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Reader)?;
    let page = PageRequest::parse(params.limit.as_deref(), params.cursor.as_deref())?;
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
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Review),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Reader)?;
    let id = id.into_inner();
    let now = state.workflow.clock().now();
    let review = state
        .db
        .read(move |conn| reviews::get(conn, id, now))
        .await?;
    Ok(HttpResponse::Ok().json(review))
}

#[utoipa::path(
    post, path = "/api/v1/reviews/{id}/close", tag = "reviews",
    summary = "Close a review with its outcome",
    params(("id" = Uuid, Path)),
    request_body = ReviewOutcome,
    responses(
        (status = 200, body = Review),
        (status = 409, description = "Already closed"),
    ),
    security(("bearer" = []))
)]
pub async fn close(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    body: JsonBody<ReviewOutcome>,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.acting_as(Role::Approver)?;
    let done = workflow::reviews::close(&state.workflow, actor, id.into_inner(), body.0).await?;
    Ok(HttpResponse::Ok().json(done.value))
}
