//! sft-collate against transformers' collator, and properties of padding and packing on random examples.
#![allow(clippy::unwrap_used, clippy::panic)]

mod parity;
mod properties;
mod source;

use std::path::PathBuf;

use serde::Deserialize;
use sft_tokenize::TokenizedExample;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn tokenizer_fixture(name: &str) -> PathBuf {
    sft_testkit::tokenizer_fixtures().join(name)
}

#[derive(Debug, Deserialize)]
pub struct MaskingRow {
    pub input_ids: Vec<u32>,
    pub labels: Vec<i64>,
}

/// The tokenized test rows of the reference pipeline, as typed examples.
pub fn reference_examples() -> Vec<TokenizedExample> {
    let text = std::fs::read_to_string(tokenizer_fixture("test_masking.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let row: MaskingRow = serde_json::from_str(l).unwrap();
            TokenizedExample { loss_mask: row.labels.iter().map(|&l| l != -100).collect(), input_ids: row.input_ids }
        })
        .collect()
}
