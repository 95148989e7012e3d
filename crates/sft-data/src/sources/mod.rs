//! Record sources: one module per file format, chosen by [`DataFormat`].
//!
//! Every reader returns the whole file as [`Record`]s, each carrying its [`Location`] so that later stages can
//! report problems by file and row. Readers never panic on user data; they return a [`DataError`] that names the
//! file and the line, row or element.

mod csv;
mod json;
mod jsonl;
mod parquet;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{DataError, Result};
use crate::record::Record;

/// A source of records (the seam between storage and formatting).
pub trait RecordSource {
    /// Reads every record, in source order.
    fn records(&self) -> Result<Vec<Record>>;
}

/// The on-disk formats the `datasets` library reads and we read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataFormat {
    /// RFC 4180 CSV with a header row; UTF-8, optional BOM; quoted fields may hold newlines and `""` quotes.
    Csv,
    /// One JSON object per line (`.jsonl`, `.ndjson`); blank lines are skipped.
    JsonLines,
    /// One JSON array of objects (`.json`).
    Json,
    /// Apache Parquet; text, numbers, booleans, lists and structs (e.g. chat `messages`) become JSON values.
    Parquet,
}

impl DataFormat {
    /// The format named by a file's extension (case-insensitive), if it is one we read.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            "json" => Some(Self::Json),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// A local data file in one of the [`DataFormat`]s.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: Arc<Path>,
    format: DataFormat,
}

impl FileSource {
    /// A source for `path`, its format taken from the extension.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self> {
        let path: PathBuf = path.into();
        let format = DataFormat::from_path(&path).ok_or_else(|| DataError::UnsupportedFormat { path: path.clone() })?;
        Ok(Self::with_format(path, format))
    }

    /// A source for `path` read as `format` whatever its extension.
    pub fn with_format(path: impl Into<PathBuf>, format: DataFormat) -> Self {
        Self { path: Arc::from(path.into()), format }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format it is read as.
    pub fn format(&self) -> DataFormat {
        self.format
    }
}

impl RecordSource for FileSource {
    fn records(&self) -> Result<Vec<Record>> {
        let records = match self.format {
            DataFormat::Csv => csv::read(&self.path)?,
            DataFormat::JsonLines => jsonl::read(&self.path)?,
            DataFormat::Json => json::read(&self.path)?,
            DataFormat::Parquet => parquet::read(&self.path)?,
        };
        if records.is_empty() {
            return Err(DataError::Empty { path: self.path.to_path_buf() });
        }
        tracing::debug!(path = %self.path.display(), format = ?self.format, records = records.len(), "read data file");
        Ok(records)
    }
}

/// Reads a whole file, mapping failures to [`DataError::Io`].
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// 1-based line number of byte `offset` in `bytes`.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    let end = offset.min(bytes.len());
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64
}

/// Strips a UTF-8 byte-order mark, as Excel writes at the start of CSV and JSON files.
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}
