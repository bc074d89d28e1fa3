//! The answer to "may I use this phone?", the same for the API and the page:
//! what was asked, as understood, and each matching model's clearance as
//! the caller may see it. Answered from the index, without the database.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::index::MatchedBy;
use super::{IndexedModel, LookupIndex};
use crate::config::Settings;
use crate::domain::advisory::Viewer;
use crate::domain::clearance::Clearance;
use crate::domain::firmware::FirmwareVersion;
use crate::domain::imei::LookupKey;
use crate::domain::registry::ManufacturerRef;
use crate::domain::wording;

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
    /// How the model answers what was asked: `name_start` and `words` say
    /// it may be another model than the one asked about.
    pub matched_by: MatchedBy,
    pub clearance: Clearance,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupAnswer {
    pub query: LookupQuery,
    /// Best match first; empty when nothing matches (an unknown TAC too).
    pub matches: Vec<LookupMatch>,
    /// More models match the name than `limit` let through: a longer name
    /// narrows the answer.
    pub more_matches: bool,
    /// What to tell the person asking, as the lookup page says it, when
    /// nothing matches (a number no model claims has not been assessed, and
    /// whom to ask) or when the models found only resemble the name asked.
    #[schema(
        example = "This phone is not in the register — it has not been assessed. Ask your security office before you use it."
    )]
    pub message: Option<String>,
}

/// Where an answer is read: its deciding advisories' pages are linked under
/// `public_url`, and `contact` is whom to ask about a phone nobody assessed.
pub struct Reader<'a> {
    viewer: Viewer,
    public_url: &'a url::Url,
    contact: Option<&'a str>,
}

impl<'a> Reader<'a> {
    /// `viewer`, reading on the deployment `settings` describe.
    pub fn new(viewer: Viewer, settings: &'a Settings) -> Self {
        Self {
            viewer,
            public_url: &settings.public_url,
            contact: settings.contact.as_deref(),
        }
    }
}

/// Answers `question` from the index at `now`, as `reader` may see it.
pub fn answer(
    index: &LookupIndex,
    question: Question,
    reader: &Reader<'_>,
    now: DateTime<Utc>,
) -> LookupAnswer {
    let by_name = matches!(question.key, LookupKey::Text(_));
    let (kind, value, tac, mut found): (_, _, _, Vec<(MatchedBy, IndexedModel)>) =
        match question.key {
            LookupKey::Text(text) => {
                let found = index.search(&text, question.limit + 1);
                ("text", text, None, found)
            }
            LookupKey::Imei(imei) => {
                let tac = imei.tac();
                let found = index
                    .by_tac(&tac)
                    .into_iter()
                    .map(|m| (MatchedBy::Number, m))
                    .collect();
                (
                    "imei",
                    imei.as_str().to_owned(),
                    Some(tac.as_str().to_owned()),
                    found,
                )
            }
            LookupKey::Tac(tac) => {
                let found = index
                    .by_tac(&tac)
                    .into_iter()
                    .map(|m| (MatchedBy::Number, m))
                    .collect();
                (
                    "tac",
                    tac.as_str().to_owned(),
                    Some(tac.as_str().to_owned()),
                    found,
                )
            }
        };
    let firmware = question.firmware;
    let more_matches = found.len() > question.limit;
    found.truncate(question.limit);
    let message = match found.first() {
        None => Some(nothing_found(by_name, &value, reader.contact)),
        Some((matched, _)) if matched.is_approximate() => {
            Some(wording::no_exact_match(&value, found.len()))
        }
        Some(_) => None,
    };
    LookupAnswer {
        message,
        more_matches,
        matches: found
            .into_iter()
            .map(|(matched_by, m)| LookupMatch {
                matched_by,
                model: MatchedModel {
                    id: m.id(),
                    name: m.name().to_owned(),
                    manufacturer: m.manufacturer(),
                },
                clearance: m
                    .clearance(now, firmware.as_ref())
                    .seen_by(reader.viewer)
                    .with_pages(reader.public_url),
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

/// What to say when nothing matches `asked`, a name (`by_name`) or a
/// number; `contact` is whom to ask.
fn nothing_found(by_name: bool, asked: &str, contact: Option<&str>) -> String {
    if !by_name {
        // A valid number no model claims: its maker's TAC was never
        // registered, so nobody decided on it.
        return wording::not_in_the_register(contact);
    }
    let not_a_name = format!("No phone has the name or model number “{asked}”.");
    match LookupKey::digits_in(asked) {
        // Only a caller of the API asks for these by name: the page takes
        // them as the numbers they are.
        Some(8 | 14..=16) => format!("{not_a_name} If it is a TAC or an IMEI, ask for it as one."),
        Some(digits @ 10..=17) => format!(
            "{not_a_name} If it is an IMEI: an IMEI has 15 digits; this has {digits} — check the number."
        ),
        _ => {
            format!("No phone called “{asked}” is registered. Check the spelling, or try the IMEI.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_found_tells_a_number_from_a_name() {
        let office = Some("Security office, ext. 4242");
        assert_eq!(
            nothing_found(false, "864521021234562", office),
            wording::not_in_the_register(office)
        );
        assert_eq!(
            nothing_found(true, "Nokia 3310", office),
            "No phone called “Nokia 3310” is registered. Check the spelling, or try the IMEI."
        );
        // A model number of a few digits is still a name.
        assert_eq!(
            nothing_found(true, "2014011", office),
            "No phone called “2014011” is registered. Check the spelling, or try the IMEI."
        );
        // An IMEI missing two digits, as the page passes it on.
        assert_eq!(
            nothing_found(true, "86452102 12345", office),
            "No phone has the name or model number “86452102 12345”. If it is an IMEI: an IMEI has 15 digits; this has 13 — check the number."
        );
        // A TAC or an IMEI given to the API as a name.
        for number in ["35123406", "864521021234562"] {
            assert_eq!(
                nothing_found(true, number, office),
                format!(
                    "No phone has the name or model number “{number}”. If it is a TAC or an IMEI, ask for it as one."
                )
            );
        }
    }
}
