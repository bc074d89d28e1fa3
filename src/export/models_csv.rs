//! The models CSV: one model per record, written by the export and read by
//! the import, so that the one file format has one definition.
//!
//! Columns, in this order: `manufacturer`, `manufacturer_country`, `name`,
//! `model_numbers`, `aliases`, `tacs`, `category`, `clearance_status`,
//! `reference`. Multi-valued columns hold their values joined with `|`; a
//! `|` or `\` inside a value is escaped with `\`. `manufacturer_country`
//! (ISO 3166-1 alpha-2) is there so that an import can create the
//! manufacturer it names and a round trip loses nothing. `clearance_status`
//! and `reference` (the deciding advisory, most restrictive first) are
//! derived from advisories: the import ignores them.
//!
//! Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, a tab or a
//! carriage return as a formula (OWASP "CSV injection"), so the export
//! writes such a cell with a `'` in front, which spreadsheets show as text;
//! a cell that already starts with `'` followed by such a character gets one
//! more. The import removes exactly one leading `'` where the export would
//! have added it, so export → import → export gives the same file and a
//! name such as `-Mini` or `=HYPERLINK(…)` comes back unchanged.

use std::collections::HashMap;

use crate::domain::clearance::Clearance;
use crate::domain::csv_upload::{self, CsvLines, LineError, Upload};
use crate::domain::imei::Tac;
use crate::domain::registry::{Category, Country, Model, Name};

pub const HEADER: [&str; 9] = [
    "manufacturer",
    "manufacturer_country",
    "name",
    "model_numbers",
    "aliases",
    "tacs",
    "category",
    "clearance_status",
    "reference",
];

/// A writer of records in this format, into memory: the export writes one
/// page of models at a time through it.
pub fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

/// The record of one model, every cell [`neutralised`].
pub fn record(model: &Model, clearance: &Clearance) -> [String; 9] {
    [
        model.manufacturer.name.clone(),
        model.manufacturer.country.clone(),
        model.name.clone(),
        join(&model.model_numbers),
        join(&model.aliases),
        join(&model.tacs),
        model.category.as_str().to_owned(),
        clearance.status.as_str().to_owned(),
        clearance
            .advisories
            .first()
            .map(|a| a.reference.clone())
            .unwrap_or_default(),
    ]
    .map(neutralised)
}

/// What makes a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a spreadsheet would run `cell`, or [`restored`] would take a
/// `'` off it: a formula character, after any number of `'`.
fn needs_quote(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// `cell` as the export writes it: with a `'` in front where needed.
fn neutralised(cell: String) -> String {
    if needs_quote(&cell) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// `cell` as the export had it before [`neutralised`].
fn restored(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest,
        _ => cell,
    }
}

/// Joins values with `|`, escaping `\` and `|` inside them.
fn join(values: &[String]) -> String {
    values
        .iter()
        .map(|v| v.replace('\\', "\\\\").replace('|', "\\|"))
        .collect::<Vec<_>>()
        .join("|")
}

/// Splits what [`join`] wrote; an empty field is no values.
fn split(field: &str) -> Vec<String> {
    if field.trim().is_empty() {
        return Vec::new();
    }
    let mut values = vec![String::new()];
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), values.last_mut()) {
                    last.push(next);
                }
            }
            '|' => values.push(String::new()),
            _ => {
                if let Some(last) = values.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    values
}

/// One valid record of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    pub manufacturer: Name,
    /// Needed only when the manufacturer is not yet registered.
    pub manufacturer_country: Option<Country>,
    pub name: Name,
    pub model_numbers: Vec<Name>,
    pub aliases: Vec<Name>,
    pub tacs: Vec<Tac>,
    pub category: Category,
}

/// Parses an import: the header naming the [`HEADER`] columns (any order),
/// then one model per record, UTF-8. Like the roster import, the file is
/// taken whole or not at all, so every bad line is reported: a wrong number
/// of fields, a bad name, TAC or category, a model (manufacturer and name,
/// ignoring case) or a TAC already on an earlier line.
pub fn parse(bytes: &[u8]) -> Result<Vec<ImportRow>, Vec<LineError>> {
    let Upload {
        bytes,
        mut reader,
        order,
    } = csv_upload::open(bytes, HEADER)?;
    let mut model_lines: HashMap<(String, String), u64> = HashMap::new();
    let mut tac_lines: HashMap<Tac, u64> = HashMap::new();
    let mut lines = CsvLines::new(bytes);
    csv_upload::whole(reader.byte_records().map(|record| {
        let (line, parsed) = match record {
            Ok(record) => {
                let line = lines.line_of(record.position());
                (line, row(&record, &order, line))
            }
            Err(e) => (lines.line_of(e.position()), Err(e.to_string())),
        };
        let checked = parsed.and_then(|row| {
            let key = (row.manufacturer.key(), row.name.key());
            if let Some(first) = model_lines.get(&key) {
                return Err(format!("repeats the model of line {first}"));
            }
            let repeated: Vec<String> = row
                .tacs
                .iter()
                .filter_map(|tac| {
                    tac_lines
                        .get(tac)
                        .map(|l| format!("TAC {tac} is on line {l}"))
                })
                .collect();
            if !repeated.is_empty() {
                return Err(format!("tacs: {}", repeated.join("; ")));
            }
            model_lines.insert(key, line);
            for tac in &row.tacs {
                tac_lines.insert(tac.clone(), line);
            }
            Ok(row)
        });
        (line, checked)
    }))
}

