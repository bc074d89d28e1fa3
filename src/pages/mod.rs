//! The small HTML pages that links in mail open in a browser: confirm,
//! unsubscribe, acknowledge, and the page for a link that cannot be used —
//! self-contained (inline style, no script, no external asset) — and the
//! public lookup page ([`lookup`]), advisory pages ([`advisory`]) and the subscription form and manage page ([`subscription`]). Rendered from askama templates
//! (`templates/pages/`), which escape every value; readable on a phone.

pub mod accept;
pub mod advisory;
pub mod lookup;
pub mod subscription;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::error::ApiError;

pub use accept::prefers_html;

/// Files the pages load: not operations of the API, so not in its document.
pub fn assets(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.route(
        "/static/lookup.css",
        actix_web::web::get().to(lookup::stylesheet),
    );
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

/// Nothing may load but the page's own inline style, and forms post only
/// back to this service.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

/// A page with a heading and a few sentences.
#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub paragraphs: Vec<String>,
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

/// An HTML answer with the headers every page carries.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    html_with_policy(status, page, CONTENT_SECURITY_POLICY)
}

/// [`html`] with a page's own Content-Security-Policy.
pub fn html_with_policy(
    status: StatusCode,
    page: &impl Template,
    policy: &'static str,
) -> HttpResponse {
    let body = match page.render() {
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
            HeaderValue::from_static(policy),
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
pub fn error_page(error: &ApiError) -> HttpResponse {
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
        status,
        &MessagePage {
            title,
            paragraphs: vec![capitalised(&problem.detail)],
        },
    )
}

/// The answer for a browser or a program, from one outcome: `page` renders
/// success for a browser, `json` for a program; an error is an HTML page or
/// a problem document.
pub fn respond(
    req: &HttpRequest,
    outcome: Result<(), ApiError>,
    page: impl FnOnce() -> HttpResponse,
    json: impl FnOnce() -> HttpResponse,
) -> HttpResponse {
    match (outcome, wants_html(req)) {
        (Ok(()), true) => page(),
        (Ok(()), false) => json(),
        (Err(error), true) => error_page(&error),
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
        let response = html(StatusCode::OK, &page);
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
    }

    #[test]
    fn the_unsubscribe_page_posts_the_one_click_body() {
        let page = UnsubscribePage {
            title: "Unsubscribe",
            email: "ada@example.org",
            token: "abc.def",
            already: false,
        };
        let text = body(html(StatusCode::OK, &page));
        assert!(text.contains("method=\"post\""), "{text}");
        assert!(text.contains("action=\"?token=abc.def\""), "{text}");
        assert!(
            text.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
            "{text}"
        );
    }

    #[test]
    fn errors_are_pages_with_their_status() {
        let response = error_page(&ApiError::BadRequest("this link has expired".into()));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let text = body(response);
        assert!(text.contains("<h1>This link cannot be used</h1>"), "{text}");
        assert!(text.contains("This link has expired."), "{text}");
        let unavailable = error_page(&ApiError::Unavailable("the database is unavailable".into()));
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
