//! The run config: one JSON file that drives the pipeline (the layout of `configs/`).
//!
//! Each stage owns the struct of its section — `dataset_config` is [`sft_data::DataConfig`]; `lora_config` and
//! `quantization_config` are [`sft_peft::LoraConfig`] and [`sft_peft::QuantizationConfig`]; `training_args` and
//! `early_stopping` are [`sft_train::TrainingArguments`] and [`sft_train::EarlyStoppingConfig`] — and [`RunConfig`]
//! composes them. Loading is strict: an unknown key, a wrong type or an
//! out-of-range value is an [`SftError::Config`] naming the file and the key path
//! (`configs/x.json: training_args.learning_rate: expected a number > 0`).

mod json;
mod trl;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
pub use sft_collate::CollateConfig;
use sft_data::{DataConfig, DataError};
pub use sft_peft::{
    ComputeDtype, InitLoraWeights, LayerSelection, LoraBias, LoraConfig, PeftError, QuantType, QuantizationConfig,
    TargetModules,
};
use sft_tokenize::{EncodeOptions, Masking, SpecialTokenOverrides};
pub use sft_tokenize::{TokenizeConfig, TruncationMode};
pub use sft_train::{
    EVAL_METRICS, EarlyStoppingConfig, IntervalStrategy, ReportTo, ResumeFrom, SchedulerType, TrainError,
    TrainingArguments,
};

use crate::error::{Result, SftError};
pub use crate::push::PushConfig;

/// A whole run: model, data, adapter, quantization, training and early stopping.
///
/// The file's `training_args` is TRL's `SFTConfig` shape; its tokenization, batching and Hub keys are held in
/// [`tokenize`](Self::tokenize), [`collate`](Self::collate) and [`hub`](Self::hub), the sections of the crates that
/// read them. Read a file with [`RunConfig::from_file`] / [`from_json`](Self::from_json) (or a saved one with
/// [`from_saved`](Self::from_saved)) and write one with [`to_json`](Self::to_json): those map the shape; serde's
/// own derive sees the internal sections.
///
/// The seed tutorial's `config.json` parses unchanged; keys it implies but omits have defaults
/// (`dataset_config.sample_size` / `validation_size` / `test_size` / `seed`, `device`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Base model: a Hub model repo id or a local directory with `config.json` + safetensors.
    pub model_name: String,
    /// Name of the trained adapter (the Hub repo name when pushing); defaults to the output directory's name.
    #[serde(default)]
    pub save_model_name: Option<String>,
    /// `true` (default): the loss covers only completion / assistant tokens. `false`: every token of the example,
    /// as the seed tutorial's config sets it.
    #[serde(default = "yes")]
    pub assistant_only_masking: bool,
    /// Quantize the frozen base to 4 bits (QLoRA); `quantization_config` says how.
    #[serde(default)]
    pub use_qlora: bool,
    /// The data: where it is, its columns, template, sampling and splits.
    pub dataset_config: DataConfig,
    /// bitsandbytes-style quantization settings (used with `use_qlora`).
    #[serde(default)]
    pub quantization_config: Option<QuantizationConfig>,
    /// LoRA adapter settings.
    #[serde(default)]
    pub lora_config: LoraConfig,
    /// Trainer settings: the trainer's keys of `training_args`.
    #[serde(default)]
    pub training_args: TrainingArguments,
    /// The tokenization keys of `training_args` (`truncation_mode`, `eos_token`, `pad_token`); see
    /// [`RunConfig::to_json`] for the file's shape.
    #[serde(default, rename = "training_args/tokenize")]
    pub tokenize: TokenizeConfig,
    /// The batching keys of `training_args` (`packing`, `pad_to_multiple_of`, `group_by_length`).
    #[serde(default, rename = "training_args/collate")]
    pub collate: CollateConfig,
    /// The Hub keys of `training_args` (`push_to_hub`, `hub_model_id`, `hub_private_repo`).
    #[serde(default, rename = "training_args/hub")]
    pub hub: PushConfig,
    /// Early stopping on the evaluation metric; off when absent.
    #[serde(default)]
    pub early_stopping: Option<EarlyStoppingConfig>,
    /// Compute device: `cpu`, `wgpu`, `cuda` or `auto` (the first GPU backend compiled in, else CPU).
    #[serde(default)]
    pub device: DeviceKind,
    /// Index of the GPU when several are present.
    #[serde(default)]
    pub device_index: usize,
    /// The file this config was read from (not a key: errors found after loading name it).
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

