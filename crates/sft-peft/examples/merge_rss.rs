//! Peak resident memory of merging an adapter: in memory (load the base, apply the adapter, `merge_and_unload`,
//! `save_pretrained`) against the shard-at-a-time `merge_checkpoint`, for the crate README.
//!
//! ```text
//! cargo run --release -p sft-model --example load_rss -- write BASE small f32          # the base checkpoint
//! cargo run --release -p sft-peft --example merge_rss -- adapter BASE ADAPTER            # a LoRA on every projection
//! cargo run --release -p sft-peft --example merge_rss -- memory BASE ADAPTER OUT
//! cargo run --release -p sft-peft --example merge_rss -- stream BASE ADAPTER OUT SHARD_MB
//! ```
//! Each merge runs in its own process, so its peak (`VmHWM`) is the merge alone.
#![allow(clippy::print_stdout)]

use std::path::Path;

use anyhow::{Context, bail};
use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{Checkpoint, LlamaConfig, LlamaForCausalLM};
use sft_peft::{LoraConfig, TargetModules, inject, load_adapter, merge_and_unload, merge_checkpoint, save_adapter};

fn peak_mib() -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("malformed")?.parse::<f64>()? / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = Device::flex();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["adapter", base, adapter] => {
            let (_, model) = LlamaForCausalLM::from_pretrained(Path::new(base), &device, FloatDType::F32)?;
            let lora = LoraConfig {
                r: 16,
                target_modules: Some(TargetModules::Pattern("all-linear".into())),
                init_lora_weights: sft_peft::InitLoraWeights::Bool(false),
                ..Default::default()
            };
            save_adapter(&inject(model, &lora, 0)?, &lora, base, Path::new(adapter))?;
        }
        ["memory", base, adapter, out] => {
            let (config, model) = LlamaForCausalLM::from_pretrained(Path::new(base), &device, FloatDType::F32)?;
            let (model, _) = load_adapter(model, Path::new(adapter))?;
            merge_and_unload(model).save_pretrained(&config, Path::new(out), FloatDType::F32)?;
            println!("memory: peak RSS {:.1} MiB", peak_mib()?);
        }
        ["stream", base, adapter, out, shard_mb] => {
            let config = LlamaConfig::from_file(&Path::new(base).join("config.json"))?;
            let mut checkpoint = Checkpoint::open_dir(Path::new(base))?;
            let shard = shard_mb.parse::<usize>()? * 1_000_000;
            let files = merge_checkpoint(&config, &mut checkpoint, Path::new(adapter), Path::new(out), shard)?;
            println!("stream ({shard_mb} MB shards, {} files): peak RSS {:.1} MiB", files.len(), peak_mib()?);
        }
        _ => {
            bail!("usage: merge_rss adapter BASE ADAPTER | memory BASE ADAPTER OUT | stream BASE ADAPTER OUT SHARD_MB")
        }
    }
    Ok(())
}
