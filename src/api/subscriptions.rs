//! Public subscriptions, for anyone with an address (officers' families
//! too): `POST /api/v1/subscriptions`, and the endpoints the links in mail
//! open — `/confirm`, `/unsubscribe`, `/manage` — with
//! `/api/v1/subscriptions/confirm` for programs. The links carry signed
//! tokens ([`crate::links`]); a bad, expired or foreign one is a 400 (a
//! page for browsers, a problem for programs), never a 500.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::JsonBody;
use crate::app::AppState;
use crate::auth::principal::MaybePrincipal;
use crate::db::{DbError, manufacturers, subscriptions};
use crate::domain::subscription::{SubscribeRequest, SubscriptionState, SubscriptionView};
use crate::error::{ApiError, Problem};
use crate::links::{self, LinkClaims, LinkError, LinkPurpose, LinkSubject};
use crate::pages::subscription::{self, FilterForm, Managed, Outcome};
use crate::pages::{self, ConfirmPage, MessagePage, UnsubscribePage};
use crate::workflow;

/// The one answer to every subscription request, whatever the address's
/// history.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionAccepted {
    #[schema(example = "accepted")]
    pub status: &'static str,
    pub detail: &'static str,
}

const ACCEPTED: SubscriptionAccepted = SubscriptionAccepted {
    status: "accepted",
    detail: "If this address can receive mail, a message with the next step is on its way.",
};

/// Where a subscription stands after following a link.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionStatus {
    pub state: SubscriptionState,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TokenParams {
    /// The token of the link, as mailed.
    #[param(required = true, value_type = String)]
    pub token: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/subscriptions", tag = "subscriptions",
    summary = "Subscribe an address to advisories (double opt-in)",
    description = "Public: no account needed (with `CLEARANCE_PUBLIC_LOOKUP=false`, a token of any \
        role). The answer is the same 202 whatever the address's history, so it reveals nothing \
        about who is subscribed. A new address, or one that is pending or unsubscribed, gets the \
        new filter and a mail with a link to confirm (good for 48 hours); nothing is delivered \
        before confirmation. An address that is already confirmed is left exactly as it is (anyone \
        can type anyone's address): its owner is mailed a link to manage the subscription \
        instead. An address is sent at most `CLEARANCE_MAIL_PER_ADDRESS_PER_DAY` (3) such mails a \
        day; further requests for it answer the same and change nothing. Subscribers receive \
        TLP:CLEAR advisories only.",
    request_body = SubscribeRequest,
    responses(
        (status = 202, description = "Accepted; a mail is queued", body = SubscriptionAccepted),
        (status = 401, description = "Public subscriptions are off and no token was sent"),
        (status = 422, description = "Invalid address, or a manufacturer or model id that names nothing"),
    ),
)]
pub async fn subscribe(
    state: web::Data<AppState>,
    principal: MaybePrincipal,
    body: JsonBody<SubscribeRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.may_use_public(state.settings.public_lookup)?;
    workflow::subscriptions::subscribe(
        &state.workflow,
        body.0,
        state.settings.mail_per_address_per_day,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(ACCEPTED))
}

#[utoipa::path(
    get, path = "/api/v1/subscriptions/confirm", tag = "subscriptions",
    summary = "Confirm a subscription",
    description = "Public; the token is the authority. Idempotent: confirming a confirmed \
        subscription answers the same. A browser (`Accept` preferring `text/html`) gets a small \
        page, anything else JSON. A bad, expired or foreign token is a 400. The mailed link opens \
        `GET /confirm` instead, which confirms only from its button: mail scanners follow links.",
    params(TokenParams),
    responses(
        (status = 200, description = "Confirmed", content(
            (SubscriptionStatus = "application/json"),
            (String = "text/html"),
        )),
        (status = 400, description = "The link is damaged, expired or not a confirmation link", content(
            (Problem = "application/problem+json"),
            (String = "text/html"),
        )),
        (status = 409, description = "The subscription was ended since; subscribe again", content(
            (Problem = "application/problem+json"),
            (String = "text/html"),
        )),
    ),
)]
pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<TokenParams>,
) -> HttpResponse {
    let outcome = async {
        let (id, key) = subscription_of(&state, &params, LinkPurpose::Confirm)?;
        workflow::subscriptions::confirm(&state.workflow, id, key)
            .await
            .map_err(link_target_error)?;
        Ok(SubscriptionStatus {
            state: SubscriptionState::Confirmed,
        })
    }
    .await;
    let page = MessagePage {
        title: "Subscription confirmed",
        paragraphs: vec![
            "Thank you: this address now receives the advisories it subscribed to.".into(),
            "Every advisory mail has a link to unsubscribe.".into(),
        ],
    };
    pages::respond(&req, outcome, page)
}

