//! The answer to "may I use this phone?", the same for the API and the page:
//! what was asked, as understood, and each matching model's clearance as
//! the caller may see it. Answered from the index, without the database.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{IndexedModel, LookupIndex};
use crate::domain::advisory::Viewer;
use crate::domain::clearance::Clearance;
use crate::domain::firmware::FirmwareVersion;
use crate::domain::imei::LookupKey;
use crate::domain::registry::ManufacturerRef;

/// Most matches a text question returns unless it asks for fewer.
pub const DEFAULT_MATCHES: usize = 20;
pub const MAX_MATCHES: usize = 100;
const MAX_FIRMWARE_CHARS: usize = 64;

/// A lookup question, parsed.
#[derive(Debug, Clone)]
pub struct Question {
    pub key: LookupKey,
    /// The version the device runs: only decisions whose range holds it apply.
    pub firmware: Option<FirmwareVersion>,
    /// Most matches to return for a text question.
    pub limit: usize,
}

/// The optional firmware version of a question: dotted numbers, at most 64
/// characters; blank is none.
pub fn parse_firmware(raw: Option<&str>) -> Result<Option<FirmwareVersion>, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if raw.chars().count() > MAX_FIRMWARE_CHARS {
        return Err(format!(
            "must be a version of at most {MAX_FIRMWARE_CHARS} characters"
        ));
    }
    FirmwareVersion::parse(raw).map(Some)
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

/// Answers `question` from the index at `now`, as `viewer` may see it,
/// linking each deciding advisory's page under `public_url`.
pub fn answer(
    index: &LookupIndex,
    question: Question,
    viewer: Viewer,
    now: DateTime<Utc>,
    public_url: &url::Url,
) -> LookupAnswer {
    let (kind, value, tac, found): (_, _, _, Vec<IndexedModel>) = match question.key {
        LookupKey::Text(text) => {
            let found = index.search(&text, question.limit);
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
    let firmware = question.firmware;
    LookupAnswer {
        matches: found
            .into_iter()
            .map(|m| LookupMatch {
                model: MatchedModel {
                    id: m.id(),
                    name: m.name().to_owned(),
                    manufacturer: m.manufacturer(),
                },
                clearance: m
                    .clearance(now, firmware.as_ref())
                    .seen_by(viewer)
                    .with_pages(public_url),
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
