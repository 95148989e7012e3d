//! The error type of the data stage.

use std::path::PathBuf;

use crate::record::Location;

/// Everything that can go wrong while reading, splitting or formatting instruction data.
///
/// Every variant that concerns user data names the file and, where it applies, the line, row or key, so that a
/// message alone is enough to find the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The data repo could not be listed or a file fetched, or it holds no data file (boxed: it is rare and large).
    #[error(transparent)]
    Repo(Box<sft_repo::RepoError>),
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no records (an empty file, a CSV with only a header, an empty JSON array).
    #[error("{path}: the file holds no records")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file's extension does not name a supported format.
    #[error("{path}: unsupported data file type (expected .csv, .jsonl, .json or .parquet)")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file's bytes are not valid UTF-8.
    #[error("{location}: invalid UTF-8 ({detail})")]
    InvalidUtf8 {
        /// Where the bad bytes are.
        location: Location,
        /// Which field or byte offset.
        detail: String,
    },
    /// The file does not parse in its format (malformed CSV, JSON, JSON Lines or Parquet).
    #[error("{location}: {message}")]
    Parse {
        /// Where parsing failed.
        location: Location,
        /// What the parser said.
        message: String,
    },
    /// A CSV row has a different number of fields than the header.
    #[error("{location}: expected {expected} fields as in the header, found {found}")]
    RaggedRow {
        /// The row.
        location: Location,
        /// Number of header fields.
        expected: usize,
        /// Number of fields in this row.
        found: usize,
    },
    /// A column named in the configuration is missing from a record.
    #[error("{location}: missing column `{column}` (set by `{key}`); columns found: {found}")]
    MissingColumn {
        /// The record (or header) that lacks it.
        location: Location,
        /// The missing column.
        column: String,
        /// The configuration key that names the column.
        key: String,
        /// The columns that are present, comma separated.
        found: String,
    },
    /// A cell has the wrong type (for example a number where text is expected).
    #[error("{location}: column `{column}`: expected {expected}, found {found}")]
    WrongType {
        /// The record.
        location: Location,
        /// The column.
        column: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A required text field (instruction, output, prompt or completion) is null, empty or only whitespace.
    #[error(
        "{location}: column `{column}` (set by `{key}`) is {found}; every row needs it, so fill it in or remove the row"
    )]
    EmptyField {
        /// The record.
        location: Location,
        /// The column.
        column: String,
        /// The configuration key that names the column.
        key: String,
        /// `null`, `empty` or `only whitespace`.
        found: &'static str,
    },
    /// A Parquet column has an Arrow type that has no record representation.
    #[error("{path}: column `{column}` has unsupported type {data_type}")]
    UnsupportedColumnType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The Arrow data type.
        data_type: String,
    },
    /// A configuration value is out of range or inconsistent. `key` is the full key path.
    #[error("{key}: {message}")]
    InvalidConfig {
        /// Key path, such as `dataset_config.test_size`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn invalid_config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidConfig { key: key.into(), message: message.into() }
    }
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