#[utoipa::path(
    get, path = "/confirm", tag = "subscriptions",
    summary = "The page that asks to confirm a subscription (the link in the confirmation mail)",
    description = "Shows the address and a button; opening it confirms nothing (a mail scanner \
        following the link must not subscribe anyone), only the button does, through \
        `GET /api/v1/subscriptions/confirm`. A confirmed or ended subscription's page says so.",
    params(TokenParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 400, description = "The link is damaged, expired or not a confirmation link",
         content_type = "text/html", body = String),
    ),
)]
pub async fn confirm_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<TokenParams>,
) -> HttpResponse {
    match subscription_view(&state, &params, LinkPurpose::Confirm).await {
        Ok(view) => pages::html(
            &req,
            StatusCode::OK,
            &ConfirmPage {
                email: &view.email,
                token: params.token.as_deref().unwrap_or_default(),
                state: view.state,
            },
        ),
        Err(error) => pages::error_page(&req, &error),
    }
}

#[utoipa::path(
    get, path = "/unsubscribe", tag = "subscriptions",
    summary = "The unsubscribe page (the link in every subscription mail)",
    description = "Shows the address and a button; following this link changes nothing (mail \
        scanners follow links), only the button's POST unsubscribes.",
    params(TokenParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 400, description = "The link is damaged, expired or not an unsubscribe link",
         content_type = "text/html", body = String),
    ),
)]
pub async fn unsubscribe_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<TokenParams>,
) -> HttpResponse {
    match subscription_view(&state, &params, LinkPurpose::Unsubscribe).await {
        Ok(view) => pages::html(
            &req,
            StatusCode::OK,
            &UnsubscribePage {
                title: "Unsubscribe",
                email: &view.email,
                token: params.token.as_deref().unwrap_or_default(),
                already: view.state == SubscriptionState::Unsubscribed,
            },
        ),
        Err(error) => pages::error_page(&req, &error),
    }
}

#[utoipa::path(
    post, path = "/unsubscribe", tag = "subscriptions",
    summary = "Unsubscribe: RFC 8058 one-click, and the page's button",
    description = "The token is the authority; the body, `List-Unsubscribe=One-Click` \
        (`application/x-www-form-urlencoded` or `multipart/form-data`, as mail providers send it) \
        or empty, is not needed and not read. Idempotent: unsubscribing twice answers 200 twice. \
        Afterwards the address receives no more subscription mail. A browser gets a page, anything \
        else JSON.",
    params(TokenParams),
    request_body(content = Option<String>, content_type = "application/x-www-form-urlencoded",
        example = "List-Unsubscribe=One-Click"),
    responses(
        (status = 200, description = "Unsubscribed", content(
            (SubscriptionStatus = "application/json"),
            (String = "text/html"),
        )),
        (status = 400, description = "The link is damaged, expired or not an unsubscribe link", content(
            (Problem = "application/problem+json"),
            (String = "text/html"),
        )),
    ),
)]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<TokenParams>,
) -> HttpResponse {
    let outcome = async {
        let (id, key) = subscription_of(&state, &params, LinkPurpose::Unsubscribe)?;
        workflow::subscriptions::unsubscribe(&state.workflow, id, key)
            .await
            .map_err(link_target_error)?;
        Ok(SubscriptionStatus {
            state: SubscriptionState::Unsubscribed,
        })
    }
    .await;
    let page = MessagePage {
        title: "Unsubscribed",
        paragraphs: vec![
            "This address receives no more advisory mail from this subscription.".into(),
        ],
    };
    pages::respond(&req, outcome, page)
}

