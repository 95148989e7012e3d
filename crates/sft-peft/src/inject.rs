//! Applying a `LoraConfig` to a loaded model (PEFT's `get_peft_model`).

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use sft_model::{LlamaForCausalLM, Projection};
use sft_rand::SplitMix64;

use crate::config::LoraConfig;
use crate::error::{PeftError, Result, invalid};
use crate::lora::{BaseLinear, LoraAdapter, LoraLinear};
use crate::target::select_targets;

/// A full module `modules_to_save` can name in a Llama model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedModule {
    /// `lm_head` (with tied embeddings, an untied trainable copy of the embeddings is created, as PEFT does).
    LmHead,
    /// `model.embed_tokens`.
    EmbedTokens,
}

impl SavedModule {
    /// The HF module name.
    pub fn name(self) -> &'static str {
        match self {
            Self::LmHead => "lm_head",
            Self::EmbedTokens => "model.embed_tokens",
        }
    }
}

/// Resolves `modules_to_save` by PEFT's suffix rule (`lm_head`, `embed_tokens` or `model.embed_tokens`).
pub fn modules_to_save(config: &LoraConfig) -> Result<Vec<SavedModule>> {
    let mut out = Vec::new();
    for entry in config.modules_to_save.iter().flatten() {
        let module = [SavedModule::LmHead, SavedModule::EmbedTokens]
            .into_iter()
            .find(|m| m.name() == entry || m.name().strip_suffix(entry.as_str()).is_some_and(|r| r.ends_with('.')))
            .ok_or_else(|| {
                invalid(
                    "modules_to_save",
                    format!("`{entry}` is not a module of the model that can be saved (lm_head, embed_tokens)"),
                )
            })?;
        if !out.contains(&module) {
            out.push(module);
        }
    }
    Ok(out)
}

/// Trainable and total parameter counts, printed like PEFT's `print_trainable_parameters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterCount {
    /// Parameters that receive gradients: adapters and `modules_to_save`.
    pub trainable: usize,
    /// Every parameter of the model as held (base, adapters, trainable copies).
    pub total: usize,
}

impl std::fmt::Display for ParameterCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = |n: usize| {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        let percent = 100.0 * self.trainable as f64 / self.total.max(1) as f64;
        write!(
            f,
            "trainable params: {} || all params: {} || trainable%: {percent:.4}",
            group(self.trainable),
            group(self.total)
        )
    }
}

/// Counts the trainable parameters of an injected model from its structure (adapters, and the modules that
/// `config.modules_to_save` names).
pub fn parameter_count(model: &LlamaForCausalLM<LoraLinear>, config: &LoraConfig) -> Result<ParameterCount> {
    let adapters: usize = model
        .projections()
        .iter()
        .filter_map(|(_, p)| p.adapter.as_ref())
        .map(|a| a.lora_a.num_params() + a.lora_b.num_params())
        .sum();
    let saved: usize = modules_to_save(config)?
        .into_iter()
        .map(|m| match m {
            SavedModule::LmHead => model.lm_head.as_ref().map_or(0, |h| h.weight.num_params()),
            SavedModule::EmbedTokens => model.model.embed_tokens.weight.num_params(),
        })
        .sum();
    Ok(ParameterCount { trainable: adapters + saved, total: model.num_params() })
}

/// PEFT's `get_peft_model`: freezes every parameter of `model`, gives each projection that `config` targets a
/// fresh adapter (initialised from `SplitMix64::new(seed)`, in checkpoint order, on the projection's device), and
/// makes `modules_to_save` trainable. Only adapters and those modules then receive gradients.
pub fn inject<P: Projection + Into<BaseLinear>>(
    model: LlamaForCausalLM<P>,
    config: &LoraConfig,
    seed: u64,
) -> Result<LlamaForCausalLM<LoraLinear>> {
    inject_with(
        model,
        config,
        |_, d_in, d_out, device, random| Ok(LoraAdapter::init(d_in, d_out, config, random, device)),
        seed,
    )
}

/// [`inject`] with the adapters made by `make(name, in, out, device, random)` (loading uses it to place saved
/// factors).
pub(crate) fn inject_with<P: Projection + Into<BaseLinear>>(
    model: LlamaForCausalLM<P>,
    config: &LoraConfig,
    mut make: impl FnMut(&str, usize, usize, &Device, &mut SplitMix64) -> Result<LoraAdapter>,
    seed: u64,
) -> Result<LlamaForCausalLM<LoraLinear>> {
    config.validate()?;
    let saved = modules_to_save(config)?;
    if config.bias != crate::config::LoraBias::None {
        tracing::warn!(bias = ?config.bias, "the model's projections have no biases; `bias` trains nothing here");
    }
    let names: Vec<String> = model.projections().into_iter().map(|(n, _)| n).collect();
    let selected = select_targets(config, &names)?;
    if selected.iter().all(|&s| !s) {
        return Err(PeftError::Target {
            message: "no projection is selected (check layers_to_transform)".into(),
            available: names.join(", "),
        });
    }
    let mut random = SplitMix64::new(seed);
    let mut index = 0;
    let model = model.no_grad();
    let mut model = model.map_projections(|name, base: P| -> Result<LoraLinear> {
        let base: BaseLinear = base.into();
        let target = selected[index];
        index += 1;
        if !target {
            return Ok(LoraLinear::plain(base));
        }
        let [d_in, d_out] = base.dims();
        let device = base.device();
        let adapter = make(name, d_in, d_out, &device, &mut random)?;
        Ok(LoraLinear { base, adapter: Some(adapter), merged: false })
    })?;
    let tied = model.lm_head.is_none();
    if saved.contains(&SavedModule::LmHead) {
        model.lm_head = Some(match model.lm_head.take() {
            Some(head) => Linear { weight: head.weight.set_require_grad(true), bias: head.bias },
            None => Linear { weight: Param::from_tensor(embedding_copy(&model)), bias: None },
        });
    }
    if saved.contains(&SavedModule::EmbedTokens) {
        if tied && model.lm_head.is_none() {
            // The head keeps the original embeddings, frozen, while the copy in `embed_tokens` trains.
            let head = Param::from_tensor(embedding_copy(&model)).set_require_grad(false);
            model.lm_head = Some(Linear { weight: head, bias: None });
        }
        let embed = &mut model.model.embed_tokens;
        embed.weight = embed.weight.clone().set_require_grad(true);
    }
    let count = parameter_count(&model, config)?;
    tracing::info!(targets = selected.iter().filter(|&&s| s).count(), "{count}");
    Ok(model)
}

/// The embeddings as a `[hidden, vocab]` head weight, copied out of the autodiff graph.
fn embedding_copy(model: &LlamaForCausalLM<LoraLinear>) -> Tensor<2> {
    model.model.embed_tokens.weight.val().transpose().detach()
}
