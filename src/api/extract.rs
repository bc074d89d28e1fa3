//! What every handler shares at the edge: JSON bodies parsed into typed
//! values with per-field errors, cursor pagination, and ETag/If-Match.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, EntityTag};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, mime, web};
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::{Ready, ready};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

/// The largest JSON body accepted, set by the app from configuration.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON request body parsed into `T`: 415 unless the content type is JSON,
/// 413 over the limit, 400 when it is not JSON at all, 422 naming the field
/// when it is JSON of the wrong shape or with an invalid value.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = JsonLimit::of(req);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
        let declared = declared_length(req.headers());
        let payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType(
                    "send the body as JSON with `Content-Type: application/json`".into(),
                ));
            }
            let body = read_limited(payload, declared, limit).await?;
            parse_json(&body).map(JsonBody)
        })
    }
}

impl JsonLimit {
    /// The limit the app configured; 256 KiB where no app set one (unit
    /// tests of single handlers).
    pub fn of(req: &HttpRequest) -> usize {
        req.app_data::<JsonLimit>().map_or(256 * 1024, |l| l.0)
    }
}

/// The `Content-Length` the client declared, if it sent a sane one.
pub fn declared_length(headers: &header::HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads a whole body of at most `limit` bytes: 413 as soon as the declared
/// length or the bytes received say it is longer, without reading the rest.
pub async fn read_limited(
    mut payload: Payload,
    declared: Option<usize>,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the body is larger than the limit of {limit} bytes"
    ))
}

/// Parses JSON text into `T`, telling malformed JSON (400) from JSON that
/// does not fit (422, with the path of the field at fault). The text is
/// checked first on its own: serde_json reports some misfits as syntax
/// errors (a `false` where an enumeration's string belongs is "expected
/// value"), and only text that is not JSON at all is the caller's 400.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|error| {
        ApiError::BadRequest(format!(
            "the body is not valid JSON: {}",
            strip_position(&error.to_string())
        ))
    })?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let message = strip_position(&error.inner().to_string());
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ApiError::Validation(vec![field_error(&path, &message)])
    })
}

