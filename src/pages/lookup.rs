//! `GET /lookup`: the page an officer or a relative opens on a phone to ask
//! "may I use this phone?". One box takes a name, a model number, a TAC or
//! an IMEI ([`LookupKey::classify`] tells them apart); the form submits by
//! GET so an answer has a shareable URL. It answers through the same code as
//! `/api/v1/lookup` and puts the clearance in plain words. No script.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::MaybePrincipal;
use crate::domain::advisory::Viewer;
use crate::domain::imei::{DeviceIdError, LookupKey};
use crate::domain::wording::{self, Wording};
use crate::lookup::answer::{self, DEFAULT_MATCHES, LookupMatch, Question, Reader, parse_firmware};

/// What the form submits; both optional, so the bare URL shows the form.
#[derive(Debug, Deserialize)]
pub struct LookupForm {
    q: Option<String>,
    firmware: Option<String>,
}

/// One model found, in words.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// "Not allowed", "Allowed from 7.1.2" and so on.
    pub headline: String,
    /// What completes it: other versions, conditions, what to check.
    pub details: Vec<String>,
    /// The CSS class that colours the answer: `no`, `partly`, `yes` or
    /// `unknown` (the words alone carry the meaning).
    pub tone: &'static str,
    /// Manufacturer and name.
    pub model: String,
    /// The advisories behind the answer that the visitor may read, each
    /// once: several when versions are decided differently.
    pub decided_by: Vec<DecidedBy>,
}

/// An advisory behind an answer: its reference, page and title.
#[derive(Debug, PartialEq, Eq)]
pub struct DecidedBy {
    pub reference: String,
    pub page: Option<String>,
    pub title: String,
}

#[derive(Template)]
#[template(path = "pages/lookup.html")]
struct LookupPage<'a> {
    q: &'a str,
    firmware: &'a str,
    /// A plain sentence instead of (or before) the verdicts: a mistyped
    /// number, nothing found, sign-in needed.
    message: Option<String>,
    verdicts: Vec<Verdict>,
    /// More models match than are shown.
    more: bool,
}

#[utoipa::path(
    get, path = "/lookup", tag = "pages",
    summary = "The lookup page: may I use this phone?",
    description = "A form with one box for a name, model number, TAC or IMEI, and one for the firmware version; the answer in plain words. No script.",
    params(
        ("q" = Option<String>, Query, description = "A name, model number, TAC or IMEI"),
        ("firmware" = Option<String>, Query, description = "The version the phone runs"),
    ),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 401, description = "Lookups need a sign-in on this deployment", content_type = "text/html", body = String),
        (status = 422, description = "The question could not be understood; the page says why", content_type = "text/html", body = String),
    ),
)]
pub async fn lookup_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: MaybePrincipal,
    form: web::Query<LookupForm>,
) -> HttpResponse {
    let q = form.q.as_deref().map(str::trim).unwrap_or_default();
    let firmware = form.firmware.as_deref().map(str::trim).unwrap_or_default();
    let (status, message, verdicts, more) =
        match principal.may_use_public(state.settings.public_lookup) {
            Err(_) => (
                StatusCode::UNAUTHORIZED,
                Some(
                    "Looking up phones here needs a sign-in on this service. \
                 Ask your security office whether a phone is allowed."
                        .to_owned(),
                ),
                Vec::new(),
                false,
            ),
            Ok(_) if q.is_empty() => (StatusCode::OK, None, Vec::new(), false),
            Ok(viewer) => match ask(&state, q, firmware, viewer) {
                Ok((message, verdicts, more)) => (StatusCode::OK, message, verdicts, more),
                Err(message) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(message),
                    Vec::new(),
                    false,
                ),
            },
        };
    let page = LookupPage {
        q,
        firmware,
        message,
        verdicts,
        more,
    };
    super::html(&req, status, &page)
}

/// Answers the question (with a sentence when nothing matches, and whether
/// more models match than are shown), or says in plain words what is wrong
/// with it.
fn ask(
    state: &AppState,
    q: &str,
    firmware: &str,
    viewer: Viewer,
) -> Result<(Option<String>, Vec<Verdict>, bool), String> {
    let key = LookupKey::classify(q).map_err(|e| mistyped(&e))?;
    let firmware = parse_firmware(Some(firmware)).map_err(|_| {
        "We don't understand that software version: write it as numbers with dots, \
         such as 6.3.1, or leave it empty."
            .to_owned()
    })?;
    let index = state.lookup.snapshot();
    let now = state.workflow.clock().now();
    let question = Question {
        key,
        firmware: firmware.clone(),
        limit: DEFAULT_MATCHES,
    };
    let reader = Reader::new(viewer, &state.settings);
    let found = answer::answer(&index, question, &reader, now);
    let verdicts = found
        .matches
        .iter()
        .map(|found| {
            let wording = match &firmware {
                Some(version) => {
                    let overall = index
                        .get(found.model.id)
                        .map(|m| m.clearance(now, None).seen_by(viewer))
                        .unwrap_or_else(|| found.clearance.clone());
                    wording::words_for_version(&found.clearance, &overall, version)
                }
                None => wording::words(&found.clearance),
            };
            verdict(found, wording)
        })
        .collect();
    Ok((found.message, verdicts, found.more_matches))
}

/// A malformed number, said for someone reading it off a sticker.
fn mistyped(error: &DeviceIdError) -> String {
    match error {
        DeviceIdError::CheckDigit => "The last digit doesn't match — check the number.".to_owned(),
        DeviceIdError::ImeiLength { found } => {
            format!("An IMEI has 15 digits; this has {found} — check the number.")
        }
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or(text)
        }
    }
}

/// A match in plain words.
fn verdict(found: &LookupMatch, wording: Wording) -> Verdict {
    let mut decided_by: Vec<DecidedBy> = Vec::new();
    for advisory in &found.clearance.advisories {
        if decided_by.iter().all(|d| d.reference != advisory.reference) {
            decided_by.push(DecidedBy {
                reference: advisory.reference.clone(),
                page: advisory.page.clone(),
                title: advisory.title.clone(),
            });
        }
    }
    Verdict {
        headline: wording.headline,
        details: wording.details,
        tone: wording.tone.class(),
        model: wording::model_name(&found.model.manufacturer.name, &found.model.name),
        decided_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_numbers_get_plain_messages() {
        assert_eq!(
            mistyped(&DeviceIdError::CheckDigit),
            "The last digit doesn't match — check the number."
        );
        assert_eq!(
            mistyped(&DeviceIdError::ImeiLength { found: 14 }),
            "An IMEI has 15 digits; this has 14 — check the number."
        );
        assert!(mistyped(&DeviceIdError::Empty).starts_with("Nothing"));
    }
}
