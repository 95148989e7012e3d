//! Which projections get an adapter: PEFT's `target_modules` and `layers_to_transform` rules.

use regex::Regex;
use sft_model::PROJECTIONS;

use crate::config::{ALL_LINEAR, LayerSelection, LoraConfig, TargetModules};
use crate::error::{PeftError, Result, invalid};

/// PEFT's default `target_modules` for Llama (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["llama"]`; the
/// same for Qwen2, Qwen3, Mistral and Gemma 3).
pub const LLAMA_DEFAULT_TARGETS: [&str; 2] = ["q_proj", "v_proj"];

/// PEFT's default `target_modules` for Phi-3 / Phi-4 (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["phi3"]`),
/// the fused projections included.
pub const PHI3_DEFAULT_TARGETS: [&str; 4] = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"];

/// Modules of the model that are not projections and so cannot take a LoRA adapter here.
pub const NOT_ADAPTABLE: [&str; 2] = ["lm_head", "embed_tokens"];

/// Whether the `target_modules` list entry `entry` matches a projection of a supported model family by PEFT's
/// suffix rule for some number of layers (`q_proj`, `self_attn.qkv_proj`, `model.layers.3.self_attn.q_proj`), so
/// that it can be checked when the config loads, before the model's own module names are known.
pub fn matches_projection(entry: &str) -> bool {
    let parts: Vec<&str> = entry.split('.').collect();
    PROJECTIONS.iter().any(|projection| {
        let name: Vec<&str> = ["model", "layers", "#"].into_iter().chain(projection.split('.')).collect();
        parts.len() <= name.len()
            && parts.iter().rev().zip(name.iter().rev()).all(|(part, n)| match *n {
                "#" => !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()),
                n => *part == n,
            })
    })
}

/// PEFT's default `target_modules` for a model with the projections `names`: Phi-3's when it has a fused
/// `qkv_proj`, else Llama's.
pub fn default_targets(names: &[String]) -> &'static [&'static str] {
    if names.iter().any(|n| n.ends_with(".qkv_proj")) { &PHI3_DEFAULT_TARGETS } else { &LLAMA_DEFAULT_TARGETS }
}

/// The layer index of a module name `model.layers.N.…` (PEFT's default `layers_pattern`).
pub fn layer_index(name: &str) -> Option<usize> {
    name.strip_prefix("model.layers.")?.split('.').next()?.parse().ok()
}

/// For each of `names` (HF module names of the model's projections, as
/// [`LlamaForCausalLM::projections`](sft_model::LlamaForCausalLM::projections) lists them), whether `config`
/// targets it:
/// - a list: a name equal to an entry or ending in `.entry` (PEFT's suffix rule); every entry must match at least
///   one module;
/// - `"all-linear"`: every projection (the output head is never a target, as in PEFT);
/// - none: PEFT's default for the model type ([`LLAMA_DEFAULT_TARGETS`], or [`PHI3_DEFAULT_TARGETS`] for a model
///   with a fused `qkv_proj`);
/// - another string: a regex that must match the whole name (`re.fullmatch`), and at least one module;
///
/// then restricted to `layers_to_transform` when set. Entries naming `lm_head` or `embed_tokens` are refused
/// (adapters on them are not supported; `modules_to_save` trains them in full).
pub fn select_targets(config: &LoraConfig, names: &[String]) -> Result<Vec<bool>> {
    let available = || describe(names);
    let mut selected: Vec<bool> = match &config.target_modules {
        None => {
            let defaults: Vec<String> = default_targets(names).iter().map(|t| t.to_string()).collect();
            suffix_match(&defaults, names, available)?
        }
        Some(TargetModules::List(list)) => suffix_match(list, names, available)?,
        Some(TargetModules::Pattern(p)) if p == ALL_LINEAR => vec![true; names.len()],
        Some(TargetModules::Pattern(p)) => {
            let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| invalid("target_modules", format!("{e}")))?;
            let hits: Vec<bool> = names.iter().map(|n| re.is_match(n)).collect();
            if !hits.contains(&true) {
                return Err(PeftError::Target {
                    message: format!("target_modules regex `{p}` matches no module"),
                    available: available(),
                });
            }
            hits
        }
    };
    if let Some(layers) = &config.layers_to_transform {
        let layers: Vec<usize> = match layers {
            LayerSelection::One(l) => vec![*l],
            LayerSelection::Many(l) => l.clone(),
        };
        let count = names.iter().filter_map(|n| layer_index(n)).max().map_or(0, |m| m + 1);
        if let Some(bad) = layers.iter().find(|&&l| l >= count) {
            return Err(invalid("layers_to_transform", format!("layer {bad} does not exist (the model has {count})")));
        }
        for (hit, name) in selected.iter_mut().zip(names) {
            *hit &= layer_index(name).is_some_and(|l| layers.contains(&l));
        }
    }
    Ok(selected)
}

fn suffix_match(list: &[String], names: &[String], available: impl Fn() -> String) -> Result<Vec<bool>> {
    for entry in list {
        if NOT_ADAPTABLE.iter().any(|m| entry == m || entry.ends_with(&format!(".{m}"))) {
            return Err(PeftError::Target {
                message: format!(
                    "target_modules entry `{entry}` is not a projection: LoRA on embeddings or the output head is not \
                     supported; list it in modules_to_save to train it in full"
                ),
                available: available(),
            });
        }
        if !names.iter().any(|n| matches_suffix(n, entry)) {
            return Err(PeftError::Target {
                message: format!("target_modules entry `{entry}` matches no module"),
                available: available(),
            });
        }
    }
    Ok(names.iter().map(|n| list.iter().any(|e| matches_suffix(n, e))).collect())
}

/// PEFT's rule: `name == entry` or `name` ends with `.entry`.
fn matches_suffix(name: &str, entry: &str) -> bool {
    name == entry || name.strip_suffix(entry).is_some_and(|rest| rest.ends_with('.'))
}

/// The projection names of layer 0 and the number of layers, for error messages.
fn describe(names: &[String]) -> String {
    let first: Vec<&str> = names.iter().filter(|n| layer_index(n) == Some(0)).map(String::as_str).collect();
    let layers = names.iter().filter_map(|n| layer_index(n)).max().map_or(0, |m| m + 1);
    format!(
        "{} (and the same in each of the {layers} layers; the output head `lm_head` is not a target)",
        first.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_against_every_layer_count() {
        for entry in [
            "q_proj",
            "down_proj",
            "self_attn.v_proj",
            "mlp.up_proj",
            "7.mlp.up_proj",
            "model.layers.31.self_attn.o_proj",
        ] {
            assert!(matches_projection(entry), "{entry}");
        }
        for entry in [
            "q_prj",
            "proj",
            "attn.q_proj",
            "mlp.q_proj",
            "x.model.layers.0.mlp.up_proj",
            "model.layers..mlp.up_proj",
            "lm_head",
            "",
        ] {
            assert!(!matches_projection(entry), "{entry}");
        }
        // The same verdict as the model's own names give for one layer count.
        let names = sft_model::projection_names(&sft_model::LlamaConfig::preset("tiny").unwrap());
        for entry in ["o_proj", "layers.1.mlp.down_proj", "self_attn.k_proj"] {
            assert!(names.iter().any(|n| matches_suffix(n, entry)) && matches_projection(entry), "{entry}");
        }
    }
}
