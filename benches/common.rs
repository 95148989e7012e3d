//! Shared setup of the benches: the embedded legal-clause data and tokenizer.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use sft::config::RunConfig;
use sft::data::Example;
use sft::hub::HubSettings;
use sft::tokenize::{Encoder, SftTokenizer, SpecialTokenOverrides, TokenizedExample};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The offline default config, with the embedded data set's path made absolute.
pub fn config() -> RunConfig {
    let mut config = RunConfig::from_file(root().join("configs/legal_clauses.json")).unwrap();
    config.dataset_config.dataset_name = root().join("data/legal_clauses").display().to_string();
    config.dataset_config.validation_size = None;
    config
}

/// All 400 formatted rows (train + test) of the embedded set.
pub fn examples() -> Vec<Example> {
    let hub = HubSettings::resolve(|_| None, None).unwrap();
    let splits = sft::load_dataset(&config().dataset_config, &hub).unwrap();
    splits.train.into_iter().chain(splits.test).collect()
}

pub fn tokenizer() -> SftTokenizer {
    SftTokenizer::from_dir(&root().join("models/llama-tiny"), &SpecialTokenOverrides::default()).unwrap()
}

/// The 400 rows tokenized with the default config's options.
pub fn tokenized() -> Vec<TokenizedExample> {
    let tokenizer = tokenizer();
    let options = config().encode_options();
    Encoder::new(&tokenizer, &options).encode_all(&examples()).unwrap().examples
}
