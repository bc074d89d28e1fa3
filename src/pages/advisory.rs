//! `GET /advisories/{reference}`: the page every mail, feed entry and lookup
//! answer links to. For an advisory the visitor may read (TLP:CLEAR, or
//! anything for a signed-in reader) the whole of it: its text (Markdown,
//! sanitised), what it decides per model or maker and firmware range, what
//! to do, its history and references. Otherwise only its reference and
//! whom to ask. The lookup page's style and policy; no script.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::auth::MaybePrincipal;
use crate::config::Settings;
use crate::domain::advisory::{AdvisoryState, Viewer, parse_reference};
use crate::domain::{markdown, wording};
use crate::export::csaf::{self, Release, Source};

/// One model or maker the advisory decides on.
struct TargetView {
    name: String,
    /// The decisions about it, each in words.
    decisions: Vec<String>,
    /// What to do about it, from all of them at once.
    must_do: String,
}

struct EvidenceView {
    title: String,
    source: String,
    observed: String,
    summary: String,
    links: Vec<String>,
}

/// What stopped the advisory applying, or will, said at the top of the page.
struct Ended {
    sentence: String,
    /// The day its successor takes effect, while its own decisions still
    /// stand.
    in_force_until: Option<String>,
    /// The successor's reference and page.
    successor: Option<(String, String)>,
}

/// What a visitor who may read the advisory sees.
struct Readable {
    title: String,
    ended: Option<Ended>,
    /// Whether its decisions apply now (or will from their date).
    applies: bool,
    severity: String,
    tlp: String,
    published: String,
    /// The day its decisions take effect, while that is still to come.
    takes_effect: Option<String>,
    /// "Revision 2, 1 December 2026" after an amendment.
    revised: Option<String>,
    summary: String,
    /// Sanitised HTML from the Markdown body.
    body_html: String,
    targets: Vec<TargetView>,
    evidence: Vec<EvidenceView>,
    /// (date, what changed), oldest first.
    history: Vec<(String, String)>,
    csaf_url: String,
}

#[derive(Template)]
#[template(path = "pages/advisory.html")]
struct AdvisoryPage<'a> {
    /// The reference as asked for (the page of an unknown one says so).
    reference: &'a str,
    found: bool,
    /// `None` when the visitor may not read it.
    readable: Option<Readable>,
}

#[utoipa::path(
    get, path = "/advisories/{reference}", tag = "pages",
    summary = "The page of a published advisory",
    description = "HTML for people: for TLP:CLEAR (or a signed-in reader) the whole advisory — its text, what it decides per model or maker and firmware range in words, what to do, its revision history and references, links to its CSAF document and the lookup. Other TLPs show only the reference and whom to ask. Withdrawn and superseded advisories say so and link their successor. No script.",
    params(("reference" = String, Path, description = "The reference, e.g. CLR-2026-0001 (any case)")),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 404, description = "No published advisory has this reference (a page saying so)", content_type = "text/html", body = String),
    ),
)]
pub async fn advisory_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: MaybePrincipal,
    reference: web::Path<String>,
) -> HttpResponse {
    let asked = reference.into_inner();
    let source = match parse_reference(&asked) {
        Some(reference) => state
            .db
            .read(move |conn| csaf::load_published(conn, &reference))
            .await
            .map_err(crate::error::ApiError::from),
        None => Ok(None),
    };
    let source = match source {
        Ok(source) => source,
        Err(error) => return super::error_page(&req, &error),
    };
    let now = state.workflow.clock().now();
    let page = AdvisoryPage {
        reference: source
            .as_ref()
            .and_then(|s| s.advisory.reference.as_deref())
            .unwrap_or(&asked),
        found: source.is_some(),
        readable: source
            .as_ref()
            .and_then(|s| readable(s, principal.viewer(), &state.settings, now)),
    };
    let status = if page.found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    super::html(&req, status, &page)
}

