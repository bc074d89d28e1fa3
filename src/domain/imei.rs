//! Device identities: IMEIs, IMEISVs and TACs.
//!
//! Pure domain code, no I/O. "Parse, don't validate": [`Tac`] and [`Imei`]
//! have private fields and can only be built by parsing, so holding one
//! proves the value is well formed.
//!
//! * A **TAC** (Type Allocation Code) is exactly 8 digits and identifies a
//!   device model.
//! * An **IMEI** is 15 digits: the 8-digit TAC, a 6-digit serial number and a
//!   Luhn check digit.
//! * An **IMEISV** is 16 digits: the TAC, the 6-digit serial number and a
//!   2-digit software version number, with no check digit.

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// Number of digits in a TAC.
const TAC_LEN: usize = 8;
/// Number of digits in an IMEI (including the check digit).
const IMEI_LEN: usize = 15;
/// Number of digits in an IMEISV.
const IMEISV_LEN: usize = 16;
/// Number of digits the IMEI check digit is computed over.
const IMEI_PAYLOAD_LEN: usize = 14;

/// Why a piece of text is not a valid device identity.
///
/// The messages are written to be shown to the person who typed the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    /// Nothing (or only whitespace, spaces and hyphens) was given.
    #[error("nothing was entered")]
    Empty,
    /// The text contains a character that may not appear in it.
    #[error(
        "contains {}, which is not a digit: use only digits (an IMEI may also contain spaces and hyphens)",
        describe_char(*.found)
    )]
    InvalidCharacter { found: char },
    /// A TAC of the wrong length (`found` digits).
    #[error("a TAC is exactly 8 digits; this has {found}")]
    TacLength { found: usize },
    /// An IMEI of the wrong length (`found` digits).
    #[error("an IMEI has 15 digits (or 16 for an IMEISV); this has {found}")]
    ImeiLength { found: usize },
    /// A 15-digit IMEI whose Luhn check digit is wrong. Deliberately does not
    /// say what the check digit should be.
    #[error("the last digit (check digit) doesn't match the other 14 — check the number")]
    CheckDigit,
    /// A name longer than any maker's and model's together (`found`
    /// characters): answering it would only cost time.
    #[error("a name or model number has at most {MAX_QUERY_CHARS} characters; this has {found}")]
    TooLong { found: usize },
}

/// The longest name asked by: a maker's name and a model's, a space between.
pub const MAX_QUERY_CHARS: usize = 2 * crate::domain::registry::MAX_NAME_CHARS + 1;

impl DeviceIdError {
    /// Whether this is the wrong-check-digit error (the number has the right
    /// shape but was mistyped).
    pub fn is_check_digit(&self) -> bool {
        matches!(self, DeviceIdError::CheckDigit)
    }
}

/// Names a character the way a person would recognise it in a message.
fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        c if c.is_whitespace() || c.is_control() => {
            format!("an invisible character (U+{:04X})", u32::from(c))
        }
        c => format!("\"{c}\""),
    }
}

/// The first character of `s` that is not an ASCII digit, if any.
fn first_non_digit(s: &str) -> Option<char> {
    s.chars().find(|c| !c.is_ascii_digit())
}

/// Whether `c` is ignored inside a typed IMEI.
fn is_separator(c: char) -> bool {
    c == ' ' || c == '-'
}

/// `s` trimmed, with spaces and hyphens removed.
fn strip_separators(s: &str) -> String {
    s.trim().chars().filter(|&c| !is_separator(c)).collect()
}

/// The digits of `input` when it is a number as people type one: only
/// digits, spaces and hyphens, and at least one digit.
fn typed_number(input: &str) -> Option<String> {
    let digits = strip_separators(input);
    (!digits.is_empty() && first_non_digit(&digits).is_none()).then_some(digits)
}

