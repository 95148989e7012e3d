//! Integration tests of the `sft` facade: the run config and data loading from local paths and the Hub.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod cli;
mod config;
mod dataset;
mod fuzz;
mod model;
mod push;
mod tokenize;
mod train;
#[cfg(feature = "wgpu")]
mod wgpu;

use std::path::Path;

/// `sft train` arguments for a short run of `configs/legal_clauses.json` into `output_dir`: 2 optimizer steps on 40
/// sampled examples, evaluated and saved at step 2, then `--set` each of `overrides` (`key=value`).
pub fn short_train_args(output_dir: &Path, overrides: &[&str]) -> Vec<String> {
    let fixed = [
        format!("training_args.output_dir={}", output_dir.display()),
        "training_args.max_steps=2".into(),
        "training_args.eval_steps=2".into(),
        "training_args.save_steps=2".into(),
        "dataset_config.sample_size=40".into(),
    ];
    let sets = fixed.into_iter().chain(overrides.iter().map(|s| (*s).to_owned()));
    ["train", "--config", "configs/legal_clauses.json"]
        .map(str::to_owned)
        .into_iter()
        .chain(sets.flat_map(|set| ["--set".to_owned(), set]))
        .collect()
}
