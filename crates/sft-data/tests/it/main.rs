//! Integration tests of sft-data against the fixtures in `tests/fixtures` (see its README for their origin).
#![allow(clippy::unwrap_used, clippy::panic)]

mod errors;
mod format;
mod fuzz;
mod mutate;
mod repo;
mod sources;
mod splits;

use std::path::PathBuf;

use sft_data::{DataConfig, FileSource, Record, RecordSource};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn read(name: &str) -> Vec<Record> {
    FileSource::new(fixture(name)).unwrap().records().unwrap()
}

/// Writes `bytes` to `name` in a fresh temporary directory; keep the directory alive while using the path.
pub fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// A config for the legal-clause columns (`Instruction`, `Input`, `Output`), every other key at its default.
pub fn legal() -> DataConfig {
    DataConfig {
        instruction_column: "Instruction".into(),
        input_column: Some("Input".into()),
        output_column: "Output".into(),
        ..DataConfig::new("legal")
    }
}
