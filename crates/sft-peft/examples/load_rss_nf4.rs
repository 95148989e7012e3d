//! Peak resident memory of loading a checkpoint dense or quantized to NF4 while loading, for the crate README.
//!
//! ```text
//! cargo run --release -p sft-model --example load_rss -- write DIR small f32     # make the checkpoint
//! cargo run --release -p sft-peft --example load_rss_nf4 -- DIR f32|nf4|nf4-dq
//! ```
//! Each load runs in its own process, so its peak (`VmHWM`) is the load alone.
#![allow(clippy::print_stdout)]

use std::path::Path;

use anyhow::{Context, bail};
use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{Checkpoint, LlamaConfig, LlamaForCausalLM};
use sft_peft::{BaseLinear, QuantizationConfig};

fn status(key: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    let line = text.lines().find(|l| l.starts_with(key)).with_context(|| format!("no {key}"))?;
    Ok(line.split_whitespace().nth(1).context("malformed")?.parse::<f64>()? / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, mode] = args.as_slice() else { bail!("usage: load_rss_nf4 DIR f32|nf4|nf4-dq") };
    let quantization = match mode.as_str() {
        "f32" => None,
        "nf4" | "nf4-dq" => Some(QuantizationConfig {
            load_in_4bit: true,
            bnb_4bit_use_double_quant: mode == "nf4-dq",
            ..serde_json::from_str("{}")?
        }),
        other => bail!("mode `{other}`: expected f32, nf4 or nf4-dq"),
    };
    let dir = Path::new(dir);
    let device = Device::flex();
    let config = LlamaConfig::from_file(&dir.join("config.json"))?;
    let mut checkpoint = Checkpoint::open_dir(dir)?;
    let model: LlamaForCausalLM<BaseLinear> =
        LlamaForCausalLM::load_with(&config, &mut checkpoint, &device, FloatDType::F32, |_, w| match &quantization {
            None => Ok(BaseLinear::Dense(sft_model::dense(w))),
            Some(q) => q.projection(w),
        })?;
    checkpoint.finish()?;
    let quantized: usize = model
        .projections()
        .iter()
        .map(|(_, p)| match p {
            BaseLinear::Nf4(q) => q.quantized_bytes(),
            BaseLinear::Dense(l) => 4 * l.weight.num_params(),
        })
        .sum();
    println!(
        "{mode}: projections hold {:.1} MiB, peak RSS {:.1} MiB, RSS after load {:.1} MiB",
        quantized as f64 / (1024.0 * 1024.0),
        status("VmHWM:")?,
        status("VmRSS:")?
    );
    Ok(())
}
