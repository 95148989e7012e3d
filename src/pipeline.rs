//! A run, stage by stage: data → tokens → base model with adapters → trainer. The example and the CLI are thin
//! layers over these functions.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_collate::{BatchSource, Rows, Sampling};
use sft_data::DatasetSplits;
use sft_export::check::Target;
use sft_hub::HubSettings;
use sft_model::LlamaForCausalLM;
use sft_peft::LoraLinear;
use sft_tokenize::{EncodedSplit, Encoder, SftTokenizer};
use sft_train::{EarlyStopping, Trainer};

use crate::config::{DeviceKind, RunConfig};
use crate::error::{Result, SftError};

/// The data of a run: the tokenizer, the formatted splits and their tokenized forms.
#[derive(Debug)]
pub struct RunData {
    /// The model's tokenizer with the config's special-token overrides.
    pub tokenizer: SftTokenizer,
    /// The formatted splits.
    pub splits: DatasetSplits,
    /// The tokenized train split.
    pub train: EncodedSplit,
    /// The tokenized validation split.
    pub validation: EncodedSplit,
    /// The tokenized test split.
    pub test: EncodedSplit,
}

/// Loads, splits, formats and tokenizes the data set of `config` with the model's tokenizer. The model's
/// `config.json` and tokenizer come from one listing of its repo, and the architecture and the LoRA targets
/// ([`check_targets`]) are checked before anything is tokenized.
pub fn prepare_data(config: &RunConfig, hub: &HubSettings) -> Result<RunData> {
    let splits = crate::load_dataset(&config.dataset_config, hub)?;
    let (model_config, tokenizer) =
        crate::model::config_and_tokenizer(&config.model_name, hub, &config.special_token_overrides())?;
    check_targets(config, &model_config)?;
    let options = config.encode_options();
    let encoder = Encoder::new(&tokenizer, &options);
    let total = splits.train.len() + splits.validation.len() + splits.test.len();
    let bar =
        crate::progress::bar(total as u64, "{spinner} tokenize [{elapsed_precise}] {bar:30} {pos}/{len} examples");
    let tick = || bar.inc(1);
    let train = encoder.encode_all_observed(&splits.train, &tick)?;
    let validation = encoder.encode_all_observed(&splits.validation, &tick)?;
    let test = encoder.encode_all_observed(&splits.test, &tick)?;
    bar.finish_and_clear();
    if model_config.family == sft_model::ModelFamily::Gemma3 {
        for (name, encoded, examples) in [
            ("train", &train, &splits.train),
            ("validation", &validation, &splits.validation),
            ("test", &test, &splits.test),
        ] {
            crate::tokenizer::check_bos(config, &tokenizer, name, encoded, examples)?;
        }
    }
    Ok(RunData { tokenizer, splits, train, validation, test })
}

/// The training device of `config` with autodiff: `device` chooses the backend (`auto`: CUDA if compiled in, else
/// WGPU if compiled in, else the CPU backend flex), `device_index` the GPU (for wgpu, 0 lets wgpu pick its
/// preferred adapter, overridable with `CUBECL_WGPU_DEFAULT_DEVICE`; n > 0 is the n-th discrete GPU), and
/// `training_args.gradient_checkpointing` turns on Burn's recomputation of memory-bound activations in the
/// backward pass. A backend the binary was built without is an error naming the cargo feature to enable.
pub fn device(config: &RunConfig) -> Result<Device> {
    device_at(config, config.device_index)
}

/// [`device`] with GPU `index` instead of `device_index` (data parallel: `device_index` + the launcher's local rank,
/// so each rank on a machine takes its own GPU).
pub fn device_at(config: &RunConfig, index: usize) -> Result<Device> {
    let missing = |feature: &str| {
        config.error(
            "device",
            format!(
                "\"{feature}\" needs a binary built with the `{feature}` cargo feature (cargo build --release \
                 --features {feature}); this one has {}",
                compiled_backends().join(", ")
            ),
        )
    };
    let base = match config.device {
        DeviceKind::Cpu => Device::flex(),
        DeviceKind::Wgpu => wgpu_device(index).ok_or_else(|| missing("wgpu"))?,
        DeviceKind::Cuda => cuda_device(index).ok_or_else(|| missing("cuda"))?,
        DeviceKind::Auto => cuda_device(index).or_else(|| wgpu_device(index)).unwrap_or_else(Device::flex),
    };
    let device = base.autodiff();
    tracing::info!(device = ?config.device, index, checkpointing = config.training_args.gradient_checkpointing, "device");
    Ok(if config.training_args.gradient_checkpointing { device.gradient_checkpointing() } else { device })
}

