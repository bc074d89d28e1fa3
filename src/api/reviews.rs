//! `/api/v1/reviews`: a model under examination until a due date.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{JsonBody, Page, PageRequest, created, id_of, query_param};
use super::idempotency::IdempotencyKeyHeader;
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::reviews::{self, Review, ReviewFilter};
use crate::domain::text::{Line, Prose};
use crate::error::{ApiError, Problem};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenReview {
    model_id: Uuid,
    reason: Prose,
    /// When a decision is due, e.g. 90 days from now for "within three months".
    due_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseReview {
    outcome: Line,
    /// The advisory that settled the review, if one did.
    #[serde(default)]
    advisory_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// `true`: only open reviews past their due date.
    #[param(value_type = Option<bool>)]
    overdue: Option<String>,
    /// `true`: only open reviews; `false`: only closed ones.
    #[param(value_type = Option<bool>)]
    open: Option<String>,
    model_id: Option<String>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

fn boolean(raw: &str) -> Result<bool, String> {
    raw.parse().map_err(|_| "must be true or false".to_owned())
}

#[utoipa::path(
    post, path = "/api/v1/reviews", tag = "reviews",
    summary = "Open a review of a model",
    params(IdempotencyKeyHeader),
    description = "While a review is open and no decision applies, the model is `under_review`. A model has at most one open review.",
    request_body = OpenReview,
    responses(
        (status = 201, body = Review, headers(("Location" = String))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "The model already has an open review", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn open(
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody<OpenReview>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Analyst)?;
    let actor = principal.actor();
    let OpenReview {
        model_id,
        reason,
        due_at,
    } = body.0;
    let (review, _) = state
        .db
        .write(move |conn| reviews::open(conn, model_id, &reason, due_at, &actor, Utc::now()))
        .await?;
    state.lookup.apply(&[review.model_id]).await;
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
    responses((status = 200, body = Page<Review>), (status = 401, body = Problem), (status = 422, body = Problem)),
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
    let rows = state
        .db
        .read(move |conn| reviews::list(conn, &filter, page.after, page.fetch(), Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(page.page(rows, |r| r.id, |r| r)))
}

#[utoipa::path(
    get, path = "/api/v1/reviews/{id}", tag = "reviews",
    summary = "Get a review",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Review), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Reader)?;
    let id = id.into_inner();
    let review = state
        .db
        .read(move |conn| reviews::get(conn, id, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(review))
}

#[utoipa::path(
    post, path = "/api/v1/reviews/{id}/close", tag = "reviews",
    summary = "Close a review with its outcome",
    params(("id" = Uuid, Path)),
    request_body = CloseReview,
    responses(
        (status = 200, body = Review), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Already closed", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn close(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    body: JsonBody<CloseReview>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Role::Approver)?;
    let actor = principal.actor();
    let id = id.into_inner();
    let CloseReview {
        outcome,
        advisory_id,
    } = body.0;
    let (review, _) = state
        .db
        .write(move |conn| reviews::close(conn, id, &outcome, advisory_id, &actor, Utc::now()))
        .await?;
    state.lookup.apply(&[review.model_id]).await;
    Ok(HttpResponse::Ok().json(review))
}