#[utoipa::path(
    get, path = "/manage", tag = "subscriptions",
    summary = "A subscription's page (the link mailed when someone subscribes a confirmed address)",
    description = "Shows what the subscription receives in a form its owner may change (`POST \
        /manage`), with a link to unsubscribe.",
    params(TokenParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 400, description = "The link is damaged, expired or not a manage link",
         content_type = "text/html", body = String),
    ),
)]
pub async fn manage_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<TokenParams>,
) -> HttpResponse {
    managed(&req, &state, &params, None, Ok(Outcome::Blank)).await
}

#[utoipa::path(
    post, path = "/manage", tag = "subscriptions",
    summary = "Change what a subscription receives (the manage page's form)",
    description = "The token of the mailed manage link is the authority. The form's fields, as \
        `application/x-www-form-urlencoded`: `delivery` (`immediate` or `daily`), `min_severity`, \
        `category` and `maker` (a manufacturer id) once per choice, `model` (a model id) once per \
        model; none of a list means any. The same rules as `POST /api/v1/subscriptions`; the \
        address and the confirmation stay as they are. The answer is the page again, saying it \
        was saved, or what to correct (422, the form as it was sent).",
    params(TokenParams),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        example = "delivery=daily&min_severity=high&category=phone"),
    responses(
        (status = 200, description = "Saved; the page", content_type = "text/html", body = String),
        (status = 400, description = "The link is damaged, expired or not a manage link",
         content_type = "text/html", body = String),
        (status = 409, description = "The subscription has ended; subscribe again",
         content_type = "text/html", body = String),
        (status = 422, description = "The form again, saying what to correct",
         content_type = "text/html", body = String),
    ),
)]
pub async fn manage(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<TokenParams>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let sent = FilterForm::from_pairs(form.into_inner());
    let outcome = match (
        subscription_of(&state, &params, LinkPurpose::Manage),
        sent.choice(),
    ) {
        (Err(error), _) => Err(error),
        (Ok(_), Err(mistake)) => Ok(Outcome::Mistake(mistake)),
        (Ok((id, key)), Ok((filter, delivery))) => Outcome::of(
            workflow::subscriptions::change_filter(&state.workflow, id, key, filter, delivery)
                .await,
        )
        .map_err(link_target_error),
    };
    managed(&req, &state, &params, Some(sent), outcome).await
}

/// The manage page of the link in `params` after `outcome`, or the page
/// that says why not, answering `req`.
async fn managed(
    req: &HttpRequest,
    state: &AppState,
    params: &TokenParams,
    sent: Option<FilterForm>,
    outcome: Result<Outcome, ApiError>,
) -> HttpResponse {
    let found = match (subscription_of(state, params, LinkPurpose::Manage), outcome) {
        (Ok((id, key)), Ok(outcome)) => state
            .db
            .read(move |conn| {
                let view = subscriptions::view(conn, id, &key)?;
                Ok::<_, DbError>((view, manufacturers::names(conn)?))
            })
            .await
            .map(|found| (found, outcome))
            .map_err(link_target_error),
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    let ((view, makers), outcome) = match found {
        Ok(found) => found,
        Err(error) => return pages::error_page(req, &error),
    };
    let unsubscribe_url = (view.state != SubscriptionState::Unsubscribed).then(|| {
        let claims = LinkClaims::new(
            LinkPurpose::Unsubscribe,
            &view.email,
            LinkSubject::Subscription(view.id),
            state.workflow.clock().now(),
        );
        let token = state.links.issue(&claims);
        links::url(&state.settings.public_url, LinkPurpose::Unsubscribe, &token).to_string()
    });
    let managed = Managed {
        view: &view,
        makers: &makers,
        token: params.token.as_deref().unwrap_or_default(),
        unsubscribe_url,
    };
    subscription::manage_page(req, managed, sent, outcome)
}

/// The subscription (id and address key) a link of `purpose` names, or
/// the 400 that explains why the link cannot be used.
fn subscription_of(
    state: &AppState,
    params: &TokenParams,
    purpose: LinkPurpose,
) -> Result<(uuid::Uuid, String), ApiError> {
    let claims = link_claims(state, params, purpose)?;
    let id = claims
        .subscription_id()
        .ok_or_else(|| ApiError::BadRequest(format!("this link is not a valid {purpose} link")))?;
    Ok((id, claims.email_key))
}

/// The subscription a link of `purpose` names, as its pages show it.
async fn subscription_view(
    state: &AppState,
    params: &TokenParams,
    purpose: LinkPurpose,
) -> Result<SubscriptionView, ApiError> {
    let (id, key) = subscription_of(state, params, purpose)?;
    state
        .db
        .read(move |conn| subscriptions::view(conn, id, &key))
        .await
        .map_err(link_target_error)
}

/// What the token of a mailed link says, if it is a good one of `purpose`;
/// a bad, expired or foreign link is a 400 that says so.
pub fn link_claims(
    state: &AppState,
    params: &TokenParams,
    purpose: LinkPurpose,
) -> Result<LinkClaims, ApiError> {
    let token = params
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadRequest("this link is incomplete: it has no token".into()))?;
    state.links.verify(token, purpose).map_err(|error| {
        ApiError::BadRequest(match error {
            LinkError::Expired => match purpose {
                LinkPurpose::Confirm => {
                    "this link has expired; subscribe again to receive a new one".into()
                }
                _ => "this link has expired; use the link in a more recent mail".into(),
            },
            LinkError::Malformed | LinkError::BadSignature | LinkError::WrongPurpose => {
                format!("this link is not a valid {purpose} link ({error})")
            }
        })
    })
}

