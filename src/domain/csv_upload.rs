//! What the CSV imports share: the file is UTF-8 (a byte order mark
//! allowed), its first line names the columns in any order, and every bad
//! line is reported by its number.

/// What is wrong with one line of an upload (1-based, the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

/// Every problem of one line in one message, from what each of its fields
/// came to.
pub fn line_message<const N: usize>(problems: [Option<String>; N]) -> String {
    problems
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

/// An upload read up to the end of its header.
pub struct Upload<'a, const N: usize> {
    /// The file without its byte order mark.
    pub bytes: &'a [u8],
    /// The records after the header, each with as many fields as it has.
    pub reader: csv::Reader<&'a [u8]>,
    /// Where each column is in a record.
    pub order: [usize; N],
}

/// Opens an upload whose header names each of `columns` once (ignoring case
/// and surrounding spaces) and nothing else.
pub fn open<'a, const N: usize>(
    bytes: &'a [u8],
    columns: [&str; N],
) -> Result<Upload<'a, N>, Vec<LineError>> {
    let header_error = |problem: &str| {
        vec![LineError {
            line: 1,
            message: format!(
                "{problem}: the first line must be the header {}",
                columns.join(",")
            ),
        }]
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut header = csv::ByteRecord::new();
    match reader.read_byte_record(&mut header) {
        Ok(true) => {}
        Ok(false) => return Err(header_error("the file is empty")),
        Err(e) => return Err(header_error(&e.to_string())),
    }
    let names: Vec<String> = header
        .iter()
        .map(|field| String::from_utf8_lossy(field).trim().to_lowercase())
        .collect();
    let mut order = [0; N];
    for (slot, column) in order.iter_mut().zip(columns) {
        let mut at = names.iter().enumerate().filter(|(_, n)| *n == column);
        match (at.next(), at.next()) {
            (Some((index, _)), None) => *slot = index,
            _ => {
                return Err(header_error(&format!(
                    "the column `{column}` must appear once"
                )));
            }
        }
    }
    if names.len() != N {
        return Err(header_error("there are other columns"));
    }
    Ok(Upload {
        bytes,
        reader,
        order,
    })
}

/// The file taken whole or not at all: the value of every line (its number
/// and what it holds, in order), or the error of every bad line.
pub fn whole<T>(
    lines: impl IntoIterator<Item = (u64, Result<T, String>)>,
) -> Result<Vec<T>, Vec<LineError>> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (line, value) in lines {
        match value {
            Ok(value) => values.push(value),
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The line each record of a CSV file starts on (the header is line 1). The
/// `csv` crate's own line number lags by one after a CRLF (its position is
/// taken before the `\n`), and files often have CRLF line ends, so the number is counted here from the byte offset instead,
/// skipping the line breaks (and blank lines) before the record.
pub struct CsvLines<'a> {
    bytes: &'a [u8],
    /// A byte offset and the line it is on, so counting never restarts.
    at: usize,
    line: u64,
}

impl<'a> CsvLines<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            line: 1,
        }
    }

    pub fn line_of(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else {
            return self.line + 1;
        };
        let mut start = usize::try_from(position.byte())
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.at {
            let breaks = self.bytes[self.at..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += breaks as u64;
            self.at = start;
        }
        self.line
    }
}
