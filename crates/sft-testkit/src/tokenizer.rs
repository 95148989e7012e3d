//! The reference tokenizer of sft-tokenize's fixtures, shared by the tests of the crates after it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sft_tokenize::{SftTokenizer, SpecialTokenOverrides};

/// sft-tokenize's fixture directory: the reference tokenizer (`tokenizer.json`, `tokenizer_config.json`,
/// `chat_template.jinja`) and the Python pipeline's tokenized rows (`test_masking.jsonl`); its README says how
/// they were made.
pub fn tokenizer_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sft-tokenize/tests/fixtures")
}

/// The reference tokenizer (byte-level BPE, Llama-3 pre-tokenizer, BOS from the post-processor): `tokenizer.json`
/// and `tokenizer_config.json` of [`tokenizer_fixtures`], without the separate chat-template file.
///
/// # Panics
///
/// If the fixture does not load (test support: a broken fixture fails the test).
pub fn reference_tokenizer() -> SftTokenizer {
    let dir = tokenizer_fixtures();
    SftTokenizer::from_files(
        &dir.join("tokenizer.json"),
        Some(&dir.join("tokenizer_config.json")),
        None,
        &SpecialTokenOverrides::default(),
    )
    .unwrap()
}
