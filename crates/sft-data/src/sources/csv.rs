//! CSV (RFC 4180) with a header row.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{read_bytes, strip_bom};
use crate::error::{DataError, Result};
use crate::record::{Location, Position, Record};

/// Reads `path` as CSV: the first record is the header; every later record must have as many fields.
///
/// Quoted fields may contain separators, `""` escaped quotes and newlines. A UTF-8 BOM is skipped. Every field
/// must be valid UTF-8; the error names the row, its first line and the column.
pub(super) fn read(path: &Path) -> Result<Vec<Record>> {
    let bytes = read_bytes(path)?;
    let path: Arc<Path> = Arc::from(path);
    let body = strip_bom(&bytes);
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut raw = ::csv::ByteRecord::new();
    let at = |position| Location::new(path.clone(), position);

    let has_header = reader.read_byte_record(&mut raw).map_err(|e| parse_error(&at(Position::Header), e))?;
    if !has_header {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    let mut header = Vec::with_capacity(raw.len());
    for (i, field) in raw.iter().enumerate() {
        let name = std::str::from_utf8(field).map_err(|e| DataError::InvalidUtf8 {
            location: at(Position::Header),
            detail: format!("header field {i}, byte {}", e.valid_up_to()),
        })?;
        if header.iter().any(|h: &String| h == name) {
            return Err(DataError::Parse {
                location: at(Position::Header),
                message: format!("duplicate column name `{name}`"),
            });
        }
        header.push(name.to_owned());
    }

    let mut lines = LineCounter::new(body);
    let mut records = Vec::new();
    loop {
        let position = Position::Row { row: records.len(), line: None };
        let more = reader.read_byte_record(&mut raw).map_err(|e| parse_error(&at(position), e))?;
        if !more {
            break;
        }
        let line = raw.position().map(|p| lines.line_of_record(p.byte()));
        let location = at(Position::Row { row: records.len(), line });
        if raw.len() != header.len() {
            return Err(DataError::RaggedRow { location, expected: header.len(), found: raw.len() });
        }
        let mut fields = Map::with_capacity(header.len());
        for (name, field) in header.iter().zip(raw.iter()) {
            let text = std::str::from_utf8(field).map_err(|e| DataError::InvalidUtf8 {
                location: location.clone(),
                detail: format!("column `{name}`, byte {} of the field", e.valid_up_to()),
            })?;
            fields.insert(name.clone(), Value::String(text.to_owned()));
        }
        records.push(Record { location, fields, column_types: None });
    }
    Ok(records)
}

fn parse_error(location: &Location, error: ::csv::Error) -> DataError {
    match error.into_kind() {
        ::csv::ErrorKind::Io(source) => DataError::io(location.path.to_path_buf(), source),
        other => DataError::Parse { location: location.clone(), message: format!("malformed CSV: {other:?}") },
    }
}

/// Line numbers of record starts, counted incrementally (records arrive in order, so the whole file is scanned once).
///
/// The CSV reader's own line counter lags by one after CRLF line ends, so lines are counted from byte offsets: a
/// record starts at the first byte after its offset that is not a line terminator (blank lines hold no records).
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0, line: 1 }
    }

    fn line_of_record(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.offset {
            self.line += self.bytes[self.offset..start].iter().filter(|&&b| b == b'\n').count() as u64;
            self.offset = start;
        }
        self.line
    }
}
