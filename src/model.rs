//! Loading the base model through the `Repo` seam (a local directory or a Hub model repo).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_hub::{AnyRepo, HubSettings, RepoKind};
use sft_model::{Checkpoint, LlamaConfig, LlamaForCausalLM, dense};
use sft_peft::{BaseLinear, QuantizationConfig};
use sft_repo::Listing;

use crate::error::{Result, SftError};

/// Loads `model_name` (a local directory or a Hub model repo id) onto `device`: `config.json` and
/// `model.safetensors`, or `model.safetensors.index.json` and the shards it names (downloaded into the HF cache;
/// the layout is `sft_model`'s [`Checkpoint::from_repo`]), weights converted to `dtype`. With a `quantization` that has `load_in_4bit`, each decoder projection is
/// quantized to NF4 as it is read (embeddings, norms and `lm_head` stay in `dtype`, as transformers does), so
/// the peak memory is the quantized model plus one tensor.
pub fn load_model(
    model_name: &str,
    hub: &HubSettings,
    device: &Device,
    dtype: FloatDType,
    quantization: Option<&QuantizationConfig>,
) -> Result<(LlamaConfig, LlamaForCausalLM<BaseLinear>)> {
    load_model_checked(model_name, hub, device, dtype, quantization, |_| Ok(()))
}

/// The model repo of `model_name` (an embedded recipe directory generated first).
pub(crate) fn open_model_repo(model_name: &str, hub: &HubSettings) -> Result<AnyRepo> {
    materialize_embedded(Path::new(model_name))?;
    Ok(AnyRepo::open(model_name, RepoKind::Model, None, hub)?)
}

/// The `config.json` of `model_name`, read (downloaded) alone: the architecture, before any weight.
pub fn load_model_config(model_name: &str, hub: &HubSettings) -> Result<LlamaConfig> {
    let repo = open_model_repo(model_name, hub)?;
    let listing = Listing::of(&repo).map_err(|e| SftError::at_key("model_name", e))?;
    LlamaConfig::from_repo(&listing).map_err(|e| SftError::at_key("model_name", e))
}

/// The `config.json` and the tokenizer of `model_name` from one listing of its repo (an embedded recipe directory
/// generated first), before any weight: what [`prepare_data`](crate::pipeline::prepare_data) checks the run against
/// before it tokenizes. `overrides` are the run config's special-token overrides.
pub(crate) fn config_and_tokenizer(
    model_name: &str,
    hub: &HubSettings,
    overrides: &sft_tokenize::SpecialTokenOverrides,
) -> Result<(LlamaConfig, sft_tokenize::SftTokenizer)> {
    let repo = open_model_repo(model_name, hub)?;
    let listing = Listing::of(&repo).map_err(|e| SftError::at_key("model_name", e))?;
    let config = LlamaConfig::from_repo(&listing).map_err(|e| SftError::at_key("model_name", e))?;
    let tokenizer =
        sft_tokenize::SftTokenizer::from_listing(&listing, overrides).map_err(|e| SftError::at_key("model_name", e))?;
    Ok((config, tokenizer))
}

/// [`load_model`], with `check` called on the model's `config.json` before any weights are read or downloaded
/// (the pipeline checks the LoRA targets against the model's layers there).
pub(crate) fn load_model_checked(
    model_name: &str,
    hub: &HubSettings,
    device: &Device,
    dtype: FloatDType,
    quantization: Option<&QuantizationConfig>,
    check: impl FnOnce(&LlamaConfig) -> Result<()>,
) -> Result<(LlamaConfig, LlamaForCausalLM<BaseLinear>)> {
    let _span = tracing::info_span!("load_model", model = %model_name).entered();
    let repo = open_model_repo(model_name, hub)?;
    let listing = Listing::of(&repo).map_err(|e| SftError::at_key("model_name", e))?;
    let config = LlamaConfig::from_repo(&listing).map_err(|e| SftError::at_key("model_name", e))?;
    check(&config)?;
    let mut checkpoint = Checkpoint::from_repo(&listing).map_err(|e| SftError::at_key("model_name", e))?;
    let model = LlamaForCausalLM::load_with(&config, &mut checkpoint, device, dtype, |_, weight| {
        Ok::<_, SftError>(match quantization {
            None => BaseLinear::Dense(dense(weight)),
            Some(q) => q.projection(weight)?,
        })
    })?;
    checkpoint.finish()?;
    tracing::info!(
        model = %listing.id(),
        layers = config.num_hidden_layers,
        hidden = config.hidden_size,
        nf4 = quantization.is_some_and(|q| q.load_in_4bit),
        "loaded model"
    );
    Ok((config, model))
}

/// The recipe of a project-made model (`init.json` in its directory): a shape preset and a seed.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InitRecipe {
    /// A name of [`LlamaConfig::preset`].
    preset: String,
    /// The seed of [`LlamaForCausalLM::init`].
    seed: u64,
}

/// File name of the recipe of a model made by the project instead of downloaded.
pub const INIT_RECIPE: &str = "init.json";

/// If `dir` is a local directory holding an `init.json` recipe but no `config.json`, writes the model it describes
/// there as a normal HF directory (`model.safetensors`, then `config.json`, each atomically: a directory with a
/// `config.json` is complete). The embedded default model (`models/llama-tiny`) is made this way on first use,
/// because no weights can be downloaded on a fresh machine: seeded random initialisation, so every machine makes
/// the same bytes. Returns whether it wrote anything.
pub fn materialize_embedded(dir: &Path) -> Result<bool> {
    let recipe_path = dir.join(INIT_RECIPE);
    if !dir.is_dir() || !recipe_path.is_file() || dir.join("config.json").is_file() {
        return Ok(false);
    }
    let text =
        std::fs::read_to_string(&recipe_path).map_err(|source| SftError::Io { path: recipe_path.clone(), source })?;
    let recipe: InitRecipe =
        serde_json::from_str(&text).map_err(|source| SftError::Json { path: recipe_path.clone(), source })?;
    let config = LlamaConfig::preset(&recipe.preset)?;
    let model = LlamaForCausalLM::init(&config, &Device::flex(), recipe.seed);
    model.save_pretrained(&config, dir, FloatDType::F32)?;
    tracing::info!(dir = %dir.display(), preset = %recipe.preset, seed = recipe.seed, "made the embedded model");
    Ok(true)
}
