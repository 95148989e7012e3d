//! The Rust side of the side-by-side comparison with transformers + PEFT and TRL (`benches/compare/run.sh`).
//!
//! ```text
//! cargo run --release --example compare -- prepare --workload tiny --dir /tmp/w/tiny
//! cargo run --release --example compare -- run --dir /tmp/w/tiny [--workers 2] [--bf16]
//! cargo run --release --example compare -- lora
//! ```
//!
//! `prepare` writes what both sides read: the model directory (`model/config.json`, `model/model.safetensors`,
//! random weights from SplitMix64 seed 0) and `workload.json`: the LoRA and trainer settings and the tokenized
//! examples in the order the trainer takes them (the embedded legal-clause rows, every token supervised, shuffled
//! with seed 42 as the seed config's run would be), so the Python side trains on the same batches.
//!
//! `run` trains on them with [`Trainer`] (flex, f32 or `--bf16` mixed precision, evaluation and saving off) and prints one JSON line: the
//! non-pad tokens per second of the timed steps (the `warmup_steps` first optimizer steps are excluded), and the
//! peak RSS of the process. `lora` times forward + backward of one 2048 × 2048 projection with LoRA r 16 on x of
//! 4 × 512 tokens (the input gradient computed, as inside a model) and prints the median.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

/// mimalloc, as the project's training binaries use (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, FloatDType};
use serde::{Deserialize, Serialize};
use sft::collate::{BatchSource, Collator, Rows, Sampling};
use sft::config::RunConfig;
use sft::hub::HubSettings;
use sft::model_stage::{LlamaConfig, LlamaForCausalLM, Projection};
use sft::peft::{LoraAdapter, LoraConfig, LoraLinear, TargetModules, inject};
use sft::tokenize::{EncodeOptions, Encoder, Masking, TokenizedExample};
use sft::train::{Callback, IntervalStrategy, Trainer, TrainerControl, TrainerState, TrainingArguments};

/// A training workload: the model's `config.json`, and what the trainer does with it.
struct Workload {
    name: &'static str,
    config: &'static str,
    max_length: usize,
    warmup_steps: usize,
    timed_steps: usize,
}

const LLAMA_TINY: &str = r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 4096, "hidden_size": 256,
    "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 2048}"#;
const LLAMA_SMALL: &str = r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 32000, "hidden_size": 512,
    "intermediate_size": 1536, "num_hidden_layers": 15, "num_attention_heads": 8, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 4096}"#;
/// `HuggingFaceTB/SmolLM2-135M`'s `config.json` shape (random weights).
const SMOLLM2_135M: &str = r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 49152, "hidden_size": 576,
    "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
    "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "max_position_embeddings": 8192,
    "tie_word_embeddings": true, "bos_token_id": 0, "eos_token_id": 0}"#;

const WORKLOADS: &[Workload] = &[
    Workload { name: "tiny", config: LLAMA_TINY, max_length: 2048, warmup_steps: 2, timed_steps: 10 },
    Workload { name: "small", config: LLAMA_SMALL, max_length: 512, warmup_steps: 1, timed_steps: 4 },
    Workload { name: "smollm2-135m", config: SMOLLM2_135M, max_length: 512, warmup_steps: 1, timed_steps: 3 },
];

/// The seed config's adapter and batching (`configs/llama-3.2-1b-legal-qlora.json`).
const R: usize = 8;
const LORA_ALPHA: f64 = 32.0;
const LORA_DROPOUT: f64 = 0.05;
const TARGETS: [&str; 4] = ["q_proj", "k_proj", "v_proj", "o_proj"];
const BATCH: usize = 4;
const ACCUMULATION: usize = 4;
const LEARNING_RATE: f64 = 2e-4;
const LOGGING_STEPS: usize = 4;
const SEED: u64 = 42;

/// `workload.json`: everything the two sides share besides the weights.
#[derive(Serialize, Deserialize)]
struct WorkloadFile {
    name: String,
    r: usize,
    lora_alpha: f64,
    lora_dropout: f64,
    target_modules: Vec<String>,
    per_device_train_batch_size: usize,
    gradient_accumulation_steps: usize,
    learning_rate: f64,
    logging_steps: usize,
    max_grad_norm: f64,
    seed: u64,
    warmup_steps: usize,
    timed_steps: usize,
    pad_token_id: u32,
    /// Token ids of each example, in the order the trainer takes them.
    input_ids: Vec<Vec<u32>>,
    /// Labels of each example (the id, or -100 where no loss is taken); the model shifts them.
    labels: Vec<Vec<i64>>,
}

