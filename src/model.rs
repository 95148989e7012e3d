//! Loading the base model through the `Repo` seam (a local directory or a Hub model repo).

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_hub::{AnyRepo, HubSettings, Repo, RepoKind};
use sft_model::{Checkpoint, LlamaConfig, LlamaForCausalLM, dense};
use sft_peft::{BaseLinear, QuantizationConfig};

use crate::error::{Result, SftError};

/// Loads `model_name` (a local directory or a Hub model repo id) onto `device`: `config.json` and
/// `model.safetensors`, or `model.safetensors.index.json` and the shards it names (downloaded into the HF cache),
/// weights converted to `dtype`. With a `quantization` that has `load_in_4bit`, each decoder projection is
/// quantized to NF4 as it is read (embeddings, norms and `lm_head` stay in `dtype`, as transformers does), so
/// the peak memory is the quantized model plus one tensor.
pub fn load_model(
    model_name: &str,
    hub: &HubSettings,
    device: &Device,
    dtype: FloatDType,
    quantization: Option<&QuantizationConfig>,
) -> Result<(LlamaConfig, LlamaForCausalLM<BaseLinear>)> {
    let repo = AnyRepo::open(model_name, RepoKind::Model, None, hub)?;
    let files = repo.list()?;
    let missing = |what: &str| SftError::Config {
        path: repo.id().into(),
        key: "model_name".into(),
        message: format!("no {what} in the model repo; files found: {}", files.join(", ")),
    };
    if !files.iter().any(|f| f == "config.json") {
        return Err(missing("config.json"));
    }
    let config = LlamaConfig::from_file(&repo.get("config.json")?)?;
    let weights: Vec<PathBuf> = if files.iter().any(|f| f == "model.safetensors") {
        vec![repo.get("model.safetensors")?]
    } else if files.iter().any(|f| f == "model.safetensors.index.json") {
        let index = repo.get("model.safetensors.index.json")?;
        Checkpoint::shards(&index)?.iter().map(|s| repo.get(s)).collect::<std::result::Result<_, _>>()?
    } else {
        return Err(missing("model.safetensors or model.safetensors.index.json"));
    };
    let mut checkpoint = Checkpoint::open(&weights)?;
    let model = LlamaForCausalLM::load_with(&config, &mut checkpoint, device, dtype, |_, weight| {
        Ok::<_, SftError>(match quantization {
            None => BaseLinear::Dense(dense(weight)),
            Some(q) => q.projection(weight)?,
        })
    })?;
    checkpoint.finish()?;
    tracing::info!(
        model = %repo.id(),
        layers = config.num_hidden_layers,
        hidden = config.hidden_size,
        nf4 = quantization.is_some_and(|q| q.load_in_4bit),
        "loaded model"
    );
    Ok((config, model))
}
