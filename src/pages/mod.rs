//! The public pages: the lookup ([`lookup`]), advisory pages
//! ([`advisory`]), the subscription form and manage page
//! ([`subscription`]), and the small pages links in mail open in a browser
//! (confirm, unsubscribe, acknowledge, a link that cannot be used). Rendered
//! from askama templates (`templates/pages/`), which escape every value, in
//! one layout (`layout.html`): one stylesheet, no script, readable on a
//! phone, and at the foot whom to ask.

pub mod accept;
pub mod advisory;
pub mod lookup;
pub mod subscription;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::app::AppState;
use crate::domain::subscription::SubscriptionState;
use crate::domain::wording;
use crate::error::ApiError;

pub use accept::prefers_html;

/// The pages' one stylesheet, compiled in: the binary stays the whole
/// deployment.
const STYLESHEET: &str = include_str!("../../static/pages.css");

/// Files the pages load: not operations of the API, so not in its document.
pub fn assets(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/pages.css", web::get().to(stylesheet));
}

/// The pages' stylesheet.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .body(STYLESHEET)
}

#[utoipa::path(
    get, path = "/", tag = "pages",
    summary = "The service's front door: the lookup page",
    description = "A 303 See Other to `/lookup`, the page people come for. Not a permanent \
        redirect (308): browsers would remember it for good, and the root may one day have a \
        page of its own.",
    responses((status = 303, description = "To `/lookup`", headers(("Location" = String)))),
)]
pub async fn home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/lookup"))
        .finish()
}

/// Nothing may load but the pages' own stylesheet (and images), no inline
/// style or script runs, and forms submit only back to this service.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; form-action 'self'; img-src 'self'";

/// The name under which [`html`] hands every page the line that says whom
/// to ask; `layout.html` shows it (and a page rendered without it fails,
/// rather than leave it out).
const QUESTIONS: &str = "questions";

/// A page with a heading and a few sentences.
#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub paragraphs: Vec<String>,
}

/// Asks before confirming a subscription: a link scanner that follows the
/// mailed link must not subscribe anyone, so only the button does.
#[derive(Template)]
#[template(path = "pages/confirm.html")]
pub struct ConfirmPage<'a> {
    pub email: &'a str,
    /// The token, sent on by the form.
    pub token: &'a str,
    pub state: SubscriptionState,
}

/// Asks before unsubscribing: a link scanner that follows the mailed link
/// must not unsubscribe anyone, so only the button's POST does.
#[derive(Template)]
#[template(path = "pages/unsubscribe.html")]
pub struct UnsubscribePage<'a> {
    pub title: &'a str,
    pub email: &'a str,
    /// The token, posted back by the form.
    pub token: &'a str,
    pub already: bool,
}

/// Asks a recipient to acknowledge an advisory revision; only the button's
/// POST records it, so a link scanner acknowledges nothing.
#[derive(Template)]
#[template(path = "pages/acknowledge.html")]
pub struct AcknowledgePage<'a> {
    pub title: &'a str,
    pub reference: &'a str,
    pub revision: i32,
    pub advisory_title: &'a str,
    pub email: &'a str,
    pub token: &'a str,
    pub already: bool,
}

/// Whether the request asks for HTML before JSON.
pub fn wants_html(req: &HttpRequest) -> bool {
    prefers_html(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )
}

/// A page of the layout as the answer to `req`, with the headers every
/// page carries. Whom to ask comes from the deployment's settings, here, so
/// no page can leave it out and no handler has to pass it.
pub fn html(req: &HttpRequest, status: StatusCode, page: &impl Template) -> HttpResponse {
    let contact = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.settings.contact.as_deref());
    let questions: &dyn std::any::Any = &wording::questions(contact);
    page_response(status, page.render_with_values(&(QUESTIONS, questions)))
}

/// An HTML document outside the layout (a CSAF directory listing), with
/// the same headers.
pub fn document(status: StatusCode, page: &impl Template) -> HttpResponse {
    page_response(status, page.render())
}

fn page_response(status: StatusCode, rendered: askama::Result<String>) -> HttpResponse {
    let body = match rendered {
        Ok(body) => body,
        Err(error) => return ApiError::internal(error).error_response(),
    };
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // A mailed page's URL carries a token, a lookup's what was asked:
        // keep both out of caches and Referer.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .body(body)
}

