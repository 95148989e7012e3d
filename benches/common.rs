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

/// The device of the kernel benches: `SFT_BENCH_DEVICE=wgpu` (with `--features wgpu`) or `cuda` (with
/// `--features cuda`), else flex. Unknown or not-compiled names fall back to flex with a note on stderr.
pub fn bench_device() -> burn::prelude::Device {
    let name = std::env::var("SFT_BENCH_DEVICE").unwrap_or_default();
    match name.as_str() {
        #[cfg(feature = "wgpu")]
        "wgpu" => burn::prelude::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        "cuda" => burn::prelude::Device::cuda(0),
        "" | "cpu" | "flex" => burn::prelude::Device::flex(),
        other => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SFT_BENCH_DEVICE={other} is not compiled in; benchmarking flex");
            }
            burn::prelude::Device::flex()
        }
    }
}
