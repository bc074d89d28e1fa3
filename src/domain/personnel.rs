//! The personnel directory: the people who must follow advisories, and the
//! CSV roster a directory is imported from.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::csv_upload::{self, CsvLines, LineError, Upload};
use super::email::EmailAddress;
use super::text::Line;

/// One person in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Person {
    pub id: Uuid,
    #[schema(example = "ada@example.org")]
    pub email: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The unit the person belongs to, when known.
    #[schema(example = "Border Police North")]
    pub unit: Option<String>,
    /// Only active people receive advisory mail.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every change; the `ETag`.
    #[serde(skip)]
    pub version: i64,
}

/// A person to add to the directory, as a request body gives them.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePerson)]
pub struct NewPerson {
    /// Unique in the directory, ignoring case.
    #[schema(value_type = String, format = Email, example = "ada@example.org")]
    pub email: EmailAddress,
    #[schema(value_type = String, example = "Ada Lovelace")]
    pub name: Line,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Border Police North")]
    pub unit: Option<Line>,
    /// Only active people receive advisory mail (default true).
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

/// Fields of a person to change; absent fields stay as they are, and a
/// `null` unit clears it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdatePerson)]
pub struct PersonPatch {
    #[schema(value_type = Option<String>, format = Email)]
    pub email: Option<EmailAddress>,
    #[schema(value_type = Option<String>)]
    pub name: Option<Line>,
    /// null clears it.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub unit: Option<Option<Line>>,
    pub active: Option<bool>,
}

/// One valid line of a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub email: EmailAddress,
    pub name: Line,
    pub unit: Option<Line>,
}

const COLUMNS: [&str; 3] = ["email", "name", "unit"];

/// Parses a CSV roster: a header naming the columns `email`, `name` and
/// `unit` (in any order), then one person per record, UTF-8. The roster is
/// taken whole or not at all, so every bad line is reported, not just the
/// first: a wrong number of fields, text that is not UTF-8, an invalid
/// address, a missing name, an address (ignoring case) already on an
/// earlier line.
pub fn parse_roster(bytes: &[u8]) -> Result<Vec<RosterEntry>, Vec<LineError>> {
    let Upload {
        bytes,
        mut reader,
        order,
    } = csv_upload::open(bytes, COLUMNS)?;
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    let mut lines = CsvLines::new(bytes);
    csv_upload::whole(reader.byte_records().map(|record| {
        let (line, parsed) = match record {
            Ok(record) => (lines.line_of(record.position()), entry(&record, &order)),
            Err(e) => (lines.line_of(e.position()), Err(e.to_string())),
        };
        let checked = parsed.and_then(|entry| match first_line_of.get(&entry.email.key()) {
            Some(first) => Err(format!("repeats the address of line {first}")),
            None => {
                first_line_of.insert(entry.email.key(), line);
                Ok(entry)
            }
        });
        (line, checked)
    }))
}

/// One record as an entry; every problem of the line in one message.
fn entry(record: &csv::ByteRecord, order: &[usize; 3]) -> Result<RosterEntry, String> {
    if record.len() != COLUMNS.len() {
        return Err(format!(
            "has {} fields; expected 3 (email,name,unit)",
            record.len()
        ));
    }
    let field = |column: usize| {
        let raw = record.get(order[column]).unwrap_or_default();
        std::str::from_utf8(raw).map_err(|_| format!("{}: is not valid UTF-8", COLUMNS[column]))
    };
    let email = field(0)
        .and_then(|raw| EmailAddress::parse(raw).map_err(|message| format!("email: {message}")));
    let name = field(1).and_then(|raw| Line::parse(raw).map_err(|m| format!("name: {m}")));
    let unit = field(2).and_then(|raw| match raw.trim() {
        "" => Ok(None),
        unit => Line::parse(unit)
            .map(Some)
            .map_err(|m| format!("unit: {m}")),
    });
    match (email, name, unit) {
        (Ok(email), Ok(name), Ok(unit)) => Ok(RosterEntry { email, name, unit }),
        (email, name, unit) => Err(csv_upload::line_message([
            email.err(),
            name.err(),
            unit.err(),
        ])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(result: Result<Vec<RosterEntry>, Vec<LineError>>) -> Vec<u64> {
        result.unwrap_err().iter().map(|e| e.line).collect()
    }

    #[test]
    fn quoted_fields_embedded_commas_and_utf8_names_are_read() {
        let csv = "\u{feff}email,name,unit\n\
                   ada@example.org,\"Lovelace, Ada\",\"Unit 1, North\"\n\
                   zoë@example.org,Zoë Ångström,\n\
                   \n\
                   li@example.org,李小龍,\"Unit \"\"7\"\"\"\n";
        let entries = parse_roster(csv.as_bytes()).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].name.as_str(), "Lovelace, Ada");
        assert_eq!(entries[0].unit.as_ref().unwrap().as_str(), "Unit 1, North");
        assert_eq!(entries[1].name.as_str(), "Zoë Ångström");
        assert_eq!(entries[1].unit, None);
        assert_eq!(entries[2].unit.as_ref().unwrap().as_str(), "Unit \"7\"");
    }

    #[test]
    fn columns_may_come_in_any_order_and_case() {
        let entries = parse_roster(b"Unit, NAME ,Email\r\nU1,Ada,ada@example.org\r\n").unwrap();
        assert_eq!(entries[0].email.as_str(), "ada@example.org");
        assert_eq!(entries[0].name.as_str(), "Ada");
    }

    #[test]
    fn a_missing_or_wrong_header_is_line_1() {
        for bad in [
            &b""[..],
            b"ada@example.org,Ada,U1\n",
            b"email,name\n",
            b"email,name,unit,phone\n",
            b"email,email,unit\n",
        ] {
            assert_eq!(lines_of(parse_roster(bad)), vec![1], "{bad:?}");
        }
        assert_eq!(parse_roster(b"email,name,unit\n").unwrap(), vec![]);
    }

    #[test]
    fn lines_are_named_right_whatever_the_line_ends() {
        for end in ["\n", "\r\n"] {
            let csv = [
                "email,name,unit",
                "ok@example.org,Ok,",
                "",
                "bad,Bad,",
                "x@example.org,,",
            ]
            .join(end)
                + end;
            assert_eq!(
                lines_of(parse_roster(csv.as_bytes())),
                vec![4, 5],
                "{end:?}"
            );
        }
    }

    #[test]
    fn every_bad_line_is_named_with_every_problem() {
        let csv = "email,name,unit\n\
                   ok@example.org,Ok,\n\
                   not-an-address,Bad,\n\
                   two@example.org,,\n\
                   three@example.org,Three\n\
                   OK@Example.org,Again,\n\
                   \"multi\nline\"@example.org,Name,\n\
                   nope,,\n";
        let errors = parse_roster(csv.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 9]);
        assert!(errors[0].message.starts_with("email:"), "{errors:?}");
        assert!(errors[1].message.starts_with("name:"), "{errors:?}");
        assert!(errors[2].message.contains("has 2 fields"), "{errors:?}");
        assert_eq!(errors[3].message, "repeats the address of line 2");
        assert!(
            errors[5].message.contains("email:") && errors[5].message.contains("name:"),
            "{errors:?}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_a_bad_line() {
        let errors = parse_roster(b"email,name,unit\nada@example.org,Ad\xff,\n").unwrap_err();
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("UTF-8"), "{errors:?}");
    }
}