/// The Luhn check digit for a string of ASCII digits (for an IMEI: its first
/// 14 digits).
///
/// Starting from the rightmost digit, every other digit is doubled (the
/// rightmost one included), 9 is subtracted from doubled values above 9, the
/// results are summed and the check digit is `(10 - sum % 10) % 10`.
///
/// # Panics
///
/// If `first14` contains anything other than ASCII digits.
pub fn luhn_check_digit(first14: &str) -> u8 {
    let sum: u32 = first14
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            assert!(
                b.is_ascii_digit(),
                "luhn_check_digit: {first14:?} is not all ASCII digits"
            );
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    // `(10 - sum % 10) % 10` is in 0..=9, so the cast cannot truncate.
    ((10 - sum % 10) % 10) as u8
}

/// A Type Allocation Code: exactly 8 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tac(String);

impl Tac {
    /// Parses a TAC. Surrounding whitespace is trimmed; anything other than
    /// exactly 8 digits is refused (no inner spaces or hyphens).
    pub fn parse(input: &str) -> Result<Tac, DeviceIdError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if let Some(found) = first_non_digit(s) {
            return Err(DeviceIdError::InvalidCharacter { found });
        }
        // All ASCII, so the byte length is the number of digits.
        if s.len() != TAC_LEN {
            return Err(DeviceIdError::TacLength { found: s.len() });
        }
        Ok(Tac(s.to_owned()))
    }
}

// `as_str`: the 8 digits.
crate::parsed_text!(Tac, DeviceIdError);

impl PartialSchema for Tac {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Type Allocation Code: the first 8 digits of an IMEI, identifying a device model.",
            ))
            .pattern(Some("^[0-9]{8}$"))
            .examples([serde_json::json!("86452102")])
            .into()
    }
}

impl ToSchema for Tac {}

/// A device identity as typed by a person: a 15-digit IMEI (with a correct
/// Luhn check digit) or a 16-digit IMEISV. Stored normalised, as digits only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Imei(String);

impl Imei {
    /// Parses an IMEI or IMEISV. Surrounding whitespace is trimmed and spaces
    /// and hyphens are ignored ("86 452102 123456 2", "86-452102-123456-2");
    /// what remains must be 15 digits with a correct check digit, or 16
    /// digits (IMEISV).
    pub fn parse(input: &str) -> Result<Imei, DeviceIdError> {
        let digits = strip_separators(input);
        if digits.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if let Some(found) = first_non_digit(&digits) {
            return Err(DeviceIdError::InvalidCharacter { found });
        }
        match digits.len() {
            IMEI_LEN => {
                let (payload, check) = digits.split_at(IMEI_PAYLOAD_LEN);
                if check.as_bytes()[0] - b'0' != luhn_check_digit(payload) {
                    return Err(DeviceIdError::CheckDigit);
                }
            }
            IMEISV_LEN => {}
            found => return Err(DeviceIdError::ImeiLength { found }),
        }
        Ok(Imei(digits))
    }

    /// The TAC: the first 8 digits.
    pub fn tac(&self) -> Tac {
        Tac(self.0[..TAC_LEN].to_owned())
    }

    /// Whether this is a 16-digit IMEISV rather than a 15-digit IMEI.
    pub fn is_imeisv(&self) -> bool {
        self.0.len() == IMEISV_LEN
    }
}

// `as_str`: the normalised digits (15 for an IMEI, 16 for an IMEISV).
crate::parsed_text!(Imei, DeviceIdError);

impl PartialSchema for Imei {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "IMEI (15 digits, the last a Luhn check digit) or IMEISV (16 digits). \
                 Spaces and hyphens are accepted on input and removed; responses \
                 carry digits only.",
            ))
            .examples([serde_json::json!("864521021234562")])
            .into()
    }
}

impl ToSchema for Imei {}

/// What a person typed into a single search box, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupKey {
    /// 15 or 16 digits: a valid IMEI or IMEISV.
    Imei(Imei),
    /// Exactly 8 digits: a TAC.
    Tac(Tac),
    /// Anything else (a model name, a model number…), trimmed.
    Text(String),
}