/// serde reports a missing field at its parent (an unknown one at itself):
/// name the missing field.
fn field_error(path: &str, message: &str) -> FieldError {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let field = match (named, path.is_empty()) {
        (Some(name), true) => name.to_owned(),
        (Some(name), false) => format!("{path}.{name}"),
        (None, true) => "body".to_owned(),
        (None, false) => path.to_owned(),
    };
    FieldError::new(field, message)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What a list is ordered by, carried in its opaque cursor as bytes.
pub trait CursorKey: Copy {
    fn to_bytes(self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

/// Lists in id order (UUIDv7 ids order by creation).
impl CursorKey for Uuid {
    fn to_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

/// Lists in sequence order (the audit chain): the sequence number in the
/// last eight of the cursor's sixteen bytes.
impl CursorKey for i64 {
    fn to_bytes(self) -> Vec<u8> {
        let mut bytes = vec![0; CURSOR_BYTES - 8];
        bytes.extend_from_slice(&self.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (_, seq) = bytes.split_last_chunk::<8>()?;
        Some(i64::from_be_bytes(*seq))
    }
}

/// Every cursor carries sixteen bytes, so every cursor is 22 characters of
/// base64url and any such string is one (the OpenAPI says so, and a client
/// that makes one up gets a page, not an error).
const CURSOR_BYTES: usize = 16;
pub const CURSOR_PATTERN: &str = "[A-Za-z0-9_-]{22}";
const CURSOR: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        // 22 characters hold 132 bits: the last four are not the key's.
        .with_decode_allow_trailing_bits(true),
);

/// `limit` and `cursor` as every list documents them; [`PageRequest`] is
/// what they parse into.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, nullable)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(nullable)]
    cursor: Option<String>,
}

/// `limit` and `cursor` as parsed from the query string; the cursor names
/// the last key of the previous page. As an extractor it reads them from
/// the query, beside the list's own filters ([`PageParams`]).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<K = Uuid> {
    pub after: Option<K>,
    pub limit: usize,
}

impl<K: CursorKey> PageRequest<K> {
    pub const DEFAULT_LIMIT: usize = 50;
    pub const MAX_LIMIT: usize = 500;

    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=Self::MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        format!("must be a whole number from 1 to {}", Self::MAX_LIMIT),
                    ));
                    Self::DEFAULT_LIMIT
                }
            },
        };
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => match decode_cursor(raw) {
                Some(key) => Some(key),
                None => {
                    errors.push(FieldError::new(
                        "cursor",
                        "is not a cursor this service returned",
                    ));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(Self { after, limit })
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    /// How many rows to fetch: one more than the page, to know if more follow.
    pub fn fetch(&self) -> i64 {
        self.limit as i64 + 1
    }

    /// Cuts the fetched rows to a page and computes the next cursor.
    pub fn page<T, V>(
        &self,
        mut rows: Vec<T>,
        key_of: impl Fn(&T) -> K,
        view: impl FnMut(T) -> V,
    ) -> Page<V> {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next_cursor = more
            .then(|| rows.last().map(|r| encode_cursor(key_of(r))))
            .flatten();
        Page {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

impl<K: CursorKey + 'static> FromRequest for PageRequest<K> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let page = web::Query::<PageParams>::from_request(req, payload)
            .into_inner()
            .and_then(|params| {
                Ok(Self::parse(
                    params.limit.as_deref(),
                    params.cursor.as_deref(),
                )?)
            });
        ready(page)
    }
}

fn encode_cursor<K: CursorKey>(key: K) -> String {
    CURSOR.encode(key.to_bytes())
}

fn decode_cursor<K: CursorKey>(raw: &str) -> Option<K> {
    let bytes = CURSOR.decode(raw).ok()?;
    (bytes.len() == CURSOR_BYTES).then(|| K::from_bytes(&bytes))?
}

/// The strong ETag of a resource at `version`.
pub fn etag(version: i64) -> header::EntityTag {
    header::EntityTag::new_strong(version.to_string())
}

/// `If-Match` as the OpenAPI document of a change shows it: with it, the
/// change applies only to the version read (412 otherwise, which
/// `crate::openapi` declares).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatchHeader {
    /// ETag from a previous read
    #[param(rename = "If-Match")]
    pub if_match: Option<String>,
}

/// `If-Match` where a change needs it (428 without it).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct RequiredIfMatchHeader {
    /// ETag from a previous read
    #[param(rename = "If-Match")]
    pub if_match: String,
}

/// The version an `If-Match` header asks for: `None` without the header
/// (or with `*`); a value that names no version of ours can never match.
pub fn if_match_version(req: &HttpRequest) -> Option<i64> {
    let raw = req
        .headers()
        .get(header::IF_MATCH)?
        .to_str()
        .unwrap_or("\"\"")
        .trim();
    if raw == "*" {
        return None;
    }
    Some(
        raw.strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(-1),
    )
}

/// A change to the resource at `{id}`: its id, the version `If-Match` asks
/// for ([`if_match_version`]) and the body, taken in that order (an unknown
/// id is a 404 before the body is read).
pub struct Change<T> {
    pub id: Uuid,
    pub expected: Option<i64>,
    pub body: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for Change<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let id = web::Path::<Uuid>::from_request(req, payload).into_inner();
        let expected = if_match_version(req);
        let body = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move {
            let id = id?.into_inner();
            let JsonBody(body) = body.await?;
            Ok(Self { id, expected, body })
        })
    }
}

/// 201 with `Location` and `ETag`.
pub fn created<T: Serialize>(location: String, version: i64, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header(header::ETag(etag(version)))
        .json(body)
}

/// 200 with `ETag`.
pub fn with_etag<T: Serialize>(version: i64, body: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(header::ETag(etag(version)))
        .json(body)
}

/// Whether the client's copy is current (RFC 9110 section 13.2.2):
/// `If-None-Match` decides when present (weak comparison); otherwise
/// `If-Modified-Since`, at the one-second precision of HTTP dates.
pub fn unchanged(req: &HttpRequest, tag: &EntityTag, last_modified: Option<DateTime<Utc>>) -> bool {
    match req.get_header::<header::IfNoneMatch>() {
        Some(header::IfNoneMatch::Items(tags)) => return tags.iter().any(|t| t.weak_eq(tag)),
        Some(header::IfNoneMatch::Any) => return true,
        None => {}
    }
    match (req.get_header::<header::IfModifiedSince>(), last_modified) {
        (Some(header::IfModifiedSince(since)), Some(last_modified)) => {
            let since: DateTime<Utc> = std::time::SystemTime::from(since).into();
            last_modified.timestamp() <= since.timestamp()
        }
        _ => false,
    }
}

