//! Putting it together: files → records → sample / split → formatted examples.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{DataConfig, RecordFormat};
use crate::error::{DataError, Result};
use crate::files::SplitFiles;
use crate::format::{PromptFormat, Segments};
use crate::record::{Location, Record};
use crate::sources::{FileSource, RecordSource};
use crate::split::split_indices;

/// One formatted example and the record it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// The prompt / completion (or chat) segments.
    pub segments: Segments,
    /// The source record's file and row.
    #[serde(skip)]
    pub location: Location,
}

/// The formatted splits of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSplits {
    /// Examples to train on.
    pub train: Vec<Example>,
    /// Examples for evaluation during training (from the source's validation files or carved from train).
    pub validation: Vec<Example>,
    /// Examples for the final test (from the source's test files or carved from train).
    pub test: Vec<Example>,
    /// The record layout used (never `Auto`).
    pub record_format: RecordFormat,
    /// Rows in the train pool before sampling and carving.
    pub train_pool_rows: usize,
}

/// Reads, samples, splits and formats the data of `files` as `config` says.
///
/// - The train files form one pool (records in file order). `sample_size` samples it; `test_size` and
///   `validation_size` carve held-out splits from the sample, with the semantics of [`split_indices`] and
///   `config.seed`.
/// - A split the source provides (validation or test files) is used whole and not sampled; asking to carve the same
///   split as well (`validation_size` / `test_size`) is an error rather than a silent choice.
/// - The record layout is resolved once, from the first train record; every record is formatted with it, and the
///   first record that does not fit stops the load with an error naming its file and row.
pub fn load_splits(config: &DataConfig, files: &SplitFiles<PathBuf>) -> Result<DatasetSplits> {
    config.validate()?;
    if files.train.is_empty() {
        return Err(DataError::invalid_config(
            "dataset_config.dataset_name",
            format!("`{}` has no train split (files found: {})", config.dataset_name, describe_files(files)),
        ));
    }
    for (provided, size, key) in [
        (&files.validation, config.validation_size.is_some(), "validation_size"),
        (&files.test, config.test_size.is_some(), "test_size"),
    ] {
        if size && !provided.is_empty() {
            return Err(DataError::invalid_config(
                format!("dataset_config.{key}"),
                format!("the data set already has this split ({}); remove the key to use it", list(provided)),
            ));
        }
    }

    let pool = read_all(&files.train)?;
    let formatter = config.formatter(&pool[0])?;
    let record_format = formatter.record_format();
    let format = |records: &[Record], indices: &mut dyn Iterator<Item = usize>| -> Result<Vec<Example>> {
        indices
            .map(|i| {
                let record = &records[i];
                Ok(Example { segments: formatter.format(record)?, location: record.location.clone() })
            })
            .collect()
    };

    let split = split_indices(pool.len(), config.sample_size, config.validation_size, config.test_size, config.seed)?;
    let mut splits = DatasetSplits {
        train: format(&pool, &mut split.train.iter().copied())?,
        validation: format(&pool, &mut split.validation.iter().copied())?,
        test: format(&pool, &mut split.test.iter().copied())?,
        record_format,
        train_pool_rows: pool.len(),
    };
    if !files.validation.is_empty() {
        let records = read_all(&files.validation)?;
        splits.validation = format(&records, &mut (0..records.len()))?;
    }
    if !files.test.is_empty() {
        let records = read_all(&files.test)?;
        splits.test = format(&records, &mut (0..records.len()))?;
    }
    tracing::info!(
        train = splits.train.len(),
        validation = splits.validation.len(),
        test = splits.test.len(),
        format = ?record_format,
        "loaded data set"
    );
    Ok(splits)
}

/// Every record of `paths`, in order.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for path in paths {
        records.extend(FileSource::new(path.clone())?.records()?);
    }
    Ok(records)
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn describe_files(files: &SplitFiles<PathBuf>) -> String {
    let all: Vec<PathBuf> = files.validation.iter().chain(&files.test).cloned().collect();
    if all.is_empty() { "none".into() } else { list(&all) }
}
