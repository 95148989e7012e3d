//! Training throughput of a Llama-shaped model with random weights (no download): QLoRA (NF4 base) or LoRA, r 8
//! on q/k/v/o, batches of 4 × 512 supervised tokens, through the project's `Trainer`. Prints tokens/s per step
//! and the median after the first (warm-up) step. `scripts/gpu-check.sh` runs it on a GPU and samples the GPU's
//! memory alongside.
//!
//! ```text
//! cargo run --release --features wgpu --example gpu_throughput -- \
//!     [--device wgpu|cuda|cpu] [--preset llama-3.2-1b|qwen2.5-0.5b|qwen3-0.6b|mistral-7b|phi-4-mini|gemma-3-1b|small|tiny] [--steps 6] [--batch 4] [--seq 512] \
//!     [--dense] [--bf16 | --fp16]
//! ```
#![allow(clippy::print_stdout)]

/// mimalloc: glibc's allocator page-faults on every large tensor (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

use anyhow::{Context, bail};
use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;
use sft::collate::{BatchSource, Collator, Rows, Sampling};
use sft::model_stage::{LlamaConfig, LlamaForCausalLM};
use sft::peft::{BaseLinear, ComputeDtype, LoraConfig, QuantType, QuantizationConfig, TargetModules};
use sft::tokenize::TokenizedExample;
use sft::train::{IntervalStrategy, Trainer, TrainingArguments};

struct Options {
    device: String,
    preset: String,
    steps: u64,
    batch: usize,
    seq: usize,
    dense: bool,
    bf16: bool,
    fp16: bool,
}

fn options() -> anyhow::Result<Options> {
    let default_device = if cfg!(feature = "cuda") {
        "cuda"
    } else if cfg!(feature = "wgpu") {
        "wgpu"
    } else {
        "cpu"
    };
    let mut o = Options {
        device: default_device.into(),
        preset: "llama-3.2-1b".into(),
        steps: 6,
        batch: 4,
        seq: 512,
        dense: false,
        bf16: false,
        fp16: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => o.device = value()?,
            "--preset" => o.preset = value()?,
            "--steps" => o.steps = value()?.parse().context("--steps")?,
            "--batch" => o.batch = value()?.parse().context("--batch")?,
            "--seq" => o.seq = value()?.parse().context("--seq")?,
            "--dense" => o.dense = true,
            "--bf16" => o.bf16 = true,
            "--fp16" => o.fp16 = true,
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

fn device(name: &str) -> anyhow::Result<Device> {
    Ok(match name {
        "cpu" => Device::flex(),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0),
        other => bail!("device {other} is not compiled in (cargo features wgpu / cuda)"),
    })
}

/// Casts every float parameter (the `bf16: true` / `fp16: true` base).
struct ToDtype(DType);

impl ModuleMapper for ToDtype {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| t.cast(dtype))
    }
}

fn main() -> anyhow::Result<()> {
    sft::allocator::configure_for_training();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let o = options()?;
    if o.bf16 && o.fp16 {
        bail!("--bf16 and --fp16 exclude each other");
    }
    let device = device(&o.device)?.autodiff();
    let config = LlamaConfig::preset(&o.preset)?;
    let (dtype, compute) = match (o.bf16, o.fp16) {
        (true, _) => (DType::BF16, ComputeDtype::Bfloat16),
        (_, true) => (DType::F16, ComputeDtype::Float16),
        _ => (DType::F32, ComputeDtype::Float32),
    };
    let started = std::time::Instant::now();
    let model = LlamaForCausalLM::init(&config, &device, 0);
    let model = if dtype == DType::F32 { model } else { model.map(&mut ToDtype(dtype)) };
    let quantization = QuantizationConfig {
        load_in_4bit: true,
        load_in_8bit: false,
        bnb_4bit_quant_type: QuantType::Nf4,
        bnb_4bit_use_double_quant: false,
        bnb_4bit_compute_dtype: compute,
    };
    let model = model.map_projections(|_, linear| -> anyhow::Result<BaseLinear> {
        if o.dense {
            Ok(BaseLinear::Dense(linear))
        } else {
            Ok(quantization.projection(linear.weight.val().transpose())?)
        }
    })?;
    let lora = LoraConfig {
        r: 8,
        lora_alpha: 32.0,
        lora_dropout: 0.05,
        // The attention projections: q/k/v/o, or Phi-3's fused qkv_proj and o_proj.
        target_modules: Some(TargetModules::List(if config.fused_projections {
            ["qkv_proj", "o_proj"].map(String::from).to_vec()
        } else {
            ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec()
        })),
        ..Default::default()
    };
    let model = sft::peft::inject(model, &lora, 0)?;
    println!(
        "model       {} ({} parameters), {} base, {dtype:?} compute, LoRA r 8 on q/k/v/o; set up in {:.1} s on {}",
        o.preset,
        config.num_parameters(),
        if o.dense { "dense" } else { "NF4" },
        started.elapsed().as_secs_f64(),
        o.device
    );

    // Synthetic examples of exactly `seq` tokens, the last two thirds supervised.
    let mut random = sft_rand::SplitMix64::new(1);
    let vocab = config.vocab_size as u64;
    let examples: Vec<TokenizedExample> = (0..o.batch * o.steps as usize)
        .map(|_| TokenizedExample {
            input_ids: (0..o.seq).map(|_| 3 + random.below(vocab - 3) as u32).collect(),
            loss_mask: (0..o.seq).map(|t| t >= o.seq / 3).collect(),
        })
        .collect();
    let output = tempfile::tempdir()?;
    let args = TrainingArguments {
        output_dir: output.path().display().to_string(),
        per_device_train_batch_size: o.batch,
        max_steps: o.steps as i64,
        learning_rate: 2e-4,
        logging_steps: 1,
        eval_strategy: IntervalStrategy::No,
        save_strategy: IntervalStrategy::No,
        bf16: o.bf16,
        fp16: o.fp16,
        ..Default::default()
    };
    let collator = Collator { pad_id: 0, pad_to_multiple_of: None };
    let source = BatchSource::new(&examples, collator, o.batch, Sampling::Sequential, Rows::OnePerExample)?;
    let mut trainer = Trainer::new(args, lora, &o.preset, source, None)?;
    let out = trainer.train(model)?;
    let mut speeds: Vec<f64> = out
        .state
        .log_history
        .iter()
        .filter_map(|e| e.get(sft::train::keys::TRAIN_TOKENS_PER_SECOND).copied())
        .collect();
    for (step, speed) in speeds.iter().enumerate() {
        println!("step {:>3}   {speed:>10.0} tokens/s", step + 1);
    }
    if speeds.len() > 1 {
        speeds.remove(0);
    }
    speeds.sort_by(f64::total_cmp);
    let median = speeds.get(speeds.len() / 2).copied().unwrap_or(0.0);
    println!(
        "throughput  {median:.0} tokens/s (median after the first step; batch {} × {} tokens, {} steps)",
        o.batch, o.seq, o.steps
    );
    if o.fp16 {
        println!("fp16        {} of {} steps skipped by the loss scaler (overflow)", out.state.skipped_steps, o.steps);
    }
    Ok(())
}
