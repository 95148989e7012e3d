//! The `sft` command line: `sft train --config FILE [--set key.path=value …]`, `eval`, `generate`, `inspect`,
//! `merge --adapter DIR --out DIR`, `export gguf --adapter DIR --out FILE`, `push --adapter DIR`.
//!
//! Errors print one line (the file and key path for config errors) and exit with status 1; a config that fails to
//! load or validate writes nothing to `output_dir`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// mimalloc: glibc's allocator page-faults on every large tensor (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sft::config::RunConfig;
use sft::hub::HubSettings;

#[derive(Debug, Parser)]
#[command(name = "sft", version, about = "LoRA / QLoRA supervised fine-tuning of Llama-style models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train an adapter as the run config says; the PEFT adapter, checkpoints and metrics go to
    /// `training_args.output_dir`.
    Train {
        /// The run config (JSON).
        #[arg(long)]
        config: PathBuf,
        /// Override a config key before validation: `--set training_args.learning_rate=1e-3` (repeatable; values
        /// are JSON, or else strings).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        overrides: Vec<String>,
    },
    /// Evaluate on the validation split of the config: `eval_loss`, `eval_mean_token_accuracy` (of the base with
    /// fresh, identity adapters, or of a trained adapter).
    Eval {
        /// The run config (JSON).
        #[arg(long)]
        config: PathBuf,
        /// Override a config key (as for `train`).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        overrides: Vec<String>,
        /// A trained adapter directory to evaluate (on the config's base model).
        #[arg(long)]
        adapter: Option<PathBuf>,
    },
    /// Continue a prompt with a trained adapter.
    Generate {
        /// The adapter directory.
        #[arg(long)]
        adapter: PathBuf,
        /// The prompt text (formatted as in training, e.g. the `### Instruction` template).
        #[arg(long)]
        prompt: String,
        /// The base model; default: the adapter's `base_model_name_or_path`.
        #[arg(long)]
        base: Option<String>,
        /// Most new tokens.
        #[arg(long, default_value_t = 128)]
        max_new_tokens: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
    },
    /// Show the data set as the config prepares it: splits, dropped rows, token length percentiles, the supervised
    /// token fraction, and a few training examples with the supervised text marked.
    Inspect {
        /// The run config (JSON).
        #[arg(long)]
        config: PathBuf,
        /// Override a config key (as for `train`).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        overrides: Vec<String>,
        /// Training examples to show.
        #[arg(long, default_value_t = 2)]
        examples: usize,
    },
    /// Push an adapter directory (a finished run's `output_dir`) to the Hub with its model card; checkpoints stay
    /// local. Needs `HF_TOKEN` (environment or `.env`). Repeating a failed push uploads nothing twice.
    Push {
        /// The adapter directory.
        #[arg(long)]
        adapter: PathBuf,
        /// The model repo: `owner/name`, or `name` in your namespace (`HF_USERNAME`, else the token's owner);
        /// default: the run's `hub_model_id`, else its `save_model_name`, else the directory's name.
        #[arg(long)]
        repo: Option<String>,
        /// Create the repo as private (default: the run's `hub_private_repo`).
        #[arg(long)]
        private: bool,
    },
    /// Merge a PEFT adapter into its base model and write a plain HF checkpoint (`merge_and_unload`).
    Merge {
        /// The adapter directory (`adapter_config.json`, `adapter_model.safetensors`).
        #[arg(long)]
        adapter: PathBuf,
        /// Where to write the merged checkpoint.
        #[arg(long)]
        out: PathBuf,
        /// The base model (a local directory or a Hub repo id); default: the adapter's `base_model_name_or_path`.
        #[arg(long)]
        base: Option<String>,
        /// Then compare the merged model's logits with the base + adapter's on a few prompts and print the largest
        /// difference (loads both models).
        #[arg(long)]
        verify: bool,
    },
    /// Export a fine-tune for serving.
    Export {
        /// The format.
        #[command(subcommand)]
        format: Export,
    },
}

