//! How names are compared: what a person types and what is stored must meet
//! on the same normalised form.

/// The key under which a name is unique and searched: trimmed, inner white
/// space collapsed to one space, lower-cased. "  Redmi  1S " → "redmi 1s".
pub fn key(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Letters and digits only, lower-cased: "Redmi-1S", "redmi 1s" and
/// "REDMI1S" all become "redmi1s", so punctuation and spacing never hide a
/// match.
pub fn compact(text: &str) -> String {
    if text.is_ascii() {
        // The same, a byte at a time: most names are ASCII, and the lookup
        // index compacts every name of the register at start.
        return text
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
    }
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of a name, compacted: "Redmi Note 4G" → ["redmi", "note", "4g"].
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `raw` trimmed, if that is not empty and at most `max` characters.
pub fn trimmed_within(raw: &str, max: usize) -> Result<&str, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(trimmed)
}

/// Checks free text: trimmed, not empty, at most `max` characters, and no
/// control characters but (when `multiline`) line breaks and tabs.
fn parse_text(raw: &str, max: usize, multiline: bool) -> Result<String, String> {
    let trimmed = trimmed_within(raw, max)?;
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if trimmed.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(if multiline {
            "must not contain control characters other than line breaks and tabs".into()
        } else {
            "must be one line without control characters".into()
        });
    }
    Ok(trimmed.to_owned())
}

macro_rules! bounded_text {
    ($(#[$meta:meta])* $name:ident, $max:literal, $multiline:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, min_length = 1)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, String> {
                parse_text(raw, $max, $multiline).map(Self)
            }
        }

        crate::parsed_text!($name);
    };
}

bounded_text!(
    /// One line of text (a title, a source, a reason): 1 to 300 characters.
    Line,
    300,
    false
);

bounded_text!(
    /// Text of one or more paragraphs (a summary, a Markdown body): 1 to
    /// 100,000 characters, line breaks allowed.
    Prose,
    100000,
    true
);

/// Deserialises optional Markdown text through [`Prose`]'s rules, as plain
/// text: empty when absent or null.
pub fn prose_or_empty<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let prose = <Option<Prose> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(prose.map(String::from).unwrap_or_default())
}

/// Deserialises a changed Markdown text through [`Prose`]'s rules (use with
/// `#[serde(default)]`: absent or null changes nothing).
pub fn prose_change<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let prose = <Option<Prose> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(prose.map(String::from))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lines_and_prose_are_trimmed_bounded_and_clean() {
        assert_eq!(Line::parse("  a title ").unwrap().as_str(), "a title");
        assert!(Line::parse("   ").is_err());
        assert!(Line::parse("two\nlines").is_err());
        assert!(Line::parse(&"x".repeat(301)).is_err());
        assert_eq!(
            Prose::parse("para one\n\npara two").unwrap().as_str(),
            "para one\n\npara two"
        );
        assert!(Prose::parse("bell\u{7}").is_err());
    }

    #[test]
    fn keys_ignore_case_and_spacing() {
        assert_eq!(key("  Redmi   1S "), "redmi 1s");
        assert_eq!(key("小米"), "小米");
        assert_eq!(key("XIAOMI"), key("xiaomi"));
    }

    #[test]
    fn compact_forms_ignore_punctuation() {
        assert_eq!(compact("Redmi-1S"), "redmi1s");
        assert_eq!(compact("HM 1SW"), "hm1sw");
        assert_eq!(words("Redmi Note (4G)"), vec!["redmi", "note", "4g"]);
        assert_eq!(compact("Ärger-Ωmega 5Ⅻ"), "ärgerωmega5ⅻ");
    }

    proptest! {
        /// The byte-wise path for ASCII names compacts as the general one.
        #[test]
        fn ascii_names_compact_as_any_other(name in "[ -~]{0,24}|\\PC{0,24}") {
            let by_chars: String = name
                .chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect();
            prop_assert_eq!(compact(&name), by_chars);
        }
    }
}
