//! One epoch of the seed tutorial's hyper-parameters (`configs/llama-3.2-1b-legal-qlora.json`: LoRA r 8 / alpha 32 on
//! q/k/v/o, dropout 0.05, batch 4 × accumulation 4, lr 2e-4, clipping 1, evaluation and checkpoints every 50
//! steps, early stopping 3 / 0.01, every token supervised, max_length 2048) on the embedded legal-clause set, with
//! the random-init "tiny" model standing in for Llama-3.2-1B (no weights can be downloaded here) and the dense base
//! (QLoRA's NF4 base is exercised by sft-peft's tests). Logs through `tracing`; prints throughput and peak RSS.
//!
//! ```text
//! cargo run --release --example train_tiny_seed [-- output_dir]
//! ```
#![allow(clippy::print_stdout)]

/// mimalloc: glibc's allocator page-faults on every large tensor (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

use anyhow::Context;
use burn::prelude::*;
use sft::collate::{BatchSource, Rows, Sampling};
use sft::config::RunConfig;
use sft::hub::HubSettings;
use sft::model_stage::{LlamaConfig, LlamaForCausalLM};
use sft::tokenize::Encoder;
use sft::train::{EarlyStopping, Trainer, TrainingArguments};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    sft::allocator::configure_for_training();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = std::env::args().nth(1).unwrap_or_else(|| "outputs/train_tiny_seed".into());
    let mut config = RunConfig::from_file(root.join("configs/llama-3.2-1b-legal-qlora.json"))?;
    config.dataset_config.dataset_name = root.join("data/legal_clauses").display().to_string();
    config.dataset_config.validation_size = Some(sft::data::SplitSize::Fraction(0.1));
    let hub = HubSettings::from_env()?;
    let splits = sft::load_dataset(&config.dataset_config, &hub)?;
    let tokenizer = sft::load_tokenizer(
        root.join("models/llama-tiny").to_str().context("path")?,
        &hub,
        &config.special_token_overrides(),
    )?;
    let options = config.encode_options();
    let encoder = Encoder::new(&tokenizer, &options);
    let train = encoder.encode_all(&splits.train)?.examples;
    let eval = encoder.encode_all(&splits.validation)?.examples;
    // `SFT_WORKERS=2`: two micro-batches at a time (faster, more memory; the same result).
    let workers = std::env::var("SFT_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let args = TrainingArguments {
        output_dir: output,
        num_train_epochs: 1.0,
        micro_batch_workers: workers,
        ..config.training_args.clone()
    };
    let collator = config.collate.collator(tokenizer.special().pad.id);
    let batch = args.per_device_train_batch_size;
    let train_source =
        BatchSource::new(&train, collator, batch, Sampling::Shuffle { seed: args.seed }, Rows::OnePerExample)?;
    let eval_source =
        BatchSource::new(&eval, collator, args.per_device_eval_batch_size, Sampling::Sequential, Rows::OnePerExample)?;

    let device = Device::flex().autodiff();
    let model_config = LlamaConfig::preset("tiny")?;
    let model =
        sft::peft::inject(LlamaForCausalLM::init(&model_config, &device, args.seed), &config.lora_config, args.seed)?;
    let early = config.early_stopping.clone().context("the seed config has early_stopping")?;
    let stopping = EarlyStopping::new(early, args.best_metric(), args.greater_is_better());
    let mut trainer =
        Trainer::new(args, config.lora_config.clone(), "tiny (random init)", train_source, Some(eval_source))?
            .with_callback(stopping);
    trainer.stop_on_sigint()?;
    println!("train {} rows, validation {} rows; {} optimizer steps", train.len(), eval.len(), trainer.total_steps());
    let started = std::time::Instant::now();
    let out = trainer.train(model)?;
    let seconds = started.elapsed().as_secs_f64();
    let tokens = out.state.num_input_tokens_seen;
    println!(
        "{:?} after {} steps in {seconds:.1} s: {tokens} non-pad tokens, {:.0} tokens/s overall (evaluation and \
         checkpoints included); best eval_loss {:?}",
        out.stop,
        out.state.global_step,
        tokens as f64 / seconds,
        out.state.best_metric
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!("peak RSS: {}", line.trim_start_matches("VmHWM:").trim());
    }
    Ok(())
}
