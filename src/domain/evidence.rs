//! Evidence about device models: what was observed, by whom, what the
//! device sent where, and what was answered since. Evidence is never edited:
//! a correction is a new record that supersedes the old, and responses and
//! artifacts are only ever appended.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::registry::Country;
use super::severity::Severity;
use super::text::{Line, Prose};

crate::text_enum! {
    /// How the evidence was obtained.
    pub enum EvidenceKind {
        LabTest,
        FieldReport,
        VendorStatement,
        ThirdPartyReport,
        Intelligence,
    }
}

crate::text_enum! {
    /// Which data a device was seen sending.
    pub enum DataKind {
        Imei,
        Imsi,
        PhoneNumber,
        Carrier,
        Contacts,
        Sms,
        CallLog,
        Location,
        Photos,
        Other,
    }
}

crate::text_enum! {
    /// Whether the user agreed to the data being sent.
    pub enum Consent {
        Yes,
        No,
        Unknown,
    }
}

crate::text_enum! {
    /// What a response appended to evidence is.
    pub enum ResponseKind {
        VendorResponse,
        Retest,
        Acknowledgement,
        /// The evidence it is attached to corrects (and may supersede)
        /// another record.
        Correction,
    }
}

impl ResponseKind {
    /// Only a correction may name evidence it supersedes: a vendor's answer
    /// or a retest adds to a record, it does not replace one.
    pub fn may_supersede(self) -> bool {
        self == Self::Correction
    }
}

/// One observed flow of data: what left the device, where to, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub data: DataKind,
    /// The host or organisation the data went to.
    #[schema(example = "api.account.xiaomi.com (Beijing)")]
    pub destination: Line,
    /// Where the destination is; null when not known.
    #[serde(default)]
    pub country: Option<Country>,
    /// Whether the data travelled encrypted; null when not known.
    #[serde(default)]
    pub encrypted: Option<bool>,
    pub consent: Consent,
    #[serde(default)]
    #[schema(example = "while the cloud messaging service was on")]
    pub note: Option<Prose>,
}

const MAX_REFERENCE_CHARS: usize = 2000;

/// A link to where the evidence is published: an absolute http or https URL
/// of at most 2000 characters, kept in its normalised form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, max_length = 2000, example = "https://www.f-secure.com/weblog/archives/00002716.html")]
pub struct Reference(String);

impl Reference {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.chars().count() > MAX_REFERENCE_CHARS {
            return Err(format!("must be at most {MAX_REFERENCE_CHARS} characters"));
        }
        let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("must be an absolute http:// or https:// URL".into());
        }
        let normalised = String::from(url);
        // Normalising percent-encodes; the result must still fit.
        if normalised.chars().count() > MAX_REFERENCE_CHARS {
            return Err(format!("must be at most {MAX_REFERENCE_CHARS} characters"));
        }
        Ok(Self(normalised))
    }
}

crate::parsed_text!(Reference);

/// The models a piece of evidence is about: at least one, each once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(try_from = "Vec<Uuid>")]
#[schema(value_type = Vec<Uuid>, min_items = 1)]
pub struct ModelIds(Vec<Uuid>);

impl ModelIds {
    pub fn as_slice(&self) -> &[Uuid] {
        &self.0
    }
}

impl TryFrom<Vec<Uuid>> for ModelIds {
    type Error = String;
    fn try_from(ids: Vec<Uuid>) -> Result<Self, String> {
        if ids.is_empty() {
            return Err("must name at least one model".into());
        }
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(format!("names the model {id} more than once"));
            }
        }
        Ok(Self(ids))
    }
}

const MAX_FILENAME_CHARS: usize = 255;

/// The name an artifact is filed and downloaded under: 1 to 255 characters,
/// a plain name (no path separators, no `.` or `..`) without control
/// characters, so it is safe in a `Content-Disposition` and on any disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > MAX_FILENAME_CHARS {
            return Err(format!("must be at most {MAX_FILENAME_CHARS} characters"));
        }
        if raw == "." || raw == ".." {
            return Err("must be a file name, not `.` or `..`".into());
        }
        if raw.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
            return Err("must not contain `/`, `\\` or control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 digest as 64 lower-case hex digits: what an artifact is
/// stored and addressed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses hex digits in either case; anything else is not a digest.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(raw, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A file attached to evidence (a capture, a report, a screenshot), stored
/// by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Artifact {
    /// The SHA-256 of the bytes, 64 lower-case hex digits; also the ETag.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    pub filename: String,
    #[schema(example = "application/vnd.tcpdump.pcap")]
    pub content_type: String,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
}