fn workload(name: &str) -> anyhow::Result<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name).with_context(|| {
        let names: Vec<_> = WORKLOADS.iter().map(|w| w.name).collect();
        format!("unknown workload {name}; known: {}", names.join(", "))
    })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn prepare(workload: &Workload, dir: &Path) -> anyhow::Result<()> {
    let mut config = RunConfig::from_file(root().join("configs/legal_clauses.json"))?;
    config.dataset_config.dataset_name = root().join("data/legal_clauses").display().to_string();
    config.dataset_config.validation_size = None;
    let hub = HubSettings::resolve(|_| None, None)?;
    let splits = sft::load_dataset(&config.dataset_config, &hub)?;
    let rows: Vec<_> = splits.train.into_iter().chain(splits.test).collect();
    let tokenizer =
        sft::load_tokenizer(root().join("models/llama-tiny").to_str().context("path")?, &hub, &Default::default())?;
    let options =
        EncodeOptions { max_length: workload.max_length, masking: Masking::FullSequence, ..config.encode_options() };
    let examples = Encoder::new(&tokenizer, &options).encode_all(&rows)?.examples;
    let pad = tokenizer.special().pad.id;
    let collator = Collator { pad_id: pad, pad_to_multiple_of: None };
    let source = BatchSource::new(&examples, collator, BATCH, Sampling::Shuffle { seed: SEED }, Rows::OnePerExample)?;
    let micro_batches = (workload.warmup_steps + workload.timed_steps) * ACCUMULATION;
    let plan = source.plan(0);
    if plan.len() < micro_batches {
        bail!("the data has {} micro-batches, the workload needs {micro_batches}", plan.len());
    }
    // Without packing a unit is one example, numbered as `examples`.
    let ordered: Vec<&TokenizedExample> = plan[..micro_batches].iter().flatten().map(|&u| &examples[u]).collect();
    let file = WorkloadFile {
        name: workload.name.into(),
        r: R,
        lora_alpha: LORA_ALPHA,
        lora_dropout: LORA_DROPOUT,
        target_modules: TARGETS.map(String::from).to_vec(),
        per_device_train_batch_size: BATCH,
        gradient_accumulation_steps: ACCUMULATION,
        learning_rate: LEARNING_RATE,
        logging_steps: LOGGING_STEPS,
        max_grad_norm: 1.0,
        seed: SEED,
        warmup_steps: workload.warmup_steps,
        timed_steps: workload.timed_steps,
        pad_token_id: pad,
        input_ids: ordered.iter().map(|e| e.input_ids.clone()).collect(),
        labels: ordered
            .iter()
            .map(|e| e.input_ids.iter().zip(&e.loss_mask).map(|(&t, &m)| if m { i64::from(t) } else { -100 }).collect())
            .collect(),
    };
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("workload.json"), serde_json::to_vec(&file)?)?;
    let model_config = LlamaConfig::from_json(workload.config, Path::new(workload.name))?;
    let model = LlamaForCausalLM::init(&model_config, &Device::flex(), 0);
    model.save_pretrained(&model_config, &dir.join("model"), FloatDType::F32)?;
    // The tokenizer gives the Python side its pad token; the examples are already tokenized.
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(root().join("models/llama-tiny").join(file), dir.join("model").join(file))?;
    }
    println!("{}: {} examples written to {}", workload.name, file.input_ids.len(), dir.display());
    Ok(())
}

/// Records the wall-clock time and the non-pad tokens seen at the end of every optimizer step.
struct StepClock(Arc<Mutex<Vec<(Instant, u64)>>>);

impl Callback for StepClock {
    fn name(&self) -> &str {
        "StepClock"
    }

