//! The seed tutorial's pipeline on `configs/legal_clauses.json`, offline.
//!
//! Today this runs the stages that exist: it loads the config (strictly validated), resolves the data set (the
//! embedded `data/legal_clauses` by default; a Hub dataset repo if the config names one), splits it with the
//! config's seed and prints split sizes and formatted examples. Tokenization, the model, LoRA and training join as
//! their crates land.
//!
//! ```text
//! cargo run --release --example legal_clauses [-- path/to/config.json]
//! ```
#![allow(clippy::print_stdout)]

use anyhow::Context;
use sft::config::RunConfig;
use sft::data::{Example, Segments};
use sft::hub::HubSettings;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config_path = match std::env::args().nth(1) {
        Some(path) => path,
        None => {
            // The default config names paths relative to the project root.
            std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).context("entering the project root")?;
            "configs/legal_clauses.json".to_owned()
        }
    };
    let config = RunConfig::from_file(&config_path)?;
    let hub = HubSettings::from_env()?;
    let started = std::time::Instant::now();
    let splits = sft::load_dataset(&config.dataset_config, &hub)?;

    println!("config      {config_path}");
    println!("data set    {} ({:?} records)", config.dataset_config.dataset_name, splits.record_format);
    println!(
        "splits      train {} | validation {} | test {}   (train pool {} rows, seed {}, {:.1} ms)",
        splits.train.len(),
        splits.validation.len(),
        splits.test.len(),
        splits.train_pool_rows,
        config.dataset_config.seed,
        started.elapsed().as_secs_f64() * 1e3
    );
    let with_input = splits.train.iter().find(|e| prompt_of(e).is_some_and(|p| p.contains("### Input")));
    let without_input = splits.train.iter().find(|e| prompt_of(e).is_some_and(|p| !p.contains("### Input")));
    for (title, example) in [("with input", with_input), ("without input", without_input)] {
        if let Some(example) = example {
            show(title, example);
        }
    }
    println!("\nNext stages (tokenize, model, LoRA, train) are not implemented yet; see the README.");
    Ok(())
}

fn prompt_of(example: &Example) -> Option<&str> {
    match &example.segments {
        Segments::Completion { prompt, .. } => Some(prompt),
        _ => None,
    }
}

fn show(title: &str, example: &Example) {
    println!("\n── example {title} ({}) ──", example.location);
    if let Segments::Completion { prompt, completion } = &example.segments {
        println!("[prompt, no loss]\n{prompt}");
        println!("[completion, loss]\n{}", truncate(completion, 300));
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
