//! JSON: one array of objects.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::{line_of, read_bytes, strip_bom};
use crate::error::{DataError, Result};
use crate::record::{Location, Position, Record, describe};

/// Reads `path` as one JSON array whose elements are objects (one per record, as `Dataset.to_json(lines=False)` and
/// pandas `to_json(orient="records")` write). Errors name the line of a syntax error or the element index.
pub(super) fn read(path: &Path) -> Result<Vec<Record>> {
    let bytes = read_bytes(path)?;
    let path: Arc<Path> = Arc::from(path);
    let file = Location::new(path.clone(), Position::File);
    let body = strip_bom(&bytes);
    let text = std::str::from_utf8(body).map_err(|e| DataError::InvalidUtf8 {
        location: file.clone(),
        detail: format!("line {}, byte {} of the file", line_of(body, e.valid_up_to()), e.valid_up_to()),
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DataError::Parse { location: file.clone(), message: format!("malformed JSON: {e}") })?;
    let Value::Array(items) = value else {
        return Err(DataError::Parse {
            location: file,
            message: format!("expected a JSON array of objects, found {}", describe(&value)),
        });
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let location = Location::new(path.clone(), Position::Element(i));
            match item {
                Value::Object(fields) => Ok(Record { location, fields }),
                other => Err(DataError::Parse {
                    location,
                    message: format!("expected a JSON object, found {}", describe(&other)),
                }),
            }
        })
        .collect()
}