/// The backends this binary was built with.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut backends = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        backends.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        backends.push("cuda");
    }
    backends
}

#[cfg(feature = "wgpu")]
fn wgpu_device(index: usize) -> Option<Device> {
    use burn::tensor::DeviceKind as Kind;
    Some(Device::wgpu(if index == 0 { Kind::DefaultDevice } else { Kind::DiscreteGpu(index) }))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_index: usize) -> Option<Device> {
    None
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Option<Device> {
    Some(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Option<Device> {
    None
}

/// The dtype of the frozen base's weights and activations: bf16 with `training_args.bf16`, fp16 with
/// `training_args.fp16` (trained with dynamic loss scaling), else f32. The LoRA factors and the optimizer's moments
/// stay f32 either way, as PEFT keeps adapters under `bf16: true` / `fp16: true`; `modules_to_save` copies take the
/// base's dtype and train through f32 master copies kept by `AdamW`; the attention softmax and the loss are computed
/// in f32.
pub fn base_dtype(config: &RunConfig) -> FloatDType {
    let args = &config.training_args;
    if args.bf16 {
        FloatDType::BF16
    } else if args.fp16 {
        FloatDType::F16
    } else {
        FloatDType::F32
    }
}

/// The base model of `config` (NF4 with `use_qlora`; bf16 or fp16 with `training_args.bf16` / `fp16`, see
/// [`base_dtype`]) on `device`, with fresh f32 LoRA adapters (seeded by `training_args.seed`).
pub fn prepare_model(config: &RunConfig, hub: &HubSettings, device: &Device) -> Result<LlamaForCausalLM<LoraLinear>> {
    let quantization = config.quantization();
    let (_, base) = crate::model::load_model_checked(
        &config.model_name,
        hub,
        device,
        base_dtype(config),
        quantization.as_ref(),
        |model| check_targets(config, model),
    )?;
    Ok(sft_peft::inject(base, &config.lora_config, config.training_args.seed)?)
}

/// The LoRA targets of `config` (`target_modules`, `layers_to_transform`) against the projections a model of
/// `model`'s shape has, before its weights are read or downloaded: a regex that matches nothing or a layer the
/// model lacks is an error naming the config file and key, with the model's module names.
pub fn check_targets(config: &RunConfig, model: &sft_model::LlamaConfig) -> Result<()> {
    let names = sft_model::projection_names(model);
    let selected = sft_peft::select_targets(&config.lora_config, &names).map_err(|e| {
        let key = match &e {
            sft_peft::PeftError::InvalidConfig { key, .. } => format!("lora_config.{key}"),
            _ => "lora_config.target_modules".to_owned(),
        };
        let message = match e {
            sft_peft::PeftError::InvalidConfig { message, .. } => message,
            other => other.to_string(),
        };
        config.error(&key, format!("{message} (model {})", config.model_name))
    })?;
    if !selected.contains(&true) {
        return Err(config.error(
            "lora_config.layers_to_transform",
            format!("selects no projection that target_modules names (model {})", config.model_name),
        ));
    }
    Ok(())
}

/// The trainer of `config` over `data`: batches as `training_args` says (shuffled or length-grouped, packed with
/// `packing`), evaluation on the validation split, early stopping when configured, the run config saved in every
/// checkpoint. It writes nothing until it trains; [`with_reporting`] adds the TensorBoard files.
pub fn trainer<'a>(config: &RunConfig, data: &'a RunData) -> Result<Trainer<'a>> {
    let args = &config.training_args;
    let batching = &config.collate;
    let collator = batching.collator(data.tokenizer.special().pad.id);
    let train = BatchSource::new(
        &data.train.examples,
        collator,
        args.per_device_train_batch_size,
        batching.sampling(args.seed),
        batching.rows(config.dataset_config.max_length),
    )?;
    let eval = if data.validation.examples.is_empty() {
        None
    } else {
        let size = args.per_device_eval_batch_size;
        Some(BatchSource::new(&data.validation.examples, collator, size, Sampling::Sequential, Rows::OnePerExample)?)
    };
    let run_config = config.to_json();
    let mut trainer = Trainer::new(args.clone(), config.lora_config.clone(), &config.model_name, train, eval)?
        .with_run_config(run_config);
    if let Some(early) = config.early_stopping.clone() {
        trainer = trainer.with_callback(EarlyStopping::new(early, args.best_metric(), args.greater_is_better()));
    }
    Ok(trainer)
}

/// `trainer` with the integrations of `report_to`: TensorBoard event files with `"tensorboard"`
/// ([`tensorboard_dir`]), whose file is created here; so call it once every check of the run has passed.
pub fn with_reporting<'a>(trainer: Trainer<'a>, config: &RunConfig) -> Result<Trainer<'a>> {
    if config.training_args.reports_to("tensorboard") {
        return Ok(trainer.with_callback(sft_train::TensorBoardCallback::new(&tensorboard_dir(config))?));
    }
    Ok(trainer)
}

