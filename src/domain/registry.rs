//! The registry's values: names, countries, device categories. Each is built
//! only by parsing, so code holding one holds a valid one.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::imei::Tac;

pub const MAX_NAME_CHARS: usize = 200;

/// A display name (of a manufacturer or model, an alias, a model number):
/// trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, min_length = 1, max_length = 200, example = "Redmi 1S")]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = super::text::trimmed_within(raw, MAX_NAME_CHARS)?;
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters (such as line breaks)".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The case- and spacing-insensitive key the name is unique under.
    pub fn key(&self) -> String {
        super::text::key(&self.0)
    }
}

crate::parsed_text!(Name);

/// Removes repeated names (compared by key), keeping the first spelling.
pub fn dedup_names(names: Vec<Name>) -> Vec<Name> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().filter(|n| seen.insert(n.key())).collect()
}

/// An ISO 3166-1 alpha-2 country code, upper case ("CN").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Z]{2}$", example = "CN")]
pub struct Country(String);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err("must be an ISO 3166-1 alpha-2 country code such as CN or US".into())
        }
    }
}

crate::parsed_text!(Country);

/// What kind of device a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Phone,
    Tablet,
    Wearable,
    Laptop,
    Router,
    Iot,
    Other,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Self::Phone,
        Self::Tablet,
        Self::Wearable,
        Self::Laptop,
        Self::Router,
        Self::Iot,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Tablet => "tablet",
            Self::Wearable => "wearable",
            Self::Laptop => "laptop",
            Self::Router => "router",
            Self::Iot => "iot",
            Self::Other => "other",
        }
    }
}

impl Category {
    /// The category in words, for "every Xiaomi phone" and the like.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Phone => "phones",
            Self::Tablet => "tablets",
            Self::Wearable => "wearables",
            Self::Laptop => "laptops",
            Self::Router => "routers",
            Self::Iot => "connected devices",
            Self::Other => "other devices",
        }
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == raw)
            .ok_or_else(|| {
                "must be one of: phone, tablet, wearable, laptop, router, iot, other".into()
            })
    }
}

/// A maker of devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Manufacturer {
    pub id: Uuid,
    #[schema(example = "Xiaomi")]
    pub name: String,
    #[schema(example = "CN")]
    pub country: String,
    #[schema(example = json!(["小米", "Xiaomi Inc."]))]
    pub aliases: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every change; the `ETag`.
    #[serde(skip)]
    pub version: i64,
}

/// The manufacturer as shown inside a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ManufacturerRef {
    pub id: Uuid,
    #[schema(example = "Xiaomi")]
    pub name: String,
    #[schema(example = "CN")]
    pub country: String,
}

/// A device model as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Model {
    pub id: Uuid,
    pub manufacturer: ManufacturerRef,
    #[schema(example = "Redmi 1S")]
    pub name: String,
    /// Marketing and other names the model is known by.
    #[schema(example = json!(["Hongmi 1S"]))]
    pub aliases: Vec<String>,
    #[schema(example = json!(["2014011", "HM 1SW"]))]
    pub model_numbers: Vec<String>,
    pub category: Category,
    /// Type Allocation Codes: the first 8 digits of the IMEIs of this model.
    #[schema(example = json!(["86452102"]))]
    pub tacs: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: i64,
}

/// A manufacturer to register, as a request body gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewManufacturer {
    #[schema(example = "Xiaomi")]
    pub name: Name,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "CN")]
    pub country: Country,
    #[serde(default)]
    #[schema(example = json!(["小米"]))]
    pub aliases: Vec<Name>,
}

/// A device model to register, as a request body gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    pub manufacturer_id: Uuid,
    #[schema(example = "Redmi 1S")]
    pub name: Name,
    #[serde(default)]
    #[schema(example = json!(["2014011", "HM 1SW"]))]
    pub model_numbers: Vec<Name>,
    #[serde(default)]
    #[schema(example = json!(["Hongmi 1S"]))]
    pub aliases: Vec<Name>,
    pub category: Category,
    /// Each exactly 8 digits; a TAC another model claims is a 409.
    #[serde(default)]
    pub tacs: Vec<Tac>,
}

/// Fields of a model to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPatch {
    pub name: Option<Name>,
    pub model_numbers: Option<Vec<Name>>,
    pub aliases: Option<Vec<Name>>,
    pub category: Option<Category>,
    pub tacs: Option<Vec<Tac>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("  Redmi 1S ").unwrap().as_str(), "Redmi 1S");
        for (bad, why) in [
            ("", "empty"),
            ("   ", "blank"),
            ("Redmi\r\nBcc: x", "line break"),
            (&"x".repeat(201), "too long"),
        ] {
            assert!(Name::parse(bad).is_err(), "{why} must be refused");
        }
    }

    #[test]
    fn duplicate_names_are_dropped_by_key() {
        let names = ["Redmi", "REDMI", "Hongmi"].map(|n| Name::parse(n).unwrap());
        let kept: Vec<_> = dedup_names(names.to_vec())
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(kept, vec!["Redmi", "Hongmi"]);
    }

    #[test]
    fn countries_are_two_letters() {
        assert_eq!(Country::parse("cn").unwrap().as_str(), "CN");
        assert!(Country::parse("CHN").is_err());
        assert!(Country::parse("C1").is_err());
    }

    #[test]
    fn categories_round_trip_through_text() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), c);
        }
        assert!("smartphone".parse::<Category>().is_err());
    }
}