/// A parser for a `true`/`false` query parameter.
pub fn boolean(raw: &str) -> Result<bool, String> {
    raw.parse().map_err(|_| "must be true or false".to_owned())
}

/// A parser for a query parameter holding the id of a `what`.
pub fn id_of(what: &'static str) -> impl FnOnce(&str) -> Result<Uuid, String> {
    move |raw| Uuid::parse_str(raw).map_err(|_| format!("must be {what} id (a UUID)"))
}

/// Parses an optional query parameter with `parse`, naming it on failure;
/// given but empty is a mistake too, not a way to leave it out.
pub fn query_param<T>(
    name: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, ApiError> {
    raw.map(|r| match r {
        "" => Err(ApiError::invalid(
            name,
            "must not be empty: leave it out instead",
        )),
        r => parse(r).map_err(|message| ApiError::invalid(name, message)),
    })
    .transpose()
}

/// A free-text filter as given, trimmed; blank is the same as left out.
pub fn text_filter(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// The first query parameter whose name or value, once decoded, holds a
/// control character (NUL, a line break, a tab…): no parameter of this
/// service has a use for one, and text databases refuse some (PostgreSQL
/// cannot store NUL), so they are refused for every route at once, as 422
/// naming the parameter.
pub fn control_character_in_query(query: &str) -> Option<ApiError> {
    if printable_once_decoded(query.as_bytes()) {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name.chars().chain(value.chars()).any(char::is_control))
        .map(|(name, _)| {
            ApiError::invalid(
                name.escape_debug().to_string(),
                "must not contain control characters",
            )
        })
}

/// Whether each byte of `query`, its `%` escapes decoded, is printable
/// ASCII: then no parameter can hold a control character, and the query
/// need not be parsed into parameters (every request with a query pays for
/// this look).
fn printable_once_decoded(query: &[u8]) -> bool {
    let printable = |byte: u8| (b' '..=b'~').contains(&byte);
    let hex = |byte: &u8| (*byte as char).to_digit(16);
    let mut rest = query;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        if byte == b'%'
            && let [high, low, after @ ..] = tail
            && let (Some(high), Some(low)) = (hex(high), hex(low))
        {
            if !printable((high * 16 + low) as u8) {
                return false;
            }
            rest = after;
        } else if !printable(byte) {
            // A '%' without two hex digits after it stands for itself.
            return false;
        }
    }
    true
}

/// The largest request header value accepted: a bearer token from an
/// identity provider is a few KiB; 16 KiB leaves room for any of them.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// 431 naming the first header longer than [`MAX_HEADER_BYTES`], answered
/// as a problem before anything parses it (a token, say).
pub fn oversized_header(headers: &header::HeaderMap) -> Option<ApiError> {
    headers
        .iter()
        .find(|(_, value)| value.len() > MAX_HEADER_BYTES)
        .map(|(name, value)| {
            ApiError::HeadersTooLarge(format!(
                "the {name} header is {} bytes; at most {MAX_HEADER_BYTES} are accepted",
                value.len()
            ))
        })
}

/// A CSV body of at most `limit` bytes: 415 unless declared as `text/csv`
/// (see [`require_csv`]), 413 when larger.
pub async fn read_csv(
    req: &HttpRequest,
    payload: web::Payload,
    what: &str,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    require_csv(req, what)?;
    read_limited(payload.into_inner(), declared_length(req.headers()), limit).await
}

/// 415 unless the body is declared as `text/csv` (in UTF-8, when a charset
/// is named).
fn require_csv(req: &HttpRequest, what: &str) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok());
    let utf8 = |m: &mime::Mime| {
        m.get_param(mime::CHARSET)
            .is_none_or(|charset| charset == mime::UTF_8)
    };
    match declared {
        Some(m) if m.type_() == mime::TEXT && m.subtype() == mime::CSV && utf8(&m) => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "send {what} as UTF-8 CSV with `Content-Type: text/csv`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        tags: Vec<u8>,
    }

    fn field_of(result: Result<Sample, ApiError>) -> String {
        match result {
            Err(ApiError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request_and_misfit_json_names_the_field() {
        assert!(matches!(
            parse_json::<Sample>(b"{\"name\":"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Sample>(br#"{"name":"x","tags":[]} trailing"#),
            Err(ApiError::BadRequest(_))
        ));
        assert_eq!(field_of(parse_json(br#"{"tags":[]}"#)), "name");
        assert_eq!(
            field_of(parse_json(br#"{"name":"x","tags":[1,"a"]}"#)),
            "tags[1]"
        );
        assert_eq!(
            field_of(parse_json(br#"{"name":"x","tags":[],"extra":1}"#)),
            "extra"
        );
        assert_eq!(field_of(parse_json(br#"{"name":7,"tags":[]}"#)), "name");
    }

    #[test]
    fn a_wrong_type_for_an_enumeration_names_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Finding {
            consent: crate::domain::evidence::Consent,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Evidence {
            findings: Vec<Finding>,
        }
        match parse_json::<Evidence>(br#"{"findings":[{"consent":false}]}"#) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "findings[0].consent"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn control_characters_in_a_query_are_refused_naming_the_parameter() {
        let field = |query: &str| match control_character_in_query(query) {
            Some(ApiError::Validation(errors)) => Some(errors[0].field.clone()),
            _ => None,
        };
        assert_eq!(field("q=%00"), Some("q".into()));
        assert_eq!(field("limit=5&q=a%00b"), Some("q".into()));
        assert_eq!(field("entity_id=x%0Ay"), Some("entity_id".into()));
        assert_eq!(field("q%01=x"), Some("q\\u{1}".into()));
        assert_eq!(field("q=%09"), Some("q".into()));
        assert_eq!(field("q=%7F"), Some("q".into()));
        // U+0085, a control character of two bytes once decoded.
        assert_eq!(field("q=ok&note=%C2%85"), Some("note".into()));
        assert_eq!(field("q=redmi+1s&firmware=6.3.1&name=%E5%B0%8F"), None);
        assert_eq!(field("q=phone%20042424&limit=5"), None);
        assert_eq!(field("q=100%&r=%2"), None);
        assert_eq!(field(""), None);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        let page = PageRequest::parse(Some("10"), Some(&encode_cursor(id))).unwrap();
        assert_eq!(page.after, Some(id));
        assert_eq!(page.limit, 10);
        let seq = PageRequest::<i64>::parse(None, Some(&encode_cursor(42_i64))).unwrap();
        assert_eq!(seq.after, Some(42));
        assert_eq!(seq.limit, PageRequest::<i64>::DEFAULT_LIMIT);
        for (limit, cursor) in [
            (Some("0"), None),
            (Some("501"), None),
            (Some("ten"), None),
            (None, Some("!!")),
            (None, Some("AAAAAAAAAAAAAAAAAAAAA")),
            (None, Some("AAAAAAAAAAAAAAAAAAAAAAA")),
        ] {
            assert!(
                PageRequest::<Uuid>::parse(limit, cursor).is_err(),
                "{limit:?} {cursor:?}"
            );
        }
        // Whatever matches the documented pattern is a place in the list.
        let pattern = regex_lite::Regex::new(&format!("^{CURSOR_PATTERN}$")).unwrap();
        for made_up in ["zzzzzzzzzzzzzzzzzzzzzz", "A-_9A-_9A-_9A-_9A-_9A-"] {
            assert!(pattern.is_match(made_up));
            assert!(PageRequest::<Uuid>::parse(None, Some(made_up)).is_ok());
            assert!(PageRequest::<i64>::parse(None, Some(made_up)).is_ok());
        }
        assert!(pattern.is_match(&encode_cursor(id)));
        assert!(pattern.is_match(&encode_cursor(42_i64)));
    }

    #[test]
    fn pages_carry_a_cursor_only_when_more_rows_follow() {
        let request = PageRequest {
            after: None,
            limit: 2,
        };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = request.page(ids.clone(), |id| *id, |id| id);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_cursor, Some(encode_cursor(ids[1])));
        let last = request.page(ids[..2].to_vec(), |id| *id, |id| id);
        assert_eq!(last.next_cursor, None);
    }
}