/// Something appended to evidence after it was filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EvidenceResponse {
    pub id: Uuid,
    pub evidence_id: Uuid,
    pub kind: ResponseKind,
    /// Who answered, e.g. the vendor or the tester.
    #[schema(example = "Xiaomi (Hugo Barra)")]
    pub author: String,
    pub received_at: DateTime<Utc>,
    pub text: String,
    /// For a correction: the evidence record this one supersedes.
    pub supersedes: Option<Uuid>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// An evidence record with everything appended to it since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Evidence {
    pub id: Uuid,
    /// The models it is about, in the order given.
    pub model_ids: Vec<Uuid>,
    #[schema(example = "Redmi 1S sends personal data to servers in Beijing")]
    pub title: String,
    /// Who observed it.
    #[schema(example = "F-Secure Labs")]
    pub source: String,
    pub kind: EvidenceKind,
    pub observed_at: DateTime<Utc>,
    /// The firmware the observation was made on.
    pub firmware: Option<String>,
    pub summary: String,
    pub severity: Severity,
    pub findings: Vec<Finding>,
    pub references: Vec<Reference>,
    /// Oldest first.
    pub responses: Vec<EvidenceResponse>,
    pub artifacts: Vec<Artifact>,
    /// The evidence records whose corrections supersede this one.
    pub superseded_by: Vec<Uuid>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Evidence {
    /// The representation's version, for its ETag. Nothing about evidence
    /// is ever changed, only appended to, so counting what was appended
    /// tells every state of it apart.
    pub fn version(&self) -> i64 {
        (1 + self.responses.len() + self.artifacts.len() + self.superseded_by.len()) as i64
    }
}

/// Evidence to file, as a request body gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvidence {
    /// The models it is about: at least one, each an existing model.
    pub model_ids: ModelIds,
    #[schema(example = "Redmi 1S sends personal data to servers in Beijing")]
    pub title: Line,
    /// Who observed it.
    #[schema(example = "F-Secure Labs")]
    pub source: Line,
    pub kind: EvidenceKind,
    /// When it was observed (RFC 3339).
    pub observed_at: DateTime<Utc>,
    /// The firmware it was observed on.
    #[serde(default)]
    #[schema(example = "JHCCNBF45.0")]
    pub firmware: Option<Line>,
    pub summary: Prose,
    pub severity: Severity,
    /// What the device sent where; may be empty.
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// A response to append to evidence, as a request body gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResponse {
    pub kind: ResponseKind,
    /// Who answered.
    #[schema(example = "Xiaomi (Hugo Barra)")]
    pub author: Line,
    /// When the answer was received (RFC 3339).
    pub received_at: DateTime<Utc>,
    pub text: Prose,
    /// Only with kind `correction`: another evidence record that the
    /// evidence this response is appended to corrects and supersedes.
    #[serde(default)]
    pub supersedes: Option<Uuid>,
}

impl NewResponse {
    /// What is wrong with appending this response to evidence `to`, given
    /// whether the record it would supersede exists.
    pub fn problem(&self, to: Uuid, superseded_exists: bool) -> Option<&'static str> {
        let superseded = self.supersedes?;
        if !self.kind.may_supersede() {
            Some("only a response of kind `correction` may supersede evidence")
        } else if superseded == to {
            Some("must name another evidence record, not this one")
        } else if !superseded_exists {
            Some("no evidence has this id")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_absolute_web_urls() {
        assert_eq!(
            Reference::parse(" https://example.org/report?id=1 ")
                .unwrap()
                .as_str(),
            "https://example.org/report?id=1"
        );
        for bad in [
            "example.org/report",
            "/relative",
            "ftp://example.org/x",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://",
            "",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let long = format!("https://example.org/{}", "a".repeat(2000));
        assert!(Reference::parse(&long).is_err());
    }

    #[test]
    fn model_ids_are_at_least_one_and_unique() {
        let id = Uuid::now_v7();
        assert!(ModelIds::try_from(vec![]).is_err());
        assert!(ModelIds::try_from(vec![id, id]).is_err());
        assert_eq!(ModelIds::try_from(vec![id]).unwrap().as_slice(), [id]);
    }

    #[test]
    fn file_names_are_plain_names() {
        for good in ["capture.pcap", "report (final).pdf", "報告.txt", "..hidden"] {
            assert_eq!(FileName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "..\\x",
            "nul\0byte",
            "line\nbreak",
            &"x".repeat(256),
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(FileName::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn digests_are_64_hex_digits() {
        let hex = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        let digest = Sha256Digest::parse(hex).unwrap();
        assert_eq!(digest.to_hex(), hex.to_lowercase());
        assert!(Sha256Digest::parse(&hex[1..]).is_none());
        assert!(Sha256Digest::parse(&format!("{}zz", &hex[2..])).is_none());
    }

    #[test]
    fn only_corrections_supersede() {
        assert!(ResponseKind::Correction.may_supersede());
        for kind in [
            ResponseKind::VendorResponse,
            ResponseKind::Retest,
            ResponseKind::Acknowledgement,
        ] {
            assert!(!kind.may_supersede());
        }
    }

    #[test]
    fn findings_keep_unknowns_as_null_and_refuse_bad_values() {
        let finding: Finding = serde_json::from_value(serde_json::json!({
            "data": "imei", "destination": "api.account.xiaomi.com (Beijing)",
            "country": "CN", "encrypted": null, "consent": "no",
        }))
        .unwrap();
        assert_eq!(finding.encrypted, None);
        assert_eq!(finding.note, None);
        let back = serde_json::to_value(&finding).unwrap();
        assert_eq!(back["encrypted"], serde_json::Value::Null);
        assert_eq!(back["country"], "CN");
        for bad in [
            serde_json::json!({"data": "password", "destination": "x", "consent": "no"}),
            serde_json::json!({"data": "imei", "destination": "x", "consent": "no", "country": "CHN"}),
            serde_json::json!({"data": "imei", "destination": "", "consent": "no"}),
            serde_json::json!({"data": "imei", "destination": "x", "consent": "no", "port": 443}),
        ] {
            assert!(
                serde_json::from_value::<Finding>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