/// A link whose subscription is gone, or belongs to another address, is a
/// bad link (400), not a missing page.
fn link_target_error(error: impl Into<workflow::Error>) -> ApiError {
    match error.into() {
        workflow::Error::Store(DbError::NotFound) => {
            ApiError::BadRequest("this link does not name a subscription of its address".into())
        }
        other => other.into(),
    }
}

#[utoipa::path(
    get, path = "/subscribe", tag = "pages",
    summary = "The form to subscribe without an API client",
    description = "An address, how often, which severities, kinds of device and makers — the \
        filter of `POST /api/v1/subscriptions` — in the lookup page's style. No script.",
    responses((status = 200, description = "The form", content_type = "text/html", body = String)),
)]
pub async fn subscribe_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.db.read(manufacturers::names).await {
        Ok(makers) => {
            subscription::subscribe_page(&req, &FilterForm::default(), &makers, Outcome::Blank)
        }
        Err(error) => pages::error_page(&req, &error.into()),
    }
}

/// The form's submission — the same double opt-in as
/// `POST /api/v1/subscriptions`.
#[utoipa::path(
    post, path = "/subscribe", tag = "pages",
    summary = "Subscribe from the form (double opt-in)",
    description = "The form's fields, as `application/x-www-form-urlencoded`: `email`, \
        `delivery` (`immediate` or `daily`), `min_severity`, `category` and `maker` (a \
        manufacturer id) once per choice; none of a list means any.",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        example = "email=family%40example.org&delivery=daily&min_severity=high&category=phone"),
    responses(
        (status = 200, description = "Check your mail", content_type = "text/html", body = String),
        (status = 422, description = "The form again, as it was filled, saying what to correct",
         content_type = "text/html", body = String),
    ),
)]
pub async fn subscribe_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: MaybePrincipal,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if let Err(error) = principal.may_use_public(state.settings.public_lookup) {
        return pages::error_page(&req, &error);
    }
    let form = FilterForm::from_pairs(form.into_inner());
    let outcome = match form.request() {
        Ok(request) => {
            let mails_per_day = state.settings.mail_per_address_per_day;
            let done = workflow::subscriptions::subscribe(&state.workflow, request, mails_per_day);
            Outcome::of(done.await).map_err(ApiError::from)
        }
        Err(mistake) => Ok(Outcome::Mistake(mistake)),
    };
    let makers = state
        .db
        .read(manufacturers::names)
        .await
        .map_err(ApiError::from);
    match (outcome, makers) {
        (Ok(outcome), Ok(makers)) => subscription::subscribe_page(&req, &form, &makers, outcome),
        (Err(error), _) | (_, Err(error)) => pages::error_page(&req, &error),
    }
}
