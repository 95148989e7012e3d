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
    let items = match value {
        Value::Array(items) => items,
        Value::Object(object) => return Err(DataError::Parse { location: file, message: wrapped_records(&object) }),
        other => {
            return Err(DataError::Parse {
                location: file,
                message: format!("expected a JSON array of objects, found {}", describe(&other)),
            });
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let location = Location::new(path.clone(), Position::Element(i));
            match item {
                Value::Object(fields) => Ok(Record { location, fields, column_types: None }),
                other => Err(DataError::Parse {
                    location,
                    message: format!("expected a JSON object, found {}", describe(&other)),
                }),
            }
        })
        .collect()
}

/// The message for a top level that is an object instead of the array of records: its keys, and which of them
/// hold a list of objects (the records, as in `{"version": 1, "data": [...]}`, which `datasets` reads with
/// `load_dataset("json", field="data")`).
fn wrapped_records(object: &serde_json::Map<String, Value>) -> String {
    let keys: Vec<String> = object.keys().take(8).map(|k| format!("`{k}`")).collect();
    let more =
        if object.len() > keys.len() { format!(" and {} more", object.len() - keys.len()) } else { String::new() };
    let lists: Vec<String> = object
        .iter()
        .filter_map(|(key, value)| match value {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                Some(format!("`{key}` (a list of {} objects)", items.len()))
            }
            _ => None,
        })
        .collect();
    let found = format!(
        "expected a JSON array of objects at the top level, found an object with keys {}{more}",
        keys.join(", ")
    );
    match lists.as_slice() {
        [] => format!("{found}, none of which holds a list of objects"),
        [one] => format!("{found}; the records are under {one}: write that list as the top level of the file"),
        _ => format!(
            "{found}; lists of objects are under {}: write the one with the records as the top level of the file",
            lists.join(", ")
        ),
    }
}
