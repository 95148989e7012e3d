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
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(strip_bom(&bytes));
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

    let mut records = Vec::new();
    loop {
        let position = Position::Row { row: records.len(), line: Some(reader.position().line()) };
        let more = reader.read_byte_record(&mut raw).map_err(|e| parse_error(&at(position), e))?;
        if !more {
            break;
        }
        // The position of the record just read (the reader's position was before any skipped blank lines).
        let line = raw.position().map(|p| p.line()).or(match position {
            Position::Row { line, .. } => line,
            _ => None,
        });
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
        records.push(Record { location, fields });
    }
    Ok(records)
}

fn parse_error(location: &Location, error: ::csv::Error) -> DataError {
    match error.into_kind() {
        ::csv::ErrorKind::Io(source) => DataError::io(location.path.to_path_buf(), source),
        other => DataError::Parse { location: location.clone(), message: format!("malformed CSV: {other:?}") },
    }
}
