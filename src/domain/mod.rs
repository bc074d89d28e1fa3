//! Pure rules of the product, no I/O: the types inputs are parsed into, and
//! the functions that decide (a model's clearance, what a lookup means).

pub mod advisory;
pub mod audit;
pub mod clearance;
pub mod csv_upload;
pub mod email;
pub mod evidence;
pub mod firmware;
pub mod imei;
pub mod mail;
pub mod markdown;
pub mod personnel;
pub mod registry;
pub mod rejection;
pub mod review;
pub mod severity;
pub mod subscription;
pub mod text;
pub mod wording;

/// For fields of a change that may be cleared: absent → `None`, `null` →
/// `Some(None)`, a value → `Some(Some(value))` (use with `#[serde(default)]`).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Completes a `struct $name(String)` that is built only by its
/// `fn parse(&str) -> Result<Self, $error>`: `as_str`, `Display`, `FromStr`,
/// and the `TryFrom<String>`/`Into<String>` pair that
/// `#[serde(try_from = "String", into = "String")]` travels through, so that
/// a deserialised value is always a parsed one.
#[macro_export]
macro_rules! parsed_text {
    ($name:ident) => {
        $crate::parsed_text!($name, String);
    };
    ($name:ident, $error:ty) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $error;
            fn from_str(raw: &str) -> Result<Self, $error> {
                Self::parse(raw)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(raw: String) -> Result<Self, $error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(text: $name) -> String {
                text.0
            }
        }
    };
}

/// Declares an enumeration that travels as text (in JSON, in the database,
/// in query strings): each variant as its name in snake case, so that
/// `ApprovedWithConditions` is `approved_with_conditions` everywhere. Gives
/// `as_str`, `ALL`, and a `FromStr` whose error lists the accepted values.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, strum::IntoStaticStr,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        $vis enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        // Written out rather than derived: the derive would document the
        // Rust names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|value| value.as_str())))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(raw: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == raw)
                    .ok_or_else(|| {
                        let accepted: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!("must be one of: {}", accepted.join(", "))
                    })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