    fn on_step_end(&mut self, state: &TrainerState, _control: &mut TrainerControl) {
        self.0.lock().unwrap().push((Instant::now(), state.num_input_tokens_seen));
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    let kib: f64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().unwrap_or(0.0);
    kib / 1024.0
}

fn run(dir: &Path, workers: usize, bf16: bool) -> anyhow::Result<()> {
    let file: WorkloadFile = serde_json::from_slice(&std::fs::read(dir.join("workload.json"))?)?;
    let examples: Vec<TokenizedExample> = file
        .input_ids
        .iter()
        .zip(&file.labels)
        .map(|(ids, labels)| TokenizedExample {
            input_ids: ids.clone(),
            loss_mask: labels.iter().map(|&l| l >= 0).collect(),
        })
        .collect();
    let collator = Collator { pad_id: file.pad_token_id, pad_to_multiple_of: None };
    let batch = file.per_device_train_batch_size;
    let source = BatchSource::new(&examples, collator, batch, Sampling::Sequential, Rows::OnePerExample)?;
    let device = Device::flex().autodiff();
    let (_, model) = LlamaForCausalLM::from_pretrained(&dir.join("model"), &device, FloatDType::F32)?;
    let lora = LoraConfig {
        r: file.r,
        lora_alpha: file.lora_alpha,
        lora_dropout: file.lora_dropout,
        target_modules: Some(TargetModules::List(file.target_modules.clone())),
        ..Default::default()
    };
    let model = inject(model, &lora, file.seed)?;
    let output = tempfile::tempdir()?;
    let steps = file.warmup_steps + file.timed_steps;
    let args = TrainingArguments {
        output_dir: output.path().display().to_string(),
        per_device_train_batch_size: batch,
        gradient_accumulation_steps: file.gradient_accumulation_steps,
        max_steps: steps as i64,
        learning_rate: file.learning_rate,
        logging_steps: file.logging_steps,
        max_grad_norm: file.max_grad_norm,
        seed: file.seed,
        eval_strategy: IntervalStrategy::No,
        save_strategy: IntervalStrategy::No,
        micro_batch_workers: workers,
        bf16,
        ..Default::default()
    };
    let clock = Arc::new(Mutex::new(Vec::new()));
    let mut trainer = Trainer::new(args, lora, "compare", source, None)?.with_callback(StepClock(clock.clone()));
    trainer.train(model)?;
    let marks = clock.lock().unwrap().clone();
    let (start, end) = (marks[file.warmup_steps - 1], marks[steps - 1]);
    let seconds = end.0.duration_since(start.0).as_secs_f64();
    let tokens = end.1 - start.1;
    let result = serde_json::json!({
        "side": "sft-rs",
        "workload": file.name,
        "micro_batch_workers": workers,
        "precision": if bf16 { "bf16" } else { "f32" },
        "timed_steps": file.timed_steps,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_second": tokens as f64 / seconds,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{result}");
    Ok(())
}

/// Forward + backward of one 2048 × 2048 projection with LoRA r 16 on 4 × 512 tokens, as `benches/lora.rs`.
fn lora(iterations: usize) -> anyhow::Result<()> {
    const D: usize = 2048;
    const RANK: usize = 16;
    let device = Device::flex().autodiff();
    let linear: Linear = LinearConfig::new(D, D).with_bias(false).init(&device);
    let frozen =
        Linear { weight: Param::from_tensor(linear.weight.val().detach()).set_require_grad(false), bias: None };
    let mut random = sft_rand::SplitMix64::new(0);
    let a = random.uniforms(RANK * D, -1.0 / (D as f64).sqrt(), 1.0 / (D as f64).sqrt());
    let b = random.normals(D * RANK, 0.02);
    let layer = LoraLinear {
        base: frozen.into(),
        adapter: Some(LoraAdapter::from_peft(&a, &b, [RANK, D, D], 2.0, 0.0, &device)),
        merged: false,
    };
    let x = Tensor::<3>::random([4, 512, D], Distribution::Normal(0.0, 1.0), &device).detach();
    let mut times = Vec::new();
    for i in 0..iterations + 3 {
        let began = Instant::now();
        let input = x.clone().require_grad();
        let grads = Projection::forward(&layer, input.clone()).sum().backward();
        let checksum = input.grad(&grads).context("no input gradient")?.sum().into_scalar::<f32>();
        if i >= 3 {
            times.push(began.elapsed().as_secs_f64());
        }
        std::hint::black_box(checksum);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{}",
        serde_json::json!({"side": "sft-rs", "workload": "lora", "iterations": iterations, "median_ms": median * 1e3})
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    sft::allocator::configure_for_training();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    match args.first().map(String::as_str) {
        Some("prepare") => {
            let workload = workload(&flag("--workload").context("--workload NAME")?)?;
            prepare(workload, Path::new(&flag("--dir").context("--dir DIR")?))
        }
        Some("run") => {
            let workers = flag("--workers").map(|w| w.parse()).transpose()?.unwrap_or(1);
            run(Path::new(&flag("--dir").context("--dir DIR")?), workers, args.iter().any(|a| a == "--bf16"))
        }
        Some("lora") => lora(flag("--iterations").map(|w| w.parse()).transpose()?.unwrap_or(10)),
        _ => bail!("usage: compare prepare --workload NAME --dir DIR | run --dir DIR [--workers N] [--bf16] | lora"),
    }
}
