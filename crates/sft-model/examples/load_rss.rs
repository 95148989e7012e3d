//! Peak resident memory of loading a checkpoint, for the figures in the crate README.
//!
//! ```text
//! cargo run --release -p sft-model --example load_rss -- write DIR PRESET f32|bf16   # random init, save_pretrained
//! cargo run --release -p sft-model --example load_rss -- load DIR f32|bf16           # from_pretrained, report
//! ```
//! Each `load` runs in its own process, so its peak (`VmHWM` of `/proc/self/status`) is the load alone.
#![allow(clippy::print_stdout)]

use std::path::Path;

use anyhow::{Context, bail};
use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaConfig, LlamaForCausalLM};

fn dtype(name: &str) -> anyhow::Result<FloatDType> {
    Ok(match name {
        "f32" => FloatDType::F32,
        "bf16" => FloatDType::BF16,
        other => bail!("dtype `{other}`: expected f32 or bf16"),
    })
}

fn status(key: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    let line = text.lines().find(|l| l.starts_with(key)).with_context(|| format!("no {key} in /proc/self/status"))?;
    let kib: f64 = line.split_whitespace().nth(1).context("malformed line")?.parse()?;
    Ok(kib / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = Device::flex();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["write", dir, preset, ty] => {
            let config = LlamaConfig::preset(preset)?;
            let model = LlamaForCausalLM::init(&config, &device, 0);
            model.save_pretrained(&config, Path::new(dir), dtype(ty)?)?;
            println!("wrote {preset} ({} parameters) to {dir} as {ty}", config.num_parameters());
        }
        ["load", dir, ty] => {
            let before = status("VmRSS:")?;
            let (config, model) = LlamaForCausalLM::from_pretrained(Path::new(dir), &device, dtype(ty)?)?;
            let file = std::fs::metadata(Path::new(dir).join("model.safetensors"))?.len() as f64 / (1024.0 * 1024.0);
            let weights = config.num_parameters() as f64 * if *ty == "bf16" { 2.0 } else { 4.0 } / (1024.0 * 1024.0);
            println!(
                "file {file:.1} MiB, weights as {ty} {weights:.1} MiB, RSS before load {before:.1} MiB, \
                 after {:.1} MiB, peak {:.1} MiB ({} layers)",
                status("VmRSS:")?,
                status("VmHWM:")?,
                model.num_layers()
            );
        }
        _ => bail!("usage: load_rss write DIR PRESET f32|bf16 | load DIR f32|bf16"),
    }
    Ok(())
}