/// `device`: which Burn backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// CUDA if compiled in, else WGPU if compiled in, else CPU.
    #[default]
    Auto,
    /// The CPU backend (Burn flex).
    Cpu,
    /// WGPU (Vulkan, Metal, DX12); cargo feature `wgpu`.
    Wgpu,
    /// CUDA; cargo feature `cuda`.
    Cuda,
}

fn yes() -> bool {
    true
}

/// A key path and what is wrong with its value; becomes [`SftError::Config`] once the file is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Full key path, such as `training_args.learning_rate`.
    pub key: String,
    /// What was expected.
    pub message: String,
}

/// Maps an `sft-train` validation error (its key is already the full path).
fn train_invalid(e: TrainError) -> Invalid {
    match e {
        TrainError::InvalidConfig { key, message } => Invalid { key, message },
        other => Invalid { key: "training_args".into(), message: other.to_string() },
    }
}

/// `Ok` if `ok`, else an [`Invalid`] for `section.key`.
pub(crate) fn check(ok: bool, section: &str, key: &str, message: &str) -> Result<(), Invalid> {
    if ok { Ok(()) } else { Err(Invalid { key: format!("{section}.{key}"), message: message.to_owned() }) }
}

/// Maps an `sft-peft` validation error to the key path of `section`.
fn peft_invalid(section: &'static str) -> impl Fn(PeftError) -> Invalid {
    move |e| match e {
        PeftError::InvalidConfig { key, message } => Invalid { key: format!("{section}.{key}"), message },
        other => Invalid { key: section.into(), message: other.to_string() },
    }
}

/// `text` without a byte-order mark, or an error naming the first key given twice in one object and both its lines
/// (serde would keep the last value without a word).
fn strict_text<'a>(text: &'a str, path: &Path) -> Result<&'a str> {
    let text = json::strip_bom(text);
    match json::duplicate_key(text) {
        None => Ok(text),
        Some(json::Duplicate { path: key, lines: (first, second) }) => Err(SftError::Config {
            path: path.into(),
            key,
            message: format!("given twice (lines {first} and {second}); keep one"),
        }),
    }
}

/// serde's error with the key path as the file spells it (`(top level)` for the root) and "did you mean" for a
/// misspelled key or value (a key of `training_args` is suggested among every section's keys, which
/// [`trl::public_message`] lists). With the file's `text` (the value was not edited since), the message ends with
/// the line of the key (serde read the value, which has no positions).
fn serde_error(e: serde_path_to_error::Error<serde_json::Error>, path: &Path, text: Option<&str>) -> SftError {
    let key = trl::public_path(&e.path().to_string());
    let key = if key == "." { "(top level)".to_owned() } else { key };
    let mut message = trl::public_message(&key, e.into_inner().to_string());
    if key != "(top level)"
        && let Some(line) = text.and_then(|text| json::line_of(text, &key))
    {
        message.push_str(&format!(" at line {line}"));
    }
    SftError::Config { path: path.into(), key, message: json::with_suggestion(message) }
}

/// `value` (the file's shape) as a [`RunConfig`], not yet validated: TRL's `training_args` split into the
/// sections, then read by serde with key paths. `text` is the file `value` was parsed from, unedited, if any.
fn from_file_shape(mut value: serde_json::Value, path: &Path, text: Option<&str>) -> Result<RunConfig> {
    trl::split(&mut value).map_err(|trl::InternalKey(key)| SftError::Config {
        path: path.into(),
        key: "(top level)".into(),
        message: format!("unknown field `{key}`"),
    })?;
    serde_path_to_error::deserialize(value).map_err(|e| serde_error(e, path, text))
}

