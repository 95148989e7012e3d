//! The seed tutorial's pipeline end to end on `configs/legal_clauses.json`, offline: load the config (strictly
//! validated); resolve the data set (the embedded `data/legal_clauses` by default, a Hub dataset repo if the config
//! names one); split, format, tokenize and mask it; load the base model (the embedded `models/llama-tiny`, made on
//! first use from its seeded recipe, or a Hub / local checkpoint; NF4 with `use_qlora`); inject LoRA; train with
//! evaluation, early stopping and checkpoints; save the PEFT adapter in `output_dir`, check that it loads, and
//! print generations for held-out prompts before and after training.
//!
//! ```text
//! cargo run --example legal_clauses [-- path/to/config.json]
//! ```
//!
//! With `SFT_EXAMPLE_MIN_EVAL_DROP=0.5` (as CI runs it) the run fails unless the evaluation loss fell by at least
//! that fraction.
#![allow(clippy::print_stdout)]

/// mimalloc: glibc's allocator page-faults on every large tensor (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

use anyhow::{Context, bail};
use burn::prelude::*;
use sft::config::RunConfig;
use sft::data::{Example, Segments};
use sft::hub::HubSettings;
use sft::model_stage::{GenerationConfig, LlamaForCausalLM, Projection, generate};
use sft::tokenize::SftTokenizer;

fn main() -> anyhow::Result<()> {
    sft::allocator::configure_for_training();
    sft::progress::init_logging("info");
    sft::progress::enable();
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

    let data = sft::pipeline::prepare_data(&config, &hub)?;
    let splits = &data.splits;
    let tokenizer = &data.tokenizer;
    println!("config      {config_path}");
    print!("{}", sft::pipeline::inspect(&config, &data, 1)?);
    if data.validation.examples.is_empty() {
        bail!("{config_path}: the validation split is empty; set dataset_config.validation_size");
    }
    let device = sft::pipeline::device(&config)?;
    let model = sft::pipeline::prepare_model(&config, &hub, &device)?;
    let trainer = sft::pipeline::trainer(&config, &data)?.with_callback(sft::progress::TrainingProgress::new());
    let mut trainer = sft::pipeline::with_reporting(trainer, &config)?;
    trainer.stop_on_sigint()?;
    let args = trainer.args().clone();

    let prompts = held_out_prompts(&splits.test, tokenizer, 3)?;
    let before_loss = trainer.evaluate(&model)?[sft::train::keys::EVAL_LOSS];
    let before = complete(&model, &prompts, tokenizer)?;
    println!(
        "\ntraining    {} steps (batch {} × accumulation {}), eval_loss before {before_loss:.4}",
        trainer.total_steps(),
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps
    );
    let out = trainer.train(model)?;
    let after_loss = trainer.evaluate(&out.model)?[sft::train::keys::EVAL_LOSS];
    let after = complete(&out.model, &prompts, tokenizer)?;
    let output_dir = config.output_dir();

    for (i, ((example, b), a)) in prompts.iter().zip(&before).zip(&after).enumerate() {
        println!("\n── held-out prompt {} ──\n{}", i + 1, example.1.trim_end());
        println!("   reference: {}", one_line(&example.2));
        println!("   before:    {}", one_line(b));
        println!("   after:     {}", one_line(a));
    }

    // The adapter in output_dir is PEFT's format: read it back onto a fresh base.
    sft::pipeline::load_adapted(&output_dir, Some(&config.model_name), &hub, &Device::flex())
        .context("loading the saved adapter")?;
    let drop = 1.0 - after_loss / before_loss;
    println!(
        "\n{} after {} steps in {:.1} s: eval_loss {before_loss:.4} → {after_loss:.4} ({:.0}% lower); {}",
        out.stop,
        out.state.global_step,
        started.elapsed().as_secs_f64(),
        100.0 * drop,
        match (out.state.best_metric, out.state.best_global_step) {
            (Some(value), Some(step)) => format!("best {} {value:.4} at step {step}", args.best_metric()),
            _ => "no best checkpoint tracked".to_owned(),
        },
    );
    println!("adapter     {} (adapter_config.json, adapter_model.safetensors; loads back)", output_dir.display());
    println!("logs        {}", output_dir.join(sft::train::METRICS_FILE).display());
    // The model card; with `push_to_hub` (and HF_TOKEN), the push.
    if let Some((id, info)) = sft::pipeline::finish_run(&config, &hub)? {
        println!("pushed      {id} ({})", info.commit_url);
    }
    println!("model card  {}", output_dir.join(sft::push::MODEL_CARD).display());
    println!("loss curve  {}", output_dir.join(sft::train::LOSS_CURVE_FILE).display());
    if let Ok(min) = std::env::var("SFT_EXAMPLE_MIN_EVAL_DROP") {
        let min: f64 = min.parse().context("SFT_EXAMPLE_MIN_EVAL_DROP")?;
        if drop < min {
            bail!("the evaluation loss fell by {:.1}%, less than the required {:.1}%", 100.0 * drop, 100.0 * min);
        }
    }
    Ok(())
}

/// Up to `n` test examples with a plain prompt / completion: (prompt ids, prompt text, reference completion).
fn held_out_prompts(
    test: &[Example],
    tokenizer: &SftTokenizer,
    n: usize,
) -> anyhow::Result<Vec<(Vec<u32>, String, String)>> {
    let mut prompts = Vec::new();
    for example in test {
        if let Segments::Completion { prompt, completion } = &example.segments {
            let ids = tokenizer.ids(prompt, true)?;
            prompts.push((ids, prompt.clone(), completion.clone()));
        }
        if prompts.len() == n {
            break;
        }
    }
    Ok(prompts)
}

/// Greedy completions (up to 48 new tokens) of `prompts`, in inference mode on the CPU.
fn complete<P: Projection>(
    model: &LlamaForCausalLM<P>,
    prompts: &[(Vec<u32>, String, String)],
    tokenizer: &SftTokenizer,
) -> anyhow::Result<Vec<String>> {
    let model = model.clone().valid();
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.0.clone()).collect();
    let special = tokenizer.special();
    let config = GenerationConfig {
        max_new_tokens: 48,
        temperature: 0.0,
        top_p: 1.0,
        eos_token_ids: vec![special.eos.id],
        pad_token_id: special.pad.id,
        seed: 0,
        use_cache: true,
    };
    let generated = generate(&model, &ids, &config, &Device::flex())?;
    generated
        .iter()
        .map(|ids| {
            let text = ids.strip_suffix(&[special.eos.id]).unwrap_or(ids);
            Ok(tokenizer.decode(text)?)
        })
        .collect()
}

/// `text` on one line, at most 160 characters.
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 160 { format!("{}…", flat.chars().take(160).collect::<String>()) } else { flat }
}
