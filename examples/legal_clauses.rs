//! The seed tutorial's pipeline on `configs/legal_clauses.json`, offline.
//!
//! Today this runs the stages that exist: load the config (strictly validated); resolve the data set (the embedded
//! `data/legal_clauses` by default, a Hub dataset repo if the config names one); split and format it; tokenize with
//! the model's tokenizer and mask the prompt; collate a first batch (padded, or packed with `packing: true`); and
//! print what will train. The model, LoRA and training join as their crates land.
//!
//! ```text
//! cargo run --example legal_clauses [-- path/to/config.json]
//! ```
#![allow(clippy::print_stdout)]

/// mimalloc: glibc's allocator page-faults on every large tensor (`benches/README.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use sft::collate::{Collate, Collator, Sampling, batch_plan, pack_best_fit_decreasing};
use sft::config::RunConfig;
use sft::hub::HubSettings;
use sft::tokenize::{EncodedSplit, Encoder, MaskAudit, TokenizedExample};
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
        "splits      train {} | validation {} | test {}   (train pool {} rows, seed {})",
        splits.train.len(),
        splits.validation.len(),
        splits.test.len(),
        splits.train_pool_rows,
        config.dataset_config.seed,
    );

    let tokenizer = sft::load_tokenizer(&config.model_name, &hub, &config.special_token_overrides())?;
    let options = config.encode_options();
    let encoder = Encoder::new(&tokenizer, &options);
    println!(
        "tokenizer   {} ({} ids), masking {:?}, max_length {}",
        config.model_name,
        tokenizer.vocab_size(),
        options.masking,
        options.max_length
    );
    let mut train = None;
    for (name, examples) in [("train", &splits.train), ("validation", &splits.validation), ("test", &splits.test)] {
        let encoded = encoder.encode_all(examples)?;
        report(name, &encoded);
        if name == "train" {
            train = Some(encoded);
        }
    }
    let train = train.context("train split")?;

    if let Some(first) = train.examples.first() {
        let audit = MaskAudit::new(&tokenizer, first).map_err(anyhow::Error::msg)?;
        println!(
            "\n── what trains in train example 0 ({}), supervised text in ⟦ ⟧ ──\n{audit}",
            splits.train[train.rows[0]].location
        );
    }

    let args = &config.training_args;
    let collator = Collator { pad_id: tokenizer.special().pad.id, pad_to_multiple_of: args.pad_to_multiple_of };
    let lengths: Vec<usize> = train.examples.iter().map(TokenizedExample::len).collect();
    let sampling = if args.group_by_length {
        Sampling::GroupByLength { seed: args.seed }
    } else {
        Sampling::Shuffle { seed: args.seed }
    };
    let batch = if args.packing {
        let bins = pack_best_fit_decreasing(&lengths, options.max_length)?;
        let bin_lengths: Vec<usize> = bins.iter().map(|b| b.iter().map(|&i| lengths[i]).sum()).collect();
        let plan = batch_plan(&bin_lengths, args.per_device_train_batch_size, sampling, 0);
        println!("packing     {} examples into {} rows of {} tokens", lengths.len(), bins.len(), options.max_length);
        let rows: Vec<Vec<&TokenizedExample>> =
            plan[0].iter().map(|&r| bins[r].iter().map(|&i| &train.examples[i]).collect()).collect();
        collator.collate_packed(&rows)
    } else {
        let plan = batch_plan(&lengths, args.per_device_train_batch_size, sampling, 0);
        let rows: Vec<&TokenizedExample> = plan[0].iter().map(|&i| &train.examples[i]).collect();
        collator.collate(&rows)
    };
    println!(
        "\nfirst batch [{} × {}]: {} real tokens ({:.0}% of the batch), {} supervised",
        batch.batch_size,
        batch.seq_len,
        batch.num_tokens,
        100.0 * batch.num_tokens as f64 / (batch.batch_size * batch.seq_len).max(1) as f64,
        batch.num_supervised
    );
    println!(
        "\ndone in {:.2} s. Next stages (model, LoRA, training) are not implemented yet; see the README.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn report(name: &str, encoded: &EncodedSplit) {
    let r = &encoded.report;
    let mut lengths: Vec<usize> = encoded.examples.iter().map(TokenizedExample::len).collect();
    lengths.sort_unstable();
    let pct = |p: f64| lengths.get(((lengths.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0);
    println!(
        "{name:<11} {} kept, {} dropped {:?}, {} truncated | tokens p50 {} p90 {} max {} | supervised {:.1}%",
        r.kept,
        r.num_dropped(),
        r.dropped,
        r.truncated,
        pct(0.5),
        pct(0.9),
        pct(1.0),
        100.0 * r.supervised_tokens as f64 / r.tokens.max(1) as f64
    );
}
