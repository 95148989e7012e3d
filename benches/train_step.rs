//! Optimizer steps of the trainer: the "tiny" model (hidden 256, 4 layers, random init) with LoRA r 8 on
//! q/k/v/o (the seed's adapter: alpha 32, dropout 0.05), batch 4 × accumulation 4, on the embedded legal-clause
//! rows tokenized as the seed config does (every token supervised, max_length 2048), flex on this machine's
//! threads. One iteration = `Trainer::train` for 2 optimizer steps (8 micro-batches), including its setup and the
//! final adapter write; throughput = non-pad tokens of those steps. With 1 and 2 `micro_batch_workers`.
//! `cargo bench --bench train_step`; figures in `benches/README.md`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

/// mimalloc, as the project's training binaries use (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

mod common;

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::collate::{BatchSource, Collator, Rows, Sampling};
use sft::model_stage::{LlamaConfig, LlamaForCausalLM};
use sft::peft::{LoraConfig, TargetModules, inject};
use sft::tokenize::{EncodeOptions, Encoder, Masking};
use sft::train::{IntervalStrategy, Trainer, TrainingArguments, supervised_targets};

const STEPS: u64 = 2;

fn train_step(c: &mut Criterion) {
    sft::allocator::configure_for_training();
    let tokenizer = common::tokenizer();
    let options =
        EncodeOptions { max_length: 2048, masking: Masking::FullSequence, ..common::config().encode_options() };
    let examples = Encoder::new(&tokenizer, &options).encode_all(&common::examples()).unwrap().examples;
    let collator = Collator { pad_id: tokenizer.special().pad.id, pad_to_multiple_of: None };
    let sampling = Sampling::Shuffle { seed: 42 };
    let source = BatchSource::new(&examples, collator, 4, sampling, Rows::OnePerExample).unwrap();
    let plan = source.plan(0);
    let batches: Vec<_> = plan[..4 * STEPS as usize].iter().map(|units| source.collate(units)).collect();
    let tokens: usize = batches.iter().map(|b| b.num_tokens).sum();
    let supervised: usize = batches.iter().map(supervised_targets).sum();
    let padded: usize = batches.iter().map(|b| b.batch_size * b.seq_len).sum();
    eprintln!("{STEPS} steps: {tokens} non-pad tokens ({supervised} supervised) in {padded} padded positions");

    let device = Device::flex().autodiff();
    let config = LlamaConfig::preset("tiny").unwrap();
    let lora = LoraConfig {
        r: 8,
        lora_alpha: 32.0,
        lora_dropout: 0.05,
        target_modules: Some(TargetModules::List(["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec())),
        ..Default::default()
    };
    let model = inject(LlamaForCausalLM::init(&config, &device, 0), &lora, 0).unwrap();
    let output = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        output_dir: output.path().display().to_string(),
        per_device_train_batch_size: 4,
        gradient_accumulation_steps: 4,
        max_steps: STEPS as i64,
        learning_rate: 2e-4,
        logging_steps: 1,
        eval_strategy: IntervalStrategy::No,
        save_strategy: IntervalStrategy::No,
        ..Default::default()
    };
    let mut group = c.benchmark_group("train_step_tiny_lora_r8_qkvo_4x4");
    group.throughput(Throughput::Elements(tokens as u64));
    group.sample_size(10);
    for workers in [1, 2] {
        let args = TrainingArguments { micro_batch_workers: workers, ..args.clone() };
        let mut trainer = Trainer::new(args, lora.clone(), "tiny", source.clone(), None).unwrap();
        group.bench_function(format!("two_optimizer_steps_{workers}_micro_batch_workers"), |b| {
            b.iter(|| trainer.train(model.clone()).unwrap().state.global_step)
        });
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
