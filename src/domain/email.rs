//! Email addresses, parsed once at the edge: every address the service
//! stores or mails to went through [`EmailAddress::parse`].

use email_address::Options;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::mail::email_key;

/// RFC 5321's limit on a forward path, less the angle brackets.
const MAX_CHARS: usize = 254;

/// A single deliverable address (`local@domain.tld`), trimmed: no display
/// name, no IP-literal domain, no white space or control characters (which
/// could otherwise end up in a mail header).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = Email, max_length = 254, example = "ada@example.org")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = super::text::trimmed_within(raw, MAX_CHARS)?;
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        // RFC 5321 allows `"a\"b"@example.org`, but relays and mail
        // programs disagree on it: a plain address is one everyone delivers.
        if trimmed.contains(['"', '\\']) {
            return Err(
                "must be a plain address like name@example.org, without quotes or backslashes"
                    .into(),
            );
        }
        let options = Options::default()
            .with_required_tld()
            .without_display_text()
            .without_domain_literal();
        email_address::EmailAddress::parse_with_options(trimmed, options)
            .map_err(|e| format!("is not an email address like name@example.org ({e})"))?;
        Ok(Self(trimmed.to_owned()))
    }

    /// The key the address is unique under (case is ignored).
    pub fn key(&self) -> String {
        email_key(&self.0)
    }
}

crate::parsed_text!(EmailAddress);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_keyed_without_case() {
        let address = EmailAddress::parse("  Ada.Lovelace+alerts@Example.ORG ").unwrap();
        assert_eq!(address.as_str(), "Ada.Lovelace+alerts@Example.ORG");
        assert_eq!(address.key(), "ada.lovelace+alerts@example.org");
        assert!(EmailAddress::parse("名前@例え.jp").is_ok());
    }

    #[test]
    fn anything_but_one_plain_address_is_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@localhost",
            "ada@[127.0.0.1]",
            "Ada <ada@example.org>",
            "ada@example.org, bob@example.org",
            "ada@exa mple.org",
            "ada@example.org\r\nBcc: eve@example.org",
            "a..b@example.org",
            "\"a\\\"b\"@example.org",
            "\"ada\"@example.org",
            "a\\b@example.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn json_carries_the_address_as_a_string() {
        let parsed: EmailAddress = serde_json::from_str("\"ada@example.org\"").unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            "\"ada@example.org\""
        );
        assert!(serde_json::from_str::<EmailAddress>("\"nope\"").is_err());
    }
}
