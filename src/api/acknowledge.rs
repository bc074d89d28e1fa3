//! `/acknowledge?token=`: a recipient confirms having read one advisory
//! revision, from the personal link in its mail.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::subscriptions::{TokenParams, link_claims};
use crate::app::AppState;
use crate::db::{DbError, acknowledgements, advisories};
use crate::error::{ApiError, Problem};
use crate::links::{LinkPurpose, LinkSubject};
use crate::pages::{self, AcknowledgePage, MessagePage};
use crate::workflow::deliveries::{self, Acknowledged};

/// The advisory revision and address a link is for, and what is shown of it.
struct Target {
    advisory_id: Uuid,
    revision: i32,
    email: String,
    reference: String,
    title: String,
}

async fn target(state: &AppState, params: &TokenParams) -> Result<Target, ApiError> {
    let claims = link_claims(state, params, LinkPurpose::Acknowledge)?;
    let LinkSubject::Revision {
        advisory_id,
        revision,
    } = claims.subject
    else {
        return Err(ApiError::BadRequest(
            "this link is not a valid acknowledge link".into(),
        ));
    };
    let revisions = state
        .db
        .read(move |conn| {
            let record = advisories::get(conn, advisory_id)?;
            Ok((record, advisories::published_revisions(conn, advisory_id)?))
        })
        .await
        .map_err(|e| match e {
            DbError::NotFound => ApiError::BadRequest("this link's advisory is gone".into()),
            other => other.into(),
        })?;
    let (record, published) = revisions;
    let shown = published
        .iter()
        .find(|r| r.number == revision)
        .ok_or_else(|| ApiError::BadRequest("this link's advisory revision is gone".into()))?;
    Ok(Target {
        advisory_id,
        revision,
        email: claims.email_key,
        reference: record.reference.unwrap_or_default(),
        title: shown.content.title.to_string(),
    })
}

#[utoipa::path(
    get, path = "/acknowledge", tag = "advisories",
    summary = "The page that asks a recipient to acknowledge an advisory",
    description = "Shows the advisory and a button; opening it records nothing (a link scanner must not acknowledge for anyone).",
    params(TokenParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 400, description = "A damaged, expired or foreign link", content_type = "text/html", body = String),
    ),
)]
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<TokenParams>,
) -> HttpResponse {
    let token = params.token.clone().unwrap_or_default();
    let target = match target(&state, &params).await {
        Ok(target) => target,
        Err(error) => return pages::error_page(&req, &error),
    };
    let (advisory_id, revision, email) =
        (target.advisory_id, target.revision, target.email.clone());
    let already = state
        .db
        .read(move |conn| {
            acknowledgements::acknowledged_at(conn, advisory_id, revision, &email)
                .map(|at| at.is_some())
        })
        .await;
    match already {
        Ok(already) => pages::html(
            &req,
            StatusCode::OK,
            &AcknowledgePage {
                title: "Acknowledge an advisory",
                reference: &target.reference,
                revision: target.revision,
                advisory_title: &target.title,
                email: &target.email,
                token: &token,
                already,
            },
        ),
        Err(error) => pages::error_page(&req, &error.into()),
    }
}

#[utoipa::path(
    post, path = "/acknowledge", tag = "advisories",
    summary = "Record that a recipient acknowledged an advisory revision",
    description = "Idempotent: acknowledging again keeps the first time. A browser gets a page, anything else JSON.",
    params(TokenParams),
    responses(
        (status = 200, description = "Acknowledged", content(
            (Acknowledged = "application/json"),
            (String = "text/html"),
        )),
        (status = 400, description = "A damaged, expired or foreign link", content(
            (Problem = "application/problem+json"),
            (String = "text/html"),
        )),
    ),
)]
pub async fn acknowledge(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<TokenParams>,
) -> HttpResponse {
    let recorded = match target(&state, &params).await {
        Ok(target) => deliveries::acknowledge(
            &state.workflow,
            target.advisory_id,
            target.revision,
            target.email,
        )
        .await
        .map(|done| done.value)
        .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    let page = MessagePage {
        title: "Acknowledged",
        paragraphs: vec!["Thank you: your acknowledgement is recorded.".into()],
    };
    pages::respond(&req, recorded, page)
}