impl LookupKey {
    /// How many digits a text key has when it is a number, not a name: a
    /// name search that finds nothing can then say what the number is not.
    pub fn digits_in(text: &str) -> Option<usize> {
        typed_number(text).map(|digits| digits.len())
    }

    /// Classifies search-box input. Ignoring spaces and hyphens:
    ///
    /// * 15 or 16 digits must be a valid IMEI/IMEISV (a wrong check digit is
    ///   an error, not text);
    /// * 14 digits is an IMEI missing a digit: the IMEI length error;
    /// * exactly 8 digits is a TAC;
    /// * anything else, including other all-digit input such as a model
    ///   number, is [`LookupKey::Text`] holding the trimmed input.
    ///
    /// Blank input is [`DeviceIdError::Empty`].
    pub fn classify(input: &str) -> Result<LookupKey, DeviceIdError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        let Some(digits) = typed_number(trimmed) else {
            return Self::text(trimmed);
        };
        match digits.len() {
            TAC_LEN => Ok(LookupKey::Tac(Tac(digits))),
            IMEI_PAYLOAD_LEN | IMEI_LEN | IMEISV_LEN => Imei::parse(&digits).map(LookupKey::Imei),
            _ => Self::text(trimmed),
        }
    }

    /// A name or model number asked by, trimmed: not blank, and at most
    /// [`MAX_QUERY_CHARS`] characters.
    pub fn text(input: &str) -> Result<LookupKey, DeviceIdError> {
        let trimmed = input.trim();
        match trimmed.chars().count() {
            0 => Err(DeviceIdError::Empty),
            found if found > MAX_QUERY_CHARS => Err(DeviceIdError::TooLong { found }),
            _ => Ok(LookupKey::Text(trimmed.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Known-good IMEIs from public references.
    const KNOWN_IMEIS: [&str; 3] = ["490154203237518", "356938035643809", "352099001761481"];

    /// A valid IMEI built from `first14` and its Luhn digit.
    fn with_check_digit(first14: &str) -> String {
        format!("{first14}{}", luhn_check_digit(first14))
    }

    #[test]
    fn luhn_check_digit_matches_known_imeis() {
        for imei in KNOWN_IMEIS {
            let expected = imei.as_bytes()[14] - b'0';
            assert_eq!(
                luhn_check_digit(&imei[..14]),
                expected,
                "check digit of known IMEI {imei}"
            );
        }
        assert_eq!(luhn_check_digit("86452102123456"), 2, "the doc example");
        assert_eq!(luhn_check_digit("00000000000000"), 0, "all zeros");
    }

    #[test]
    #[should_panic(expected = "not all ASCII digits")]
    fn luhn_check_digit_panics_on_non_digits() {
        luhn_check_digit("8645210212345x");
    }

    #[test]
    fn imei_parse_table() {
        use DeviceIdError::*;
        let cases: &[(&str, Result<&str, DeviceIdError>, &str)] = &[
            ("490154203237518", Ok("490154203237518"), "known IMEI"),
            ("356938035643809", Ok("356938035643809"), "known IMEI"),
            ("352099001761481", Ok("352099001761481"), "known IMEI"),
            (
                "86 452102 123456 2",
                Ok("864521021234562"),
                "spaces ignored",
            ),
            (
                "86-452102-123456-2",
                Ok("864521021234562"),
                "hyphens ignored",
            ),
            (
                "  86452102-123456 2\t",
                Ok("864521021234562"),
                "trimmed, mixed separators",
            ),
            (
                "8645210212345678",
                Ok("8645210212345678"),
                "IMEISV, no check digit",
            ),
            (
                "86 452102 123456 78",
                Ok("8645210212345678"),
                "IMEISV with spaces",
            ),
            ("", Err(Empty), "empty"),
            ("   ", Err(Empty), "blank"),
            (" - - ", Err(Empty), "only separators"),
            (
                "86452102123456A",
                Err(InvalidCharacter { found: 'A' }),
                "letter refused",
            ),
            (
                "8645210212345b2",
                Err(InvalidCharacter { found: 'b' }),
                "letter refused",
            ),
            (
                "86452102\t1234562",
                Err(InvalidCharacter { found: '\t' }),
                "inner tab refused",
            ),
            (
                "86.452102.123456.2",
                Err(InvalidCharacter { found: '.' }),
                "dots refused",
            ),
            (
                "86452102123456",
                Err(ImeiLength { found: 14 }),
                "14 digits: check digit missing",
            ),
            (
                "86452102123456789",
                Err(ImeiLength { found: 17 }),
                "17 digits",
            ),
            (
                "86452102",
                Err(ImeiLength { found: 8 }),
                "a TAC is not an IMEI",
            ),
            (
                "490154203237519",
                Err(CheckDigit),
                "known IMEI, last digit changed",
            ),
            (
                "490154203237517",
                Err(CheckDigit),
                "known IMEI, last digit changed",
            ),
            ("864521021234563", Err(CheckDigit), "wrong check digit"),
            ("490154203237581", Err(CheckDigit), "two digits transposed"),
        ];
        for (input, expected, why) in cases {
            let got = Imei::parse(input);
            match expected {
                Ok(digits) => {
                    let imei = got.unwrap_or_else(|e| panic!("{why}: {input:?} refused: {e}"));
                    assert_eq!(imei.as_str(), *digits, "{why}: {input:?} normalised");
                    assert_eq!(imei.to_string(), *digits, "{why}: {input:?} displayed");
                    assert_eq!(imei.tac().as_str(), &digits[..8], "{why}: {input:?} TAC");
                    assert_eq!(imei.is_imeisv(), digits.len() == 16, "{why}: {input:?}");
                }
                Err(e) => assert_eq!(got.as_ref(), Err(e), "{why}: {input:?}"),
            }
        }
    }

    #[test]
    fn changed_last_digit_is_check_digit_error() {
        for imei in KNOWN_IMEIS {
            let (first14, last) = imei.split_at(14);
            let last = last.as_bytes()[0] - b'0';
            for other in (0..10u8).filter(|&d| d != last) {
                let typo = format!("{first14}{other}");
                let err = Imei::parse(&typo).expect_err(&typo);
                assert!(err.is_check_digit(), "{typo}: {err:?}");
            }
        }
        assert!(!DeviceIdError::ImeiLength { found: 14 }.is_check_digit());
        assert!(!DeviceIdError::Empty.is_check_digit());
    }

    #[test]
    fn tac_parse_table() {
        use DeviceIdError::*;
        let cases: &[(&str, Result<&str, DeviceIdError>, &str)] = &[
            ("86452102", Ok("86452102"), "8 digits"),
            ("00000000", Ok("00000000"), "leading zeros kept"),
            (
                "  86452102\n",
                Ok("86452102"),
                "surrounding whitespace trimmed",
            ),
            ("", Err(Empty), "empty"),
            (" \t ", Err(Empty), "blank"),
            ("1234567", Err(TacLength { found: 7 }), "7 digits"),
            ("123456789", Err(TacLength { found: 9 }), "9 digits"),
            (
                "490154203237518",
                Err(TacLength { found: 15 }),
                "an IMEI is not a TAC",
            ),
            (
                "8645 2102",
                Err(InvalidCharacter { found: ' ' }),
                "no inner spaces",
            ),
            (
                "8645-2102",
                Err(InvalidCharacter { found: '-' }),
                "no inner hyphens",
            ),
            (
                "8645210X",
                Err(InvalidCharacter { found: 'X' }),
                "letter refused",
            ),
            (
                "８6452102",
                Err(InvalidCharacter { found: '８' }),
                "fullwidth digit refused",
            ),
            (
                "+6452102",
                Err(InvalidCharacter { found: '+' }),
                "sign refused",
            ),
        ];
        for (input, expected, why) in cases {
            let got = Tac::parse(input);
            match expected {
                Ok(digits) => {
                    let tac = got.unwrap_or_else(|e| panic!("{why}: {input:?} refused: {e}"));
                    assert_eq!(tac.as_str(), *digits, "{why}: {input:?}");
                    assert_eq!(tac.to_string(), *digits, "{why}: {input:?} displayed");
                    assert_eq!(Tac::try_from(input.to_string()).as_ref(), Ok(&tac), "{why}");
                    assert_eq!(input.parse::<Tac>().as_ref(), Ok(&tac), "{why}");
                }
                Err(e) => assert_eq!(got.as_ref(), Err(e), "{why}: {input:?}"),
            }
        }
    }

    #[test]
    fn error_messages_are_distinct_and_readable() {
        use DeviceIdError::*;
        let errors = [
            Empty,
            InvalidCharacter { found: 'x' },
            TacLength { found: 7 },
            ImeiLength { found: 14 },
            CheckDigit,
        ];
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for (i, a) in messages.iter().enumerate() {
            for b in &messages[i + 1..] {
                assert_ne!(a, b, "messages must differ");
            }
        }
        assert_eq!(
            ImeiLength { found: 14 }.to_string(),
            "an IMEI has 15 digits (or 16 for an IMEISV); this has 14"
        );
        assert_eq!(
            TacLength { found: 7 }.to_string(),
            "a TAC is exactly 8 digits; this has 7"
        );
        assert_eq!(
            CheckDigit.to_string(),
            "the last digit (check digit) doesn't match the other 14 — check the number"
        );
        let invalid = InvalidCharacter { found: 'x' }.to_string();
        assert!(invalid.contains("\"x\""), "names the character: {invalid}");
        let tab = InvalidCharacter { found: '\t' }.to_string();
        assert!(tab.contains("a tab"), "names invisible characters: {tab}");
        let nbsp = InvalidCharacter { found: '\u{a0}' }.to_string();
        assert!(
            nbsp.contains("U+00A0"),
            "names invisible characters: {nbsp}"
        );
    }

    #[test]
    fn check_digit_message_does_not_reveal_the_right_digit() {
        // 490154203237519 should end in 8: no digit may appear in the message.
        let err = Imei::parse("490154203237519").unwrap_err();
        let msg = err.to_string().replace("14", "");
        assert!(
            !msg.chars().any(|c| c.is_ascii_digit()),
            "message leaks a digit: {msg}"
        );
    }

    #[test]
    fn serde_round_trip() {
        let tac = Tac::parse("86452102").unwrap();
        let json = serde_json::to_string(&tac).unwrap();
        assert_eq!(json, "\"86452102\"");
        assert_eq!(serde_json::from_str::<Tac>(&json).unwrap(), tac);

        let imei: Imei = serde_json::from_str("\"86 452102-123456 2\"").unwrap();
        let json = serde_json::to_string(&imei).unwrap();
        assert_eq!(json, "\"864521021234562\"", "serialised normalised");
        assert_eq!(serde_json::from_str::<Imei>(&json).unwrap(), imei);

        let imeisv = Imei::parse("8645210212345678").unwrap();
        let back: Imei = serde_json::from_value(serde_json::to_value(&imeisv).unwrap()).unwrap();
        assert_eq!(back, imeisv);

        // Escaped strings cannot be borrowed; they must still deserialise.
        let escaped: Tac = serde_json::from_str("\"\\u0038\\u0036452102\"").unwrap();
        assert_eq!(escaped.as_str(), "86452102");
    }

    #[test]
    fn deserialising_a_bad_tac_fails_with_the_tac_message() {
        let err = serde_json::from_str::<Tac>("\"1234567\"").unwrap_err();
        let expected = DeviceIdError::TacLength { found: 7 }.to_string();
        assert!(err.to_string().contains(&expected), "{err}");

        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Body {
            tacs: Vec<Tac>,
        }
        let err = serde_json::from_str::<Body>(r#"{"tacs": ["86452102", "1234567"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&expected), "inside a body: {err}");

        let err = serde_json::from_str::<Tac>("12345678").unwrap_err();
        assert!(err.is_data(), "a number is not a TAC: {err}");
    }

    #[test]
    fn deserialising_a_bad_imei_fails_with_the_imei_message() {
        let err = serde_json::from_str::<Imei>("\"490154203237519\"").unwrap_err();
        assert!(
            err.to_string()
                .contains(&DeviceIdError::CheckDigit.to_string()),
            "{err}"
        );
    }

    #[test]
    fn classify_table() {
        use DeviceIdError::*;
        let imei = |s: &str| LookupKey::Imei(Imei::parse(s).unwrap());
        let tac = |s: &str| LookupKey::Tac(Tac::parse(s).unwrap());
        let text = |s: &str| LookupKey::Text(s.to_owned());
        let cases: Vec<(&str, Result<LookupKey, DeviceIdError>, &str)> = vec![
            ("490154203237518", Ok(imei("490154203237518")), "IMEI"),
            (
                " 86-452102-123456-2 ",
                Ok(imei("864521021234562")),
                "IMEI with separators",
            ),
            ("8645210212345678", Ok(imei("8645210212345678")), "IMEISV"),
            ("86452102", Ok(tac("86452102")), "TAC"),
            (" 8645 2102 ", Ok(tac("86452102")), "TAC with spaces"),
            ("8645-2102", Ok(tac("86452102")), "TAC with a hyphen"),
            ("490154203237519", Err(CheckDigit), "IMEI with a typo"),
            (
                "86452102123456",
                Err(ImeiLength { found: 14 }),
                "IMEI missing a digit",
            ),
            ("2014011", Ok(text("2014011")), "7-digit model number"),
            ("123456789", Ok(text("123456789")), "9 digits"),
            (
                "86452102123456789",
                Ok(text("86452102123456789")),
                "17 digits",
            ),
            (
                "  iPhone 15 Pro ",
                Ok(text("iPhone 15 Pro")),
                "model name, trimmed",
            ),
            ("SM-G991B", Ok(text("SM-G991B")), "model code"),
            ("8645210A", Ok(text("8645210A")), "digits and a letter"),
            ("-", Ok(text("-")), "only a hyphen"),
            ("", Err(Empty), "empty"),
            (" \t\n", Err(Empty), "blank"),
        ];
        for (input, expected, why) in cases {
            assert_eq!(LookupKey::classify(input), expected, "{why}: {input:?}");
        }
        let longest = format!(" {} ", "é".repeat(MAX_QUERY_CHARS));
        assert_eq!(LookupKey::classify(&longest), Ok(text(longest.trim())));
        let longer = "é".repeat(MAX_QUERY_CHARS + 1);
        let found = MAX_QUERY_CHARS + 1;
        assert_eq!(LookupKey::classify(&longer), Err(TooLong { found }));
    }

    #[test]
    fn openapi_schemas_are_patterned_strings() {
        let tac = serde_json::to_value(<Tac as PartialSchema>::schema()).unwrap();
        assert_eq!(tac["type"], "string", "{tac}");
        assert_eq!(tac["pattern"], "^[0-9]{8}$", "{tac}");
        assert_eq!(tac["examples"][0], "86452102", "{tac}");
        Tac::parse(tac["examples"][0].as_str().unwrap()).expect("TAC example parses");

        let imei = serde_json::to_value(<Imei as PartialSchema>::schema()).unwrap();
        assert_eq!(imei["type"], "string", "{imei}");
        Imei::parse(imei["examples"][0].as_str().unwrap()).expect("IMEI example parses");

        assert_eq!(<Tac as ToSchema>::name(), "Tac");
        assert_eq!(<Imei as ToSchema>::name(), "Imei");
    }

    #[test]
    fn openapi_document_lists_the_schemas() {
        use utoipa::OpenApi;

        #[derive(utoipa::ToSchema)]
        #[allow(dead_code)]
        struct Body {
            tac: Tac,
            imei: Imei,
        }
        #[derive(OpenApi)]
        #[openapi(components(schemas(Body)))]
        struct Doc;

        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Body"]["properties"]["tac"]["$ref"], "#/components/schemas/Tac",
            "{doc}"
        );
        assert_eq!(schemas["Tac"]["type"], "string", "{doc}");
        assert_eq!(schemas["Tac"]["pattern"], "^[0-9]{8}$", "{doc}");
        assert_eq!(schemas["Imei"]["type"], "string", "{doc}");
    }

    fn assert_single_digit_changes_fail(valid: &str, pos: usize, delta: u8) {
        let mut bytes = valid.as_bytes().to_vec();
        bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
        let typo = String::from_utf8(bytes).unwrap();
        assert_ne!(typo, valid);
        let err = Imei::parse(&typo).expect_err(&typo);
        assert!(err.is_check_digit(), "{typo} (from {valid}): {err:?}");
    }

    proptest! {
        #[test]
        fn valid_imeis_parse_and_keep_their_tac(tac in "[0-9]{8}", serial in "[0-9]{6}") {
            let imei = with_check_digit(&format!("{tac}{serial}"));
            let parsed = Imei::parse(&imei).unwrap();
            prop_assert_eq!(parsed.as_str(), imei.as_str());
            prop_assert_eq!(parsed.tac().to_string(), tac);
            prop_assert!(!parsed.is_imeisv());
            let key = LookupKey::classify(&imei).unwrap();
            prop_assert_eq!(key, LookupKey::Imei(parsed));
        }

        #[test]
        fn any_single_digit_change_is_a_check_digit_error(
            first14 in "[0-9]{14}",
            pos in 0usize..15,
            delta in 1u8..10,
        ) {
            assert_single_digit_changes_fail(&with_check_digit(&first14), pos, delta);
        }

        #[test]
        fn every_imeisv_parses(imeisv in "[0-9]{16}") {
            let parsed = Imei::parse(&imeisv).unwrap();
            prop_assert_eq!(parsed.as_str(), imeisv.as_str());
            prop_assert_eq!(parsed.tac().to_string(), &imeisv[..8]);
            prop_assert!(parsed.is_imeisv());
        }

        #[test]
        fn tac_accepts_every_8_digit_string(tac in "[0-9]{8}") {
            prop_assert_eq!(Tac::parse(&tac).unwrap().to_string(), tac);
        }

        #[test]
        fn tac_refuses_other_digit_lengths(digits in "[0-9]{1,20}") {
            let len = digits.len();
            if len == 8 {
                prop_assert!(Tac::parse(&digits).is_ok());
            } else {
                prop_assert_eq!(Tac::parse(&digits), Err(DeviceIdError::TacLength { found: len }));
            }
        }

        #[test]
        fn imei_separators_are_ignored(first14 in "[0-9]{14}", seps in proptest::collection::vec("[ -]{0,2}", 15)) {
            let imei = with_check_digit(&first14);
            let typed: String = imei.chars().zip(&seps).flat_map(|(c, s)| std::iter::once(c).chain(s.chars())).collect();
            prop_assert_eq!(Imei::parse(&typed).unwrap().to_string(), imei);
        }
    }

    /// Exhaustive over every position and replacement for the known IMEIs.
    #[test]
    fn every_single_digit_change_of_known_imeis_fails() {
        for imei in KNOWN_IMEIS {
            for pos in 0..15 {
                for delta in 1..10 {
                    assert_single_digit_changes_fail(imei, pos, delta);
                }
            }
        }
    }
}
