//! JSON Lines: one JSON object per line.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::{read_bytes, strip_bom};
use crate::error::{DataError, Result};
use crate::record::{Location, Position, Record, describe};

/// Reads `path` as JSON Lines. Blank lines (and a trailing newline) are skipped; every other line must be one JSON
/// object. Rows count the objects (0-based), lines count the file's lines (1-based).
pub(super) fn read(path: &Path) -> Result<Vec<Record>> {
    let bytes = read_bytes(path)?;
    let path: Arc<Path> = Arc::from(path);
    let mut records = Vec::new();
    for (i, line) in strip_bom(&bytes).split(|&b| b == b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = Location::new(path.clone(), Position::Row { row: records.len(), line: Some(line_no) });
        let text = std::str::from_utf8(line).map_err(|e| DataError::InvalidUtf8 {
            location: location.clone(),
            detail: format!("byte {} of the line", e.valid_up_to()),
        })?;
        let value: Value = serde_json::from_str(text).map_err(|e| DataError::Parse {
            location: location.clone(),
            message: format!("malformed JSON at column {}: {e}", e.column()),
        })?;
        match value {
            Value::Object(fields) => records.push(Record { location, fields, column_types: None }),
            other => {
                return Err(DataError::Parse {
                    location,
                    message: format!("expected a JSON object, found {}", describe(&other)),
                });
            }
        }
    }
    Ok(records)
}