/// The page for an error: its status, and what the problem document would
/// say (an internal error is logged, and its cause not shown).
pub fn error_page(req: &HttpRequest, error: &ApiError) -> HttpResponse {
    if let ApiError::Internal(cause) = error {
        tracing::error!(error = ?cause, "internal error");
    }
    let problem = error.problem();
    let status = error.status_code();
    // Readers of these pages followed a link in a mail: say what it means
    // for them rather than the status code's name.
    let title = match status {
        StatusCode::BAD_REQUEST => "This link cannot be used",
        StatusCode::CONFLICT => "This link no longer applies",
        s if s.is_server_error() => "Something went wrong",
        _ => &problem.title,
    };
    html(
        req,
        status,
        &MessagePage {
            title,
            paragraphs: vec![capitalised(&problem.detail)],
        },
    )
}

/// The answer for a browser or a program, from one outcome: success is
/// `page` for a browser and the outcome's value as JSON for a program; an
/// error is an HTML page or a problem document.
pub fn respond<T: serde::Serialize>(
    req: &HttpRequest,
    outcome: Result<T, ApiError>,
    page: MessagePage<'_>,
) -> HttpResponse {
    match (outcome, wants_html(req)) {
        (Ok(_), true) => html(req, StatusCode::OK, &page),
        (Ok(value), false) => HttpResponse::Ok().json(value),
        (Err(error), true) => error_page(req, &error),
        (Err(error), false) => error.error_response(),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let mut sentence: String = first.to_uppercase().chain(chars).collect();
            if !sentence.ends_with('.') {
                sentence.push('.');
            }
            sentence
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> HttpRequest {
        actix_web::test::TestRequest::default().to_http_request()
    }

    fn body(response: HttpResponse) -> String {
        let bytes = actix_web::body::to_bytes(response.into_body());
        let bytes = futures_util::FutureExt::now_or_never(bytes)
            .unwrap()
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn values_are_escaped() {
        let page = MessagePage {
            title: "<b>title</b>",
            paragraphs: vec!["<script>alert('x')</script> & more".into()],
        };
        let response = html(&request(), StatusCode::OK, &page);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_SECURITY_POLICY)
                .unwrap(),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            response
                .headers()
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .unwrap(),
            "nosniff"
        );
        let text = body(response);
        assert!(
            !text.contains("<script>") && !text.contains("<b>"),
            "{text}"
        );
        assert!(
            text.contains("&#60;script&#62;") && text.contains("&#38; more"),
            "{text}"
        );
        assert!(text.contains("name=\"viewport\""), "readable on a phone");
        assert!(
            text.contains("<link rel=\"stylesheet\" href=\"/static/pages.css\">")
                && !text.contains("<style"),
            "{text}"
        );
    }

    #[test]
    fn every_page_says_whom_to_ask() {
        let page = MessagePage {
            title: "Unsubscribed",
            paragraphs: vec![],
        };
        // Without the deployment's settings: the security office.
        let text = body(html(&request(), StatusCode::OK, &page));
        assert!(
            text.contains("<p class=\"contact\">Questions? Ask your security office.</p>"),
            "{text}"
        );
        // Rendered any other way than through `html`, a page fails instead
        // of leaving the line out.
        assert!(page.render().is_err());
    }

    #[test]
    fn the_unsubscribe_page_posts_the_one_click_body() {
        let page = UnsubscribePage {
            title: "Unsubscribe",
            email: "ada@example.org",
            token: "abc.def",
            already: false,
        };
        let text = body(html(&request(), StatusCode::OK, &page));
        assert!(text.contains("method=\"post\""), "{text}");
        assert!(text.contains("action=\"?token=abc.def\""), "{text}");
        assert!(
            text.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
            "{text}"
        );
    }

    #[test]
    fn errors_are_pages_with_their_status() {
        let response = error_page(
            &request(),
            &ApiError::BadRequest("this link has expired".into()),
        );
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let text = body(response);
        assert!(text.contains("<h1>This link cannot be used</h1>"), "{text}");
        assert!(text.contains("This link has expired."), "{text}");
        let unavailable = error_page(
            &request(),
            &ApiError::Unavailable("the database is unavailable".into()),
        );
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
