//! sft-tokenize against the Python reference (`tests/fixtures/README.md`).
#![allow(clippy::unwrap_used, clippy::panic)]

mod chat;
mod errors;
mod families;
mod parity;
mod repo;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sft_data::{Example, Location, Position, Segments};
use sft_tokenize::TokenizedExample;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub use sft_testkit::reference_tokenizer as tokenizer;

pub fn example(row: usize, segments: Segments) -> Example {
    Example { segments, location: Location::new(Arc::from(Path::new("test.csv")), Position::Row { row, line: None }) }
}

/// HF labels: the token where it carries loss, -100 elsewhere.
pub fn labels(example: &TokenizedExample) -> Vec<i64> {
    example.input_ids.iter().zip(&example.loss_mask).map(|(&id, &m)| if m { i64::from(id) } else { -100 }).collect()
}