/// Where TensorBoard event files go with `report_to: "tensorboard"`: `<output_dir>/runs` (one
/// `events.out.tfevents.*` file per run; `tensorboard --logdir <output_dir>/runs`).
pub fn tensorboard_dir(config: &RunConfig) -> std::path::PathBuf {
    config.output_dir().join("runs")
}

/// The Hub repo name a run pushes to when `hub_model_id` has no namespace or is unset: `save_model_name`, else the
/// last component of `output_dir`.
pub fn default_repo_name(config: &RunConfig) -> String {
    config.save_model_name.clone().unwrap_or_else(|| {
        config.output_dir().file_name().map_or_else(|| "sft-adapter".to_owned(), |n| n.to_string_lossy().into_owned())
    })
}

/// What follows a finished run in `output_dir`: the base's stop ids in `generation_config.json`, the deployment
/// checks of [`sft_export::check`] for vLLM, llama.cpp and Ollama (logged as warnings, with what to change), the
/// model card, then, with `push_to_hub`, the push of the adapter
/// (to `hub_model_id`, default `<user>/<save_model_name>`; private with `hub_private_repo`: see
/// [`PushTarget::new`](crate::push::PushTarget::new)). Returns the repo id and commit when pushed. A failed push
/// leaves the adapter in place and returns [`SftError::Push`](crate::SftError::Push), whose message says to retry
/// with `sft push --adapter <output_dir>`.
pub fn finish_run(config: &RunConfig, hub: &HubSettings) -> Result<Option<(String, sft_hub::CommitInfo)>> {
    let dir = config.output_dir();
    let repo = sft_hub::AnyRepo::open(&config.model_name, sft_hub::RepoKind::Model, None, hub)?;
    let listing = sft_repo::Listing::of(&repo)?;
    let tokenizer = SftTokenizer::from_listing(&listing, &config.special_token_overrides())?;
    let model_config = sft_model::LlamaConfig::from_repo(&listing)?;
    write_generation_config(&listing, &model_config, &tokenizer, &dir)?;
    // What the serving runtimes would refuse, said now rather than at serving time (warnings; the run stands).
    let adapter = sft_export::check::AdapterFacts::read(&dir)?;
    for target in [Target::Vllm, Target::LlamaCpp, Target::Ollama] {
        for finding in adapter.check(target, model_config.family.architecture()) {
            tracing::warn!(target: "sft::deploy", runtime = ?target, rule = finding.rule, "{}", finding.message);
        }
    }
    let target = crate::push::PushTarget::new(Some(config), &dir);
    crate::push::write_model_card(&dir, target.name())?;
    if !config.hub.push_to_hub {
        return Ok(None);
    }
    match crate::push::push_adapter(&dir, &target, hub) {
        Ok(pushed) => Ok(Some(pushed)),
        Err(e) => Err(SftError::Push { dir, source: Box::new(e) }),
    }
}

/// Writes `dir/generation_config.json` (atomically) for a model built on the base in `listing` (with its `config`
/// and `tokenizer`): the base's generation settings with every stop id ([`crate::stop`]), so a runtime given the
/// adapter or the merged model stops where the base does. Returns the stop ids.
pub fn write_generation_config<R: sft_repo::Repo + ?Sized>(
    listing: &sft_repo::Listing<'_, R>,
    config: &sft_model::LlamaConfig,
    tokenizer: &SftTokenizer,
    dir: &std::path::Path,
) -> Result<Vec<u32>> {
    let (settings, stop) = crate::stop::generation_settings(listing, config, tokenizer)?;
    let json = crate::stop::generation_config_json(settings, &stop, tokenizer);
    let path = dir.join(crate::stop::GENERATION_CONFIG_FILE);
    let bytes = serde_json::to_vec_pretty(&json).map_err(|source| SftError::Json { path: path.clone(), source })?;
    sft_model::write_atomic(&path, &bytes)?;
    Ok(stop)
}

