//! `/api/v1/lookup`: may I use this phone? — by name, model number, TAC or
//! IMEI. The hottest path of the service: answered from the in-memory index
//! without touching the database.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::auth::MaybePrincipal;
use crate::domain::imei::{DeviceIdError, Imei, LookupKey, Tac};
use crate::error::ApiError;
use crate::lookup::answer::{
    self, DEFAULT_MATCHES, LookupAnswer, MAX_MATCHES, Question, Reader, parse_firmware,
};

#[derive(Debug, Deserialize, IntoParams)]
pub struct LookupParams {
    /// A name, alias, model number or manufacturer (at most 401 characters).
    q: Option<String>,
    /// A full IMEI (15 digits, Luhn-checked) or IMEISV (16 digits).
    imei: Option<String>,
    /// A Type Allocation Code: the first 8 digits of an IMEI.
    tac: Option<String>,
    /// The firmware version the device runs (dotted numbers, e.g. 6.3.1):
    /// only decisions whose firmware range holds it apply.
    firmware: Option<String>,
    /// Most matches to return for `q`, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// A 422 naming `field`.
fn invalid(field: &'static str) -> impl Fn(String) -> ApiError {
    move |message| ApiError::invalid(field, message)
}

impl LookupParams {
    fn parse(&self) -> Result<Question, ApiError> {
        let firmware = parse_firmware(self.firmware.as_deref()).map_err(invalid("firmware"))?;
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
        Ok(Question {
            key: self.key()?,
            firmware,
            limit,
        })
    }

    /// The one key asked by: a name, an IMEI or a TAC.
    fn key(&self) -> Result<LookupKey, ApiError> {
        let given: Vec<(&str, &str)> = [("q", &self.q), ("imei", &self.imei), ("tac", &self.tac)]
            .into_iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
            .collect();
        Ok(match given.as_slice() {
            [("q", text)] => LookupKey::text(text).map_err(|e| match e {
                DeviceIdError::Empty => ApiError::invalid("q", "must not be empty"),
                other => invalid("q")(other.to_string()),
            })?,
            [("imei", raw)] => {
                LookupKey::Imei(Imei::parse(raw).map_err(|e| invalid("imei")(e.to_string()))?)
            }
            [("tac", raw)] => {
                LookupKey::Tac(Tac::parse(raw).map_err(|e| invalid("tac")(e.to_string()))?)
            }
            _ => {
                return Err(ApiError::invalid(
                    "q",
                    "give exactly one of q (a name or model number), imei or tac",
                ));
            }
        })
    }
}

#[utoipa::path(
    get, path = "/api/v1/lookup", tag = "lookup",
    summary = "Is this device allowed?",
    description = "Give exactly one of `q`, `imei` or `tac`. Public when the deployment enables public lookup.",
    params(LookupParams),
    responses(
        (status = 200, body = LookupAnswer),
        (status = 401, description = "Public lookup is disabled and no valid token was given"),
        (status = 422, description = "An IMEI with a wrong check digit or length, a TAC that is not 8 digits"),
    ),
    security((), ("bearer" = []))
)]
pub async fn lookup(
    state: web::Data<AppState>,
    principal: MaybePrincipal,
    params: web::Query<LookupParams>,
) -> Result<HttpResponse, ApiError> {
    let viewer = principal.may_use_public(state.settings.public_lookup)?;
    let question = params.parse()?;
    let now = state.workflow.clock().now();
    let reader = Reader::new(viewer, &state.settings);
    Ok(HttpResponse::Ok().json(answer::answer(
        &state.lookup.snapshot(),
        question,
        &reader,
        now,
    )))
}
