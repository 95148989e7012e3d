//! One row of a data set, with the place it came from.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{DataError, Result};

/// Where a record (or a problem) is in its source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: Arc<Path>,
    /// The position inside the file.
    pub position: Position,
}

/// A position inside a data file.
///
/// Rows are 0-based data rows, as `datasets` and pandas count them (the CSV header is not a row); lines are 1-based
/// lines of the file, as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Position {
    /// The file as a whole.
    File,
    /// The header line of a CSV file.
    Header,
    /// A data row, with the line it starts on where the format has lines (CSV, JSON Lines).
    Row {
        /// 0-based row index.
        row: usize,
        /// 1-based line the row starts on, if known.
        line: Option<u64>,
    },
    /// Element of a JSON array (0-based).
    Element(usize),
}

impl Location {
    /// A location in `path`.
    pub fn new(path: Arc<Path>, position: Position) -> Self {
        Self { path, position }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        match self.position {
            Position::File => Ok(()),
            Position::Header => write!(f, ": header (line 1)"),
            Position::Row { row, line: Some(line) } => write!(f, ": row {row} (line {line})"),
            Position::Row { row, line: None } => write!(f, ": row {row}"),
            Position::Element(i) => write!(f, ": element {i}"),
        }
    }
}

/// One record: named cells in the order of the source's columns.
///
/// Cells are JSON values whatever the source format: CSV cells are strings, Parquet and JSON keep their types
/// (numbers, lists of `{role, content}` messages, nulls).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where the record came from; used in every error about it.
    pub location: Location,
    /// Column name → cell.
    pub fields: Map<String, Value>,
    /// The file's own type of each column where its format declares one (Parquet: pyarrow's names, such as
    /// `int64` or `list<item: string>`), for errors about a cell's type; `None` for CSV and JSON, whose cells
    /// carry their own (JSON) types.
    pub column_types: Option<Arc<[(String, String)]>>,
}

impl Record {
    /// The column names, comma separated, for error messages.
    pub fn column_list(&self) -> String {
        column_list(self.fields.keys())
    }

    /// The cell of `column`, or [`DataError::MissingColumn`] naming the config `key` that asked for it.
    pub fn get(&self, column: &str, key: &str) -> Result<&Value> {
        self.fields.get(column).ok_or_else(|| DataError::MissingColumn {
            location: self.location.clone(),
            column: column.to_owned(),
            key: key.to_owned(),
            found: self.column_list(),
        })
    }

    /// The text of `column`: `Ok(None)` for a null cell, an error if the column is missing or not a string.
    pub fn text(&self, column: &str, key: &str) -> Result<Option<&str>> {
        match self.get(column, key)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(self.wrong_type(column, "text", other)),
        }
    }

    /// The text of a column every row must fill: an error if the column is missing or not a string, and
    /// [`DataError::EmptyField`] if it is null, empty or only whitespace (Python's `str.isspace()` set). The text is
    /// returned as it is, untrimmed.
    pub fn required_text(&self, column: &str, key: &str) -> Result<&str> {
        let found = match self.text(column, key)? {
            Some(text) if !text.trim().is_empty() => return Ok(text),
            Some("") => "empty",
            Some(_) => "only whitespace",
            None => "null",
        };
        Err(DataError::EmptyField {
            location: self.location.clone(),
            column: column.to_owned(),
            key: key.to_owned(),
            found,
        })
    }

    /// A [`DataError::WrongType`] for `column` of this record.
    /// The column's type is named as the file declares it where it does (`found int64 3` for a Parquet column).
    pub fn wrong_type(&self, column: &str, expected: &'static str, found: &Value) -> DataError {
        let declared = self.column_types.as_deref().and_then(|types| types.iter().find(|(name, _)| name == column));
        let found = match (declared, found) {
            (Some((_, type_name)), Value::Null) => format!("null (a {type_name} column)"),
            (Some((_, type_name)), Value::Array(_) | Value::Object(_)) => format!("{type_name} ({})", describe(found)),
            (Some((_, type_name)), scalar) => format!("{type_name} {scalar}"),
            (None, _) => describe(found),
        };
        DataError::WrongType { location: self.location.clone(), column: column.to_owned(), expected, found }
    }
}

/// A short description of a JSON value's type, for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "text".into(),
        Value::Array(a) => format!("a list of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// Names joined as `a, b, c` (or `(none)`), for error messages.
pub(crate) fn column_list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if list.is_empty() { "(none)".to_owned() } else { list.join(", ") }
}