/// The base model of `adapter`: `base` when given, else the adapter's `base_model_name_or_path` (an error naming
/// that key when it has none).
pub fn adapter_base(adapter: &std::path::Path, base: Option<&str>) -> Result<String> {
    let (_, named) = sft_peft::read_adapter_config(adapter)?;
    base.map(str::to_owned).or(named).ok_or_else(|| SftError::Config {
        path: adapter.join(sft_peft::ADAPTER_CONFIG),
        key: "base_model_name_or_path".into(),
        message: "is missing; name the base model explicitly".into(),
    })
}

/// PEFT's `PeftModel.from_pretrained`: the base model (`base`, else the adapter's `base_model_name_or_path`) loaded
/// dense in f32 on `device`, with the adapter in `adapter` applied. Returns the base's name and config too.
pub fn load_adapted(
    adapter: &std::path::Path,
    base: Option<&str>,
    hub: &HubSettings,
    device: &Device,
) -> Result<(String, sft_model::LlamaConfig, LlamaForCausalLM<LoraLinear>)> {
    let base = adapter_base(adapter, base)?;
    let (config, model) = crate::load_model(&base, hub, device, FloatDType::F32, None)?;
    let (model, _) = sft_peft::load_adapter(model, adapter)?;
    Ok((base, config, model))
}

/// Greedy (or sampled, with `temperature` > 0) continuation of `prompt` (raw text; BOS added as the tokenizer
/// does), up to `max_new_tokens`, stopping at any of `stop` (the model's stop ids:
/// [`generation_settings`](crate::stop::generation_settings)); the stop token itself is not returned.
pub fn generate_text(
    model: &LlamaForCausalLM<LoraLinear>,
    tokenizer: &SftTokenizer,
    stop: &[u32],
    prompt: &str,
    max_new_tokens: usize,
    temperature: f64,
) -> Result<String> {
    let ids = tokenizer.ids(prompt, true)?;
    let config = sft_model::GenerationConfig {
        max_new_tokens,
        temperature,
        eos_token_ids: stop.to_vec(),
        pad_token_id: tokenizer.special().pad.id,
        ..Default::default()
    };
    let model = model.clone().valid();
    let device = model.model.embed_tokens.weight.device();
    let generated = sft_model::generate(&model, &[ids], &config, &device)?;
    let mut ids = generated.into_iter().next().unwrap_or_default();
    if ids.last().is_some_and(|last| stop.contains(last)) {
        ids.pop();
    }
    Ok(tokenizer.decode(&ids)?)
}

/// What `sft inspect` shows: the data set and its splits (rows, dropped rows by reason, truncations, token length
/// percentiles, the supervised token fraction), then the first `examples` training examples with the supervised
/// text marked `⟦ ⟧`.
pub fn inspect(config: &RunConfig, data: &RunData, examples: usize) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let splits = &data.splits;
    let options = config.encode_options();
    let _ = writeln!(out, "data set    {} ({:?} records)", config.dataset_config.dataset_name, splits.record_format);
    let _ = writeln!(
        out,
        "rows        train {} | validation {} | test {}   (train pool {}, seed {})",
        splits.train.len(),
        splits.validation.len(),
        splits.test.len(),
        splits.train_pool_rows,
        config.dataset_config.seed
    );
    let _ = writeln!(
        out,
        "tokenizer   {} ({} ids), masking {:?}, max_length {}",
        config.model_name,
        data.tokenizer.vocab_size(),
        options.masking,
        options.max_length
    );
    for (name, split) in [("train", &data.train), ("validation", &data.validation), ("test", &data.test)] {
        let _ = writeln!(out, "{}", split_summary(name, split));
    }
    for (i, example) in data.train.examples.iter().take(examples).enumerate() {
        let audit = sft_tokenize::MaskAudit::new(&data.tokenizer, example)?;
        let _ = writeln!(
            out,
            "\n── train example {i} ({}), supervised text in ⟦ ⟧ ──\n{audit}",
            splits.train[data.train.rows[i]].location
        );
    }
    Ok(out)
}

/// One line per split: kept / dropped (by reason) / truncated rows, token length percentiles, supervised fraction.
pub fn split_summary(name: &str, encoded: &EncodedSplit) -> String {
    let r = &encoded.report;
    let mut lengths: Vec<usize> = encoded.examples.iter().map(sft_tokenize::TokenizedExample::len).collect();
    lengths.sort_unstable();
    let pct = |p: f64| lengths.get(((lengths.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0);
    format!(
        "{name:<11} {} kept, {} dropped {:?}, {} truncated | tokens p50 {} p90 {} p99 {} max {} | supervised {:.1}%",
        r.kept,
        r.num_dropped(),
        r.dropped,
        r.truncated,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        100.0 * r.supervised_tokens as f64 / r.tokens.max(1) as f64
    )
}
