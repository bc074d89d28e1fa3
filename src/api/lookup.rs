//! `/api/v1/lookup`: may I use this phone? — by name, model number, TAC or
//! IMEI. The hottest path of the service: answered from the in-memory index
//! without touching the database.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::query_param;
use crate::app::AppState;
use crate::auth::{MaybePrincipal, Role};
use crate::domain::clearance::Clearance;
use crate::domain::firmware::FirmwareVersion;
use crate::domain::imei::{Imei, LookupKey, Tac};
use crate::domain::registry::ManufacturerRef;
use crate::error::{ApiError, FieldError, Problem};
use crate::lookup::{IndexedModel, LookupIndex};

pub(crate) const DEFAULT_MATCHES: usize = 20;
const MAX_MATCHES: usize = 100;
const MAX_FIRMWARE_CHARS: usize = 64;

#[derive(Debug, Deserialize, IntoParams)]
pub struct LookupParams {
    /// A name, alias, model number or manufacturer.
    q: Option<String>,
    /// A full IMEI (15 digits, Luhn-checked) or IMEISV (16 digits).
    imei: Option<String>,
    /// A Type Allocation Code: the first 8 digits of an IMEI.
    tac: Option<String>,
    /// The firmware version the device runs (dotted numbers, e.g. 6.3.1):
    /// only decisions whose firmware range holds it apply.
    firmware: Option<String>,
    /// Most matches to return for `q`, 1 to 100 (default 20).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// What was asked, as understood.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupQuery {
    /// `text`, `imei` or `tac`.
    #[schema(example = "imei")]
    pub kind: &'static str,
    /// The query as normalised (an IMEI without spaces, trimmed text).
    pub value: String,
    /// The TAC an IMEI or TAC query resolved to.
    pub tac: Option<String>,
    pub firmware: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatchedModel {
    pub id: uuid::Uuid,
    pub name: String,
    pub manufacturer: ManufacturerRef,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupMatch {
    pub model: MatchedModel,
    pub clearance: Clearance,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupAnswer {
    pub query: LookupQuery,
    /// Best match first; empty when nothing matches (an unknown TAC too).
    pub matches: Vec<LookupMatch>,
}

impl LookupParams {
    fn parse(&self) -> Result<(LookupKey, Option<FirmwareVersion>, usize), ApiError> {
        let given: Vec<(&str, &str)> = [("q", &self.q), ("imei", &self.imei), ("tac", &self.tac)]
            .into_iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
            .collect();
        let question = match given.as_slice() {
            [("q", text)] if !text.trim().is_empty() => LookupKey::Text(text.trim().to_owned()),
            [("q", _)] => return Err(ApiError::invalid("q", "must not be empty")),
            [("imei", raw)] => LookupKey::Imei(
                Imei::parse(raw).map_err(|e| ApiError::invalid("imei", e.to_string()))?,
            ),
            [("tac", raw)] => LookupKey::Tac(
                Tac::parse(raw).map_err(|e| ApiError::invalid("tac", e.to_string()))?,
            ),
            _ => {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "q",
                    "give exactly one of q (a name or model number), imei or tac",
                )]));
            }
        };
        let firmware = parse_firmware(self.firmware.as_deref())?;
        let limit = match self.limit.as_deref() {
            None => DEFAULT_MATCHES,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_MATCHES).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_MATCHES}"),
                    )
                })?,
        };
        Ok((question, firmware, limit))
    }
}

/// The optional firmware version of a lookup, the same for the API and the
/// page.
pub(crate) fn parse_firmware(raw: Option<&str>) -> Result<Option<FirmwareVersion>, ApiError> {
    query_param("firmware", raw.map(str::trim), |raw| {
        if raw.chars().count() > MAX_FIRMWARE_CHARS {
            return Err(format!(
                "must be a version of at most {MAX_FIRMWARE_CHARS} characters"
            ));
        }
        FirmwareVersion::parse(raw)
    })
}

/// Whether this caller may look up, and whether they are anonymous: with
/// public lookup anyone may ask; a token, when sent, must still be valid
/// (the extractor refuses a bad one).
pub(crate) fn caller_may_look_up(
    state: &AppState,
    principal: &MaybePrincipal,
) -> Result<bool, ApiError> {
    match &principal.0 {
        Some(principal) if !state.settings.public_lookup => principal.require(Role::Reader)?,
        None if !state.settings.public_lookup => {
            return Err(ApiError::Unauthorized("a bearer token is required".into()));
        }
        _ => {}
    }
    Ok(principal.0.is_none())
}

/// Answers a lookup question from the index; anonymous callers see only
/// what may be shared with the public. The API and the page both answer
/// through here.
pub(crate) fn answer(
    index: &LookupIndex,
    question: LookupKey,
    firmware: Option<FirmwareVersion>,
    limit: usize,
    anonymous: bool,
) -> LookupAnswer {
    let (kind, value, tac, found): (_, _, _, Vec<IndexedModel>) = match question {
        LookupKey::Text(text) => {
            let found = index.search(&text, limit);
            ("text", text, None, found)
        }
        LookupKey::Imei(imei) => {
            let tac = imei.tac();
            let found = index.by_tac(&tac).into_iter().collect();
            (
                "imei",
                imei.as_str().to_owned(),
                Some(tac.as_str().to_owned()),
                found,
            )
        }
        LookupKey::Tac(tac) => {
            let found = index.by_tac(&tac).into_iter().collect();
            (
                "tac",
                tac.as_str().to_owned(),
                Some(tac.as_str().to_owned()),
                found,
            )
        }
    };
    let now = Utc::now();
    LookupAnswer {
        matches: found
            .into_iter()
            .map(|m| LookupMatch {
                model: MatchedModel {
                    id: m.id(),
                    name: m.name().to_owned(),
                    manufacturer: m.manufacturer(),
                },
                clearance: {
                    let clearance = m.clearance(now, firmware.as_ref());
                    if anonymous {
                        clearance.for_the_public()
                    } else {
                        clearance
                    }
                },
            })
            .collect(),
        query: LookupQuery {
            kind,
            value,
            tac,
            firmware: firmware.map(|f| f.to_string()),
        },
    }
}

#[utoipa::path(
    get, path = "/api/v1/lookup", tag = "lookup",
    summary = "Is this device allowed?",
    description = "Give exactly one of `q`, `imei` or `tac`. Public when the deployment enables public lookup.",
    params(LookupParams),
    responses(
        (status = 200, body = LookupAnswer),
        (status = 401, description = "Public lookup is disabled and no valid token was given", body = Problem),
        (status = 422, description = "An IMEI with a wrong check digit or length, a TAC that is not 8 digits", body = Problem),
    ),
    security((), ("bearer" = []))
)]
pub async fn lookup(
    state: web::Data<AppState>,
    principal: MaybePrincipal,
    params: web::Query<LookupParams>,
) -> Result<HttpResponse, ApiError> {
    let anonymous = caller_may_look_up(&state, &principal)?;
    let (question, firmware, limit) = params.parse()?;
    Ok(HttpResponse::Ok().json(answer(
        &state.lookup.snapshot(),
        question,
        firmware,
        limit,
        anonymous,
    )))
}