/// One record as a row; every problem of the line in one message.
fn row(record: &csv::ByteRecord, order: &[usize; 9], line: u64) -> Result<ImportRow, String> {
    if record.len() != HEADER.len() {
        return Err(format!(
            "has {} fields; expected {}",
            record.len(),
            HEADER.len()
        ));
    }
    let field = |column: usize| {
        let raw = record.get(order[column]).unwrap_or_default();
        std::str::from_utf8(raw)
            .map(restored)
            .map_err(|_| format!("{}: is not valid UTF-8", HEADER[column]))
    };
    let name = |column: usize| {
        field(column)
            .and_then(|raw| Name::parse(raw).map_err(|m| format!("{}: {m}", HEADER[column])))
    };
    let names = |column: usize| {
        field(column).and_then(|raw| {
            split(raw)
                .iter()
                .map(|value| Name::parse(value).map_err(|m| format!("{}: {m}", HEADER[column])))
                .collect::<Result<Vec<_>, _>>()
        })
    };
    let manufacturer = name(0);
    let manufacturer_country = field(1).and_then(|raw| match raw.trim() {
        "" => Ok(None),
        code => Country::parse(code)
            .map(Some)
            .map_err(|m| format!("manufacturer_country: {m}")),
    });
    let model = name(2);
    let model_numbers = names(3);
    let aliases = names(4);
    let tacs = field(5).and_then(|raw| {
        split(raw)
            .iter()
            .map(|tac| Tac::parse(tac).map_err(|e| format!("tacs: `{tac}` {e}")))
            .collect::<Result<Vec<_>, _>>()
    });
    let category = field(6).and_then(|raw| {
        raw.trim()
            .parse::<Category>()
            .map_err(|m| format!("category: `{}` is unknown; {m}", raw.trim()))
    });
    match (
        manufacturer,
        manufacturer_country,
        model,
        model_numbers,
        aliases,
        tacs,
        category,
    ) {
        (
            Ok(manufacturer),
            Ok(manufacturer_country),
            Ok(name),
            Ok(model_numbers),
            Ok(aliases),
            Ok(tacs),
            Ok(category),
        ) => Ok(ImportRow {
            line,
            manufacturer,
            manufacturer_country,
            name,
            model_numbers,
            aliases,
            tacs,
            category,
        }),
        (a, b, c, d, e, f, g) => Err(csv_upload::line_message([
            a.err(),
            b.err(),
            c.err(),
            d.err(),
            e.err(),
            f.err(),
            g.err(),
        ])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "manufacturer,manufacturer_country,name,model_numbers,aliases,tacs,category,clearance_status,reference\n";

    #[test]
    fn multi_values_round_trip_with_their_separator_escaped() {
        for values in [
            vec![],
            vec!["a".to_owned()],
            vec!["a|b".to_owned(), "c\\d".to_owned(), "e".to_owned()],
        ] {
            assert_eq!(split(&join(&values)), values);
        }
    }

    #[test]
    fn formula_cells_are_quoted_and_restored_exactly() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'quoted", "'quoted"),
            ("Redmi 1S", "Redmi 1S"),
            ("", ""),
        ] {
            assert_eq!(neutralised(cell.to_owned()), written, "{cell:?}");
            assert_eq!(restored(written), cell, "{written:?}");
        }
    }

    #[test]
    fn quoted_fields_and_utf8_are_read() {
        let csv = format!(
            "{HEAD}小米,cn,\"Redmi 1S, \"\"dual\"\"\",2014011|HM 1SW,Hongmi 1S,86452102|86452103,phone,prohibited,CLR-2026-0001\n"
        );
        let rows = parse(csv.as_bytes()).unwrap();
        assert_eq!(rows[0].manufacturer.as_str(), "小米");
        assert_eq!(
            rows[0].manufacturer_country.as_ref().unwrap().as_str(),
            "CN"
        );
        assert_eq!(rows[0].name.as_str(), "Redmi 1S, \"dual\"");
        assert_eq!(rows[0].model_numbers.len(), 2);
        assert_eq!(rows[0].tacs.len(), 2);
        assert_eq!(rows[0].line, 2);
    }

    #[test]
    fn every_bad_line_is_named() {
        let csv = format!(
            "{HEAD}X,CN,A,,,11111111,phone,,\n\
             X,CN,B,,,1234,phone,,\n\
             X,CN,C,,,,smartphone,,\n\
             X,CN,a,,,,phone,,\n\
             X,CN,D,,,11111111,phone,,\n\
             X,CN,\"E\nF\",,,,phone,,\n\
             X,CN,G,,,,phone\n"
        );
        let errors = parse(csv.as_bytes()).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 9], "{errors:?}");
        assert!(errors[0].message.starts_with("tacs:"), "{errors:?}");
        assert!(errors[1].message.starts_with("category:"), "{errors:?}");
        assert_eq!(errors[2].message, "repeats the model of line 2");
        assert!(
            errors[3].message.contains("TAC 11111111 is on line 2"),
            "{errors:?}"
        );
        assert!(errors[4].message.starts_with("name:"), "{errors:?}");
    }

    #[test]
    fn lines_are_counted_across_crlf_blank_lines_and_quoted_breaks() {
        let csv = format!(
            "{}\r\nX,CN,A,,,1,phone,,\r\n\r\nX,CN,\"B\r\nC\",,,,phone,,\r\nX,CN,D,,,2,phone,,\r\n",
            HEADER.join(",")
        );
        let lines: Vec<u64> = parse(csv.as_bytes())
            .unwrap_err()
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, vec![2, 4, 6]);
    }

    #[test]
    fn a_wrong_header_is_line_1() {
        for bad in [&b""[..], b"manufacturer,name\n", b"X,CN,A,,,,phone,,\n"] {
            let errors = parse(bad).unwrap_err();
            assert_eq!(errors[0].line, 1, "{bad:?}");
        }
    }
}