/// The advisory as its page shows it at `now`, when `viewer` may read it.
fn readable(
    source: &Source,
    viewer: Viewer,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Readable> {
    let advisory = &source.advisory;
    let current = advisory.current.as_ref()?;
    let content = &current.content;
    if !viewer.may_read(content.tlp) {
        return None;
    }
    let release = Release::of(advisory, &source.revisions, source.superseded_by.as_deref())?;
    let ended = ended(source, now);
    let name = |scope| {
        current
            .target_names
            .get(&scope)
            .cloned()
            .unwrap_or_default()
    };
    let targets = wording::targets(&content.decisions);
    let must_do = wording::advisory_says(&content.decisions, name);
    let base = settings.public_url.as_str().trim_end_matches('/');
    Some(Readable {
        title: content.title.to_string(),
        applies: ended.as_ref().is_none_or(|e| e.in_force_until.is_some()),
        ended,
        severity: content.severity.to_string(),
        tlp: format!(
            "TLP:{}",
            content.tlp.as_str().replace('_', "+").to_uppercase()
        ),
        published: day(release.initial),
        takes_effect: content.effective_at.filter(|at| *at > now).map(day),
        revised: (current.number > 1).then(|| {
            let at = current
                .published
                .as_ref()
                .map_or(current.updated_at, |(_, at)| *at);
            format!("Revision {}, {}", current.number, day(at))
        }),
        summary: content.summary.to_string(),
        body_html: markdown::to_html(&content.body),
        targets: targets
            .into_iter()
            .zip(must_do)
            .map(|(scope, must_do)| TargetView {
                name: name(scope),
                decisions: content
                    .decisions
                    .iter()
                    .filter(|d| d.scope == scope)
                    .map(wording::decision_words)
                    .collect(),
                must_do,
            })
            .collect(),
        evidence: source
            .evidence
            .iter()
            .map(|e| EvidenceView {
                title: e.title.clone(),
                source: e.source.clone(),
                observed: day(e.observed_at),
                summary: e.summary.clone(),
                links: e.references.iter().map(|r| r.as_str().to_owned()).collect(),
            })
            .collect(),
        history: release
            .history()
            .map(|(at, what)| (day(at), what.to_owned()))
            .collect(),
        csaf_url: csaf::self_url(base, advisory.id, &release),
    })
}

/// Whether and why the advisory no longer applies (at `now`), or will not.
fn ended(source: &Source, now: DateTime<Utc>) -> Option<Ended> {
    let advisory = &source.advisory;
    match (advisory.lifecycle.state, &advisory.withdrawn) {
        (AdvisoryState::Withdrawn, Some(withdrawal)) => Some(Ended {
            sentence: format!(
                "Withdrawn on {}: its decisions no longer apply. Why: {}",
                day(withdrawal.at),
                withdrawal.reason
            ),
            successor: None,
            in_force_until: None,
        }),
        (AdvisoryState::Superseded, _) => Some(Ended {
            sentence: format!(
                "Superseded{}: {}.",
                advisory
                    .superseded_at
                    .map_or(String::new(), |at| format!(" on {}", day(at))),
                match source.stands_until() {
                    Some(until) if until > now => format!(
                        "its successor takes effect on {}, and its decisions apply until then",
                        day(until)
                    ),
                    Some(until) => format!(
                        "its decisions applied until {}, when its successor took effect",
                        day(until)
                    ),
                    None => "its decisions no longer apply".into(),
                }
            ),
            in_force_until: source.stands_until().filter(|until| *until > now).map(day),
            // A link within the site: relative, so it works whatever
            // address the visitor came by.
            successor: source
                .superseded_by
                .as_ref()
                .map(|reference| (reference.clone(), format!("/advisories/{reference}"))),
        }),
        _ => None,
    }
}

/// "28 November 2026".
fn day(at: DateTime<Utc>) -> String {
    at.format("%-d %B %Y").to_string()
}
