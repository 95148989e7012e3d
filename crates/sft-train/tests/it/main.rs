//! sft-train integration tests on the llama-micro fixture (vocab 4096, hidden 64, 2 layers) with synthetic
//! examples of unequal lengths and supervised spans.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod accumulation;
mod callbacks;
mod crash;
mod data_parallel;
mod fp16;
mod padding_free;
mod plot;
mod precision;
mod resume;
mod tensorboard;
#[cfg(feature = "wgpu")]
mod wgpu;

use std::path::Path;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_collate::{BatchSource, Collator, Rows, Sampling};
use sft_model::LlamaForCausalLM;
use sft_peft::{InitLoraWeights, LoraConfig, LoraLinear, TargetModules, inject};
use sft_tokenize::TokenizedExample;
use sft_train::{IntervalStrategy, Trainer, TrainingArguments};

pub use sft_testkit::micro;

/// LoRA r 4 on q/v with dropout 0.1 (so dropout's seeding is exercised) and a non-zero B init, so the first
/// steps already move the loss.
pub fn lora() -> LoraConfig {
    LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.1,
        target_modules: Some(TargetModules::List(vec!["q_proj".into(), "v_proj".into()])),
        init_lora_weights: InitLoraWeights::Bool(false),
        ..Default::default()
    }
}

/// The micro model with fresh adapters on the flex autodiff device.
pub fn model(config: &LoraConfig) -> LlamaForCausalLM<LoraLinear> {
    let device = Device::flex().autodiff();
    let base = LlamaForCausalLM::from_pretrained(&micro(), &device, FloatDType::F32).unwrap().1;
    inject(base, config, 7).unwrap()
}

/// `n` examples of 6..=21 tokens whose first third is an unsupervised prompt (different supervised counts).
pub fn examples(n: usize, seed: u64) -> Vec<TokenizedExample> {
    let mut random = sft_rand::SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let len = 6 + (i * 7 + random.below(5) as usize) % 16;
            let input_ids: Vec<u32> = (0..len).map(|_| 3 + random.below(4000) as u32).collect();
            let loss_mask = (0..len).map(|t| t >= len / 3).collect();
            TokenizedExample { input_ids, loss_mask }
        })
        .collect()
}

/// Batches of `batch_size` examples (pad id 2), shuffled by `seed` per epoch.
pub fn source(examples: &[TokenizedExample], batch_size: usize, sampling: Sampling) -> BatchSource<'_> {
    let collator = Collator { pad_id: 2, pad_to_multiple_of: None };
    BatchSource::new(examples, collator, batch_size, sampling, Rows::OnePerExample).unwrap()
}

/// A trainer of `args` with adapters made by `config` over `train` (batches of `batch_size`, shuffled by seed 1)
/// and, when given, `eval` (batches of `batch_size`, in order).
pub fn trainer<'a>(
    args: TrainingArguments,
    config: LoraConfig,
    train: &'a [TokenizedExample],
    eval: Option<&'a [TokenizedExample]>,
    batch_size: usize,
) -> Trainer<'a> {
    let eval = eval.map(|e| source(e, batch_size, Sampling::Sequential));
    Trainer::new(args, config, "micro", source(train, batch_size, Sampling::Shuffle { seed: 1 }), eval).unwrap()
}

/// Arguments for a short run into `dir`: lr 1e-2 linear with 1 warmup step, clipping at 1, no eval, no saves.
pub fn args(dir: &Path) -> TrainingArguments {
    TrainingArguments {
        output_dir: dir.display().to_string(),
        learning_rate: 1e-2,
        warmup_steps: 1,
        weight_decay: 0.01,
        logging_steps: 1,
        eval_strategy: IntervalStrategy::No,
        save_strategy: IntervalStrategy::No,
        seed: 3,
        ..Default::default()
    }
}

/// All adapter values (A and B of every projection, in order).
pub fn adapters(model: &LlamaForCausalLM<LoraLinear>) -> Vec<f32> {
    model
        .projections()
        .iter()
        .filter_map(|(_, p)| p.adapter.as_ref())
        .flat_map(|a| {
            let a_values: Vec<f32> = a.lora_a.val().into_data().try_to_vec().unwrap();
            let b_values: Vec<f32> = a.lora_b.val().into_data().try_to_vec().unwrap();
            [a_values, b_values].concat()
        })
        .collect()
}
