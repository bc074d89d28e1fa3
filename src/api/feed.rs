//! `/feed.atom`: the public Atom feed of TLP:CLEAR advisories, cheap to poll
//! thanks to `ETag`/`Last-Modified` and 304 answers.

use std::time::SystemTime;

use actix_web::http::header::{self, EntityTag, HttpDate};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::extract::unchanged;
use crate::app::AppState;
use crate::db::advisories;
use crate::error::ApiError;
use crate::export::atom::{self, FEED_ENTRIES};

pub const ATOM: &str = "application/atom+xml";

#[utoipa::path(
    get, path = "/feed.atom", tag = "advisories",
    summary = "Atom feed of published TLP:CLEAR advisories",
    description = "Public. The 100 most recently changed TLP:CLEAR advisories, newest first. Each \
        entry's id is `urn:uuid:<advisory id>`, its title `[REFERENCE] Title`, its `updated` the \
        publication time of the revision in force (an amendment updates the entry; a withdrawal or \
        supersession too). Withdrawn and superseded advisories stay in the feed, marked so in the \
        title and summary, so followers learn that a decision no longer applies. Each entry links \
        the advisory's page (`alternate`, `text/html`), the advisory in the API (`related`) and \
        its CSAF document (`alternate`, `application/json`), gives its first publication as \
        `published`, and has one `category` per decision (`term` the decision, `label` it in \
        words). The \
        `ETag` is a hash of the body; `If-None-Match` or `If-Modified-Since` answer 304 when \
        nothing changed.",
    params(
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier fetch"),
        ("If-Modified-Since" = Option<String>, Header, description = "The Last-Modified of an earlier fetch"),
    ),
    responses(
        (status = 200, description = "The feed", content_type = "application/atom+xml", body = String,
         headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Unchanged since the given ETag or date"),
        (status = 503),
    )
)]
pub async fn feed(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let items = state
        .db
        .read(|conn| advisories::feed(conn, FEED_ENTRIES))
        .await?;
    let base = state.settings.public_url.as_str().trim_end_matches('/');
    let body = atom::render(&items, base);
    let tag = EntityTag::new_strong(hex::encode(&Sha256::digest(body.as_bytes())[..16]));
    let last_modified = items
        .iter()
        .map(|item| item.updated)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let modified = HttpDate::from(SystemTime::from(last_modified));
    let fresh = unchanged(&req, &tag, Some(last_modified));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(header::ETag(tag))
        .insert_header(header::LastModified(modified))
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"));
    Ok(if fresh {
        response.finish()
    } else {
        response.content_type(ATOM).body(body)
    })
}