#[derive(Debug, Subcommand)]
enum Export {
    /// Check an adapter against what a serving runtime accepts; prints what to change, fails if anything.
    Check {
        /// The adapter directory.
        #[arg(long)]
        adapter: PathBuf,
        /// The runtime: vllm, llamacpp or ollama.
        #[arg(long)]
        target: String,
        /// The base model; default: the adapter's `base_model_name_or_path`.
        #[arg(long)]
        base: Option<String>,
    },
    /// The adapter merged into its base, as one GGUF file for llama.cpp / Ollama / LM Studio.
    Gguf {
        /// The adapter directory (`adapter_config.json`, `adapter_model.safetensors`).
        #[arg(long)]
        adapter: PathBuf,
        /// The GGUF file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// The matrices' type: f32, f16, bf16, q8_0, q4_0 or q4_k_m, the last two mixed as llama-quantize mixes
        /// them (norms and biases stay f32); an adapter: f32, f16, bf16 or q8_0.
        #[arg(long = "type", default_value = "f16")]
        ty: String,
        /// The base model (a local directory or a Hub repo id); default: the adapter's `base_model_name_or_path`.
        #[arg(long)]
        base: Option<String>,
        /// Write the adapter alone, as a llama.cpp LoRA (`llama-cli -m base.gguf --lora FILE`), not merged.
        #[arg(long)]
        adapter_only: bool,
        /// The model's name in the file (`general.name`); default: the adapter directory's name.
        #[arg(long, conflicts_with = "adapter_only")]
        name: Option<String>,
        /// Also write an Ollama Modelfile here (`ollama create NAME -f PATH`); not with `--adapter-only`.
        #[arg(long, conflicts_with = "adapter_only")]
        modelfile: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    sft::allocator::configure_for_training();
    sft::progress::init_logging("warn");
    let cli = Cli::parse();
    // Progress bars on one process: rank 0 of a data-parallel launch.
    let launch = sft::distributed::launch();
    if launch.rank == 0 {
        sft::progress::enable();
    }
    match run(cli, &launch) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `launch`: this process's place in a data-parallel launch (`sft train` under mpirun / srun).
fn run(cli: Cli, launch: &sft::train::Launch) -> sft::Result<()> {
    match cli.command {
        Command::Train { config, overrides } => train(&config, &overrides, launch),
        Command::Eval { config, overrides, adapter } => {
            let mut config = RunConfig::from_file_with_overrides(&config, &overrides)?;
            // An evaluation is not a run: no TensorBoard files (`with_reporting` is not called either).
            config.training_args.report_to = None;
            let hub = HubSettings::from_env()?;
            let data = sft::pipeline::prepare_data(&config, &hub)?;
            let device = sft::pipeline::device(&config)?;
            let model = match adapter {
                Some(dir) => sft::pipeline::load_adapted(&dir, Some(&config.model_name), &hub, &device)?.2,
                None => sft::pipeline::prepare_model(&config, &hub, &device)?,
            };
            let trainer = sft::pipeline::trainer(&config, &data)?;
            let mut bar = None;
            let metrics = trainer.evaluate_observed(&model, &mut |done, total| {
                bar.get_or_insert_with(|| sft::progress::eval_bar(total)).set_position(done as u64);
            })?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            for (name, value) in metrics {
                println!("{name} {value}");
            }
            Ok(())
        }
        Command::Generate { adapter, prompt, base, max_new_tokens, temperature } => {
            let hub = HubSettings::from_env()?;
            let (base, config, model) =
                sft::pipeline::load_adapted(&adapter, base.as_deref(), &hub, &burn::prelude::Device::flex())?;
            // The base's repo, listed once for the tokenizer and the generation settings.
            let repo = sft::hub::AnyRepo::open(&base, sft::hub::RepoKind::Model, None, &hub)?;
            let listing = sft_repo::Listing::of(&repo)?;
            let tokenizer = sft::tokenize::SftTokenizer::from_listing(&listing, &Default::default())?;
            let (_, stop) = sft::stop::generation_settings(&listing, &config, &tokenizer)?;
            let text = sft::pipeline::generate_text(&model, &tokenizer, &stop, &prompt, max_new_tokens, temperature)?;
            println!("{text}");
            Ok(())
        }
        Command::Inspect { config, overrides, examples } => {
            let config = RunConfig::from_file_with_overrides(&config, &overrides)?;
            let data = sft::pipeline::prepare_data(&config, &HubSettings::from_env()?)?;
            print!("{}", sft::pipeline::inspect(&config, &data, examples)?);
            Ok(())
        }
        Command::Push { adapter, repo, private } => {
            let run_file = adapter.join(sft::train::RUN_CONFIG_FILE);
            let run = std::fs::read(&run_file).ok().and_then(|bytes| {
                RunConfig::from_saved(&bytes, &run_file)
                    .inspect_err(|e| tracing::warn!(file = %run_file.display(), error = %e, "run config ignored"))
                    .ok()
            });
            let mut target = sft::push::PushTarget::new(run.as_ref(), &adapter);
            target.repo_id = repo.or(target.repo_id);
            target.private |= private;
            let (id, info) = sft::push::push_adapter(&adapter, &target, &HubSettings::from_env()?)?;
            println!("pushed      {} → {id} ({})", adapter.display(), info.commit_url);
            Ok(())
        }
        Command::Merge { adapter, out, base, verify } => {
            let hub = HubSettings::from_env()?;
            sft::export::merge_adapter(&adapter, base.as_deref(), &out, &hub)?;
            println!("merged      {} → {}", adapter.display(), out.display());
            if verify {
                let worst = sft::export::verify_merge(&adapter, base.as_deref(), &out, &hub)?;
                println!(
                    "verified    max |logit difference| {worst:.3e} over {} prompts (merged vs base + adapter)",
                    sft::export::VERIFY_PROMPTS.len()
                );
            }
            Ok(())
        }
        Command::Export { format: Export::Check { adapter, target, base } } => {
            let findings = sft::export::check_adapter(&adapter, base.as_deref(), &target, &HubSettings::from_env()?)?;
            for finding in &findings {
                println!("warning [{}]: {}", finding.rule, finding.message);
            }
            if findings.is_empty() {
                println!("ok          {} can be served by {target}", adapter.display());
                return Ok(());
            }
            Err(sft::export_stage::ExportError::Unsupported {
                what: format!("{} for {target}", adapter.display()),
                message: format!("{} rule(s) broken (above)", findings.len()),
            }
            .into())
        }
        Command::Export { format: Export::Gguf { adapter, out, ty, base, adapter_only, name, modelfile } } => {
            let hub = HubSettings::from_env()?;
            if adapter_only {
                sft::export::export_lora_gguf(&adapter, base.as_deref(), &out, &ty, &hub)?;
            } else {
                sft::export::export_gguf(
                    &adapter,
                    base.as_deref(),
                    &out,
                    &ty,
                    name.as_deref(),
                    modelfile.as_deref(),
                    &hub,
                )?;
            }
            println!("exported    {} → {} ({})", adapter.display(), out.display(), ty.to_uppercase());
            Ok(())
        }
    }
}

fn train(path: &std::path::Path, overrides: &[String], launch: &sft::train::Launch) -> sft::Result<()> {
    let config = RunConfig::from_file_with_overrides(path, overrides)?;
    let hub = HubSettings::from_env()?;
    // Data parallel under mpirun / srun: every rank runs this; rank 0 prints, writes and pushes.
    let collective = sft::distributed::join_launch(launch)?;
    let main = collective.is_main();
    let say = |text: String| {
        if main {
            println!("{text}");
        }
    };
    let started = std::time::Instant::now();
    // Each rank on a machine takes its own GPU (device_index + local rank), unless SFT_SHARE_GPU=1 puts them all on
    // device_index (several ranks on one GPU: for checks, not for speed).
    let share = std::env::var("SFT_SHARE_GPU").is_ok_and(|v| v == "1");
    let device = if launch.world_size > 1 && !share {
        sft::pipeline::device_at(&config, config.device_index + launch.local_rank)?
    } else {
        sft::pipeline::device(&config)?
    };
    let data = sft::pipeline::prepare_data(&config, &hub)?;
    say(format!(
        "data        train {} | validation {} | test {} examples",
        data.train.examples.len(),
        data.validation.examples.len(),
        data.test.examples.len()
    ));
    let world = collective.world_size();
    let mut trainer = sft::pipeline::trainer(&config, &data)?.with_collective(collective);
    if main {
        trainer = trainer.with_callback(sft::progress::TrainingProgress::new());
    }
    // A checkpoint to resume from is checked before the model is downloaded or loaded; TensorBoard's file is
    // created once every check has passed.
    trainer.check_resume()?;
    // Rank 0 downloads the model first; the others then find it in the cache.
    if !main {
        trainer.collective().barrier()?;
    }
    let model = sft::pipeline::prepare_model(&config, &hub, &device)?;
    if main {
        trainer.collective().barrier()?;
    }
    let mut trainer = if main { sft::pipeline::with_reporting(trainer, &config)? } else { trainer };
    trainer.stop_on_sigint()?;
    say(format!(
        "training    {} optimizer steps into {}{}",
        trainer.total_steps(),
        config.output_dir().display(),
        if world > 1 { format!(" on {world} processes") } else { String::new() }
    ));
    let out = trainer.train(model)?;
    if !main {
        return Ok(());
    }
    let last = |key: &str| out.state.log_history.iter().rev().find_map(|e| e.get(key).copied());
    let (last_loss, last_eval) = (last(sft::train::keys::LOSS), last(sft::train::keys::EVAL_LOSS));
    println!(
        "{} after {} steps in {:.1} s: last loss {}, last eval_loss {}, best {}",
        out.stop,
        out.state.global_step,
        started.elapsed().as_secs_f64(),
        last_loss.map_or("-".into(), |v| format!("{v:.4}")),
        last_eval.map_or("-".into(), |v| format!("{v:.4}")),
        out.state.best_metric.map_or("-".into(), |v| format!("{v:.4}")),
    );
    if out.stop == sft::train::StopReason::Interrupted {
        // No final adapter: the run continues from its checkpoint.
        let checkpoint = out.last_checkpoint.as_deref().map_or("-".into(), |p| p.display().to_string());
        println!("checkpoint  {checkpoint} (continue with --set training_args.resume_from_checkpoint=true)");
        return Ok(());
    }
    println!("adapter     {}", config.output_dir().display());
    if let Some((id, info)) = sft::pipeline::finish_run(&config, &hub)? {
        println!("pushed      {id} ({})", info.commit_url);
    }
    Ok(())
}