impl RunConfig {
    /// Reads, parses and validates the config file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SftError::Io { path: path.into(), source })?;
        Self::from_json(&text, path)
    }

    /// Like [`from_file`](Self::from_file), with `overrides` (`key.path=value`, the CLI's `--set`) applied to the
    /// file's JSON first: `value` is parsed as JSON (`2e-3`, `true`, `["q_proj"]`, `null`) or else taken as a
    /// string; missing objects on the path are created. The result is validated as a whole, so an override of an
    /// unknown key or with a bad value is an error naming the key.
    pub fn from_file_with_overrides(path: impl AsRef<Path>, overrides: &[String]) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SftError::Io { path: path.into(), source })?;
        let error = |key: &str, message: String| SftError::Config { path: path.into(), key: key.into(), message };
        let text = strict_text(&text, path)?;
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| SftError::Json { path: path.into(), source })?;
        for item in overrides {
            let (key, raw) =
                item.split_once('=').ok_or_else(|| error(item, "expected `key.path=value` after --set".into()))?;
            let new: serde_json::Value =
                serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
            let mut at = &mut value;
            let parts: Vec<&str> = key.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                let object = at
                    .as_object_mut()
                    .ok_or_else(|| error(key, format!("`{}` is not an object", parts[..i].join("."))))?;
                if i + 1 == parts.len() {
                    object.insert((*part).to_owned(), new.clone());
                    break;
                }
                at = object.entry((*part).to_owned()).or_insert_with(|| serde_json::json!({}));
            }
        }
        // After overrides the file's lines no longer describe every value.
        let config = from_file_shape(value, path, overrides.is_empty().then_some(text))?;
        config.validate().map_err(|Invalid { key, message }| SftError::Config { path: path.into(), key, message })?;
        Ok(Self { origin: Some(path.into()), ..config })
    }

    /// Parses and validates `text`; `origin` names the file in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        let text = strict_text(text, origin)?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| SftError::Json { path: origin.into(), source })?;
        let config = from_file_shape(value, origin, Some(text))?;
        config.validate().map_err(|Invalid { key, message }| SftError::Config { path: origin.into(), key, message })?;
        Ok(Self { origin: Some(origin.into()), ..config })
    }

    /// A config saved by a run (`run_config.json` of an adapter directory), in the file's shape, read without
    /// validation (it was validated when the run started); `origin` names it in errors.
    pub fn from_saved(bytes: &[u8], origin: &Path) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|source| SftError::Json { path: origin.into(), source })?;
        Ok(Self { origin: Some(origin.into()), ..from_file_shape(value, origin, None)? })
    }

    /// The config in the file's shape (TRL's flat `training_args`), as saved in checkpoints and shown in the model
    /// card; [`RunConfig::from_json`] reads it back.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| unreachable!("a RunConfig is plain data"));
        trl::join(&mut value);
        value
    }

    /// Checks every section and the rules that span sections.
    pub fn validate(&self) -> Result<(), Invalid> {
        check(!self.model_name.trim().is_empty(), "model_name", "", "expected a Hub model id or a local directory")
            .map_err(|e| Invalid { key: "model_name".into(), ..e })?;
        self.dataset_config.validate().map_err(|e| match e {
            DataError::InvalidConfig { key, message } => Invalid { key, message },
            other => Invalid { key: "dataset_config".into(), message: other.to_string() },
        })?;
        self.lora_config.validate().map_err(peft_invalid("lora_config"))?;
        self.check_target_modules()?;
        self.training_args.validate().map_err(train_invalid)?;
        self.tokenize.validate().map_err(|e| match e {
            sft_tokenize::TokenizeError::InvalidConfig { key, message } => {
                Invalid { key: format!("training_args.{key}"), message }
            }
            other => Invalid { key: "training_args".into(), message: other.to_string() },
        })?;
        self.collate.validate().map_err(|e| match e {
            sft_collate::CollateError::Invalid { key, message } => {
                Invalid { key: format!("training_args.{key}"), message }
            }
            other => Invalid { key: "training_args".into(), message: other.to_string() },
        })?;
        self.check_metric_for_best_model()?;
        if let Some(q) = &self.quantization_config {
            q.validate().map_err(peft_invalid("quantization_config"))?;
            check(
                self.use_qlora || !q.load_in_4bit,
                "quantization_config",
                "load_in_4bit",
                "is true but use_qlora is false; set both (QLoRA) or neither",
            )?;
            check(
                !self.use_qlora || q.load_in_4bit,
                "quantization_config",
                "load_in_4bit",
                "must be true when use_qlora is true",
            )?;
        }
        check(
            self.assistant_only_masking || self.dataset_config.response_template.is_none(),
            "dataset_config",
            "response_template",
            "masks the prompt, but assistant_only_masking is false (train on everything); set one or the other",
        )?;
        if let Some(es) = &self.early_stopping {
            es.validate().map_err(train_invalid)?;
            let args = &self.training_args;
            check(
                args.eval_strategy != IntervalStrategy::No,
                "early_stopping",
                "early_stopping_patience",
                "early stopping needs training_args.eval_strategy \"steps\" or \"epoch\"",
            )?;
            check(
                args.load_best_model_at_end,
                "early_stopping",
                "early_stopping_patience",
                "early stopping needs training_args.load_best_model_at_end: true (as transformers requires)",
            )?;
        }
        Ok(())
    }

    /// Every entry of a `lora_config.target_modules` list names a projection that a supported model has, whatever
    /// its number of layers (a regex, or `"all-linear"`, is matched against the model's names once it is loaded).
    fn check_target_modules(&self) -> Result<(), Invalid> {
        let Some(TargetModules::List(entries)) = &self.lora_config.target_modules else { return Ok(()) };
        for entry in entries {
            let last = entry.rsplit('.').next().unwrap_or(entry);
            let message = if sft_peft::NOT_ADAPTABLE.contains(&last) {
                format!(
                    "`{entry}` is not a projection: LoRA on embeddings or the output head is not supported; list it \
                     in lora_config.modules_to_save to train it in full"
                )
            } else if !sft_peft::matches_projection(entry) {
                let names = sft_model::PROJECTIONS.map(|p| p.rsplit('.').next().unwrap_or(p));
                let hint = json::closest(last, names).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                format!(
                    "`{entry}` matches no projection of a supported model ({}, or one of them with its path, such \
                     as `self_attn.q_proj` or `model.layers.0.self_attn.q_proj`){hint}",
                    names.join(", ")
                )
            } else {
                continue;
            };
            return Err(Invalid { key: "lora_config.target_modules".into(), message });
        }
        Ok(())
    }

    /// `training_args.metric_for_best_model` names a metric that evaluation produces (with or without `eval_`).
    fn check_metric_for_best_model(&self) -> Result<(), Invalid> {
        let Some(given) = &self.training_args.metric_for_best_model else { return Ok(()) };
        let metric = self.training_args.best_metric();
        if EVAL_METRICS.contains(&metric.as_str()) {
            return Ok(());
        }
        let hint = json::closest(&metric, EVAL_METRICS).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
        Err(Invalid {
            key: "training_args.metric_for_best_model".into(),
            message: format!(
                "`{given}` is not a metric that evaluation produces ({}; the `eval_` prefix may be left out){hint}",
                EVAL_METRICS.join(", ")
            ),
        })
    }

    /// The quantization in effect: `quantization_config` when `use_qlora`, else none. `use_qlora` without a
    /// `quantization_config` means 4-bit NF4 with the defaults of [`QuantizationConfig`].
    pub fn quantization(&self) -> Option<QuantizationConfig> {
        if !self.use_qlora {
            return None;
        }
        Some(self.quantization_config.clone().unwrap_or(QuantizationConfig {
            load_in_4bit: true,
            load_in_8bit: false,
            bnb_4bit_quant_type: QuantType::Nf4,
            bnb_4bit_use_double_quant: false,
            bnb_4bit_compute_dtype: ComputeDtype::Float32,
        }))
    }

    /// Tokenization settings: `dataset_config.max_length`, `training_args.truncation_mode`, and the masking mode
    /// (`assistant_only_masking: false` → every token; `dataset_config.response_template` → marker; else the exact
    /// completion / assistant-turn boundary).
    pub fn encode_options(&self) -> EncodeOptions {
        let masking = match (&self.dataset_config.response_template, self.assistant_only_masking) {
            (_, false) => Masking::FullSequence,
            (Some(marker), true) => Masking::Marker { response_template: marker.clone() },
            (None, true) => Masking::CompletionOnly,
        };
        self.tokenize.encode_options(self.dataset_config.max_length, masking)
    }

    /// The special tokens the config overrides (`training_args.eos_token`, `pad_token`).
    pub fn special_token_overrides(&self) -> SpecialTokenOverrides {
        self.tokenize.overrides()
    }

    /// An error about `key` of this config, naming the file it came from (`run config` if none).
    pub fn error(&self, key: &str, message: impl Into<String>) -> SftError {
        let path = self.origin.clone().unwrap_or_else(|| PathBuf::from("run config"));
        SftError::Config { path, key: key.into(), message: message.into() }
    }

    /// The directory training writes to, as a path.
    pub fn output_dir(&self) -> PathBuf {
        PathBuf::from(&self.training_args.output_dir)
    }
}
