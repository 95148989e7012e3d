//! PEFT's adapter files: `adapter_config.json` and `adapter_model.safetensors`.
//!
//! Keys are PEFT's without the adapter name: `base_model.model.<module>.lora_A.weight` `[r, in]` and
//! `…lora_B.weight` `[out, r]`; `modules_to_save` as `base_model.model.lm_head.weight` and
//! `base_model.model.model.embed_tokens.weight` (HF orientation). Tensors are f32, metadata `{"format": "pt"}`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use serde_json::{Value, json};
use sft_model::{Checkpoint, LlamaForCausalLM, Projection, TensorEntry, write_atomic, write_safetensors};

use crate::config::{InitLoraWeights, LayerSelection, LoraBias, LoraConfig, TargetModules};
use crate::error::{PeftError, Result};
use crate::inject::{SavedModule, inject_with, modules_to_save};
use crate::lora::{BaseLinear, LoraAdapter, LoraLinear};

/// The adapter's config file name.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// The adapter's weights file name.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// The PEFT key of a tensor of `module` (`model.layers.0.self_attn.q_proj`, `lm_head`): `lora_A`, `lora_B`, or
/// `None` for the module's own weight (`modules_to_save`).
pub fn adapter_key(module: &str, part: Option<&str>) -> String {
    match part {
        Some(part) => format!("base_model.model.{module}.{part}.weight"),
        None => format!("base_model.model.{module}.weight"),
    }
}

/// `adapter_config.json` as PEFT writes it for `config` (every field of PEFT 0.21's `LoraConfig`; those this
/// project does not implement at their defaults).
/// `names`: the model's projections (PEFT writes its default targets for the model type when none are given).
fn peft_config_json(config: &LoraConfig, names: &[String], base_model_name_or_path: &str) -> Value {
    let target_modules = match &config.target_modules {
        Some(TargetModules::List(list)) => {
            let mut sorted = list.clone();
            sorted.sort();
            sorted.dedup();
            json!(sorted)
        }
        Some(TargetModules::Pattern(p)) => json!(p),
        None => json!(crate::target::default_targets(names)),
    };
    let layers = match &config.layers_to_transform {
        None => Value::Null,
        Some(LayerSelection::One(l)) => json!(l),
        Some(LayerSelection::Many(l)) => json!(l),
    };
    let init = match &config.init_lora_weights {
        InitLoraWeights::Bool(b) => json!(b),
        InitLoraWeights::Named(n) => json!(n),
    };
    let bias = match config.bias {
        LoraBias::None => "none",
        LoraBias::All => "all",
        LoraBias::LoraOnly => "lora_only",
    };
    json!({
        "alora_invocation_tokens": null,
        "alpha_pattern": {},
        "arrow_config": null,
        "auto_mapping": null,
        "base_model_name_or_path": base_model_name_or_path,
        "bias": bias,
        "corda_config": null,
        "ensure_weight_tying": false,
        "eva_config": null,
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": init,
        "kasa_config": null,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": layers,
        "loftq_config": {},
        "lora_alpha": config.lora_alpha,
        "lora_bias": false,
        "lora_dropout": config.lora_dropout,
        "lora_ga_config": null,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": config.modules_to_save,
        "monteclora_config": null,
        "peft_type": "LORA",
        "qalora_group_size": 16,
        "r": config.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": target_modules,
        "target_parameters": null,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": null,
        "use_bdlora": null,
        "use_dora": false,
        "use_qalora": false,
        "use_rslora": config.use_rslora,
        "velora_config": null,
    })
}

/// Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors` for an injected model: the factors of
/// every adapter and the weights of `modules_to_save`, in f32. Each file is written to a temporary name and renamed.
pub fn save_adapter(
    model: &LlamaForCausalLM<LoraLinear>,
    config: &LoraConfig,
    base_model_name_or_path: &str,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| PeftError::Io { path: dir.into(), source })?;
    let mut tensors: Vec<(String, Tensor<2>)> = Vec::new();
    for (name, projection) in model.projections() {
        if let Some(adapter) = &projection.adapter {
            if projection.merged {
                return Err(PeftError::Adapter {
                    path: dir.into(),
                    message: format!("`{name}` is merged; unmerge before saving the adapter"),
                });
            }
            tensors.push((adapter_key(&name, Some("lora_A")), adapter.lora_a.val().transpose()));
            tensors.push((adapter_key(&name, Some("lora_B")), adapter.lora_b.val().transpose()));
        }
    }
    for module in modules_to_save(config)? {
        let weight = match module {
            SavedModule::LmHead => model.lm_head.as_ref().map(|h| h.weight.val().transpose()),
            SavedModule::EmbedTokens => Some(model.model.embed_tokens.weight.val()),
        };
        let weight = weight.ok_or_else(|| PeftError::Adapter {
            path: dir.into(),
            message: "modules_to_save names lm_head, but the model has none (was it injected with this config?)".into(),
        })?;
        tensors.push((adapter_key(module.name(), None), weight));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let entries = tensors
        .into_iter()
        .map(|(name, tensor)| TensorEntry {
            name,
            dtype: DType::F32,
            shape: tensor.dims().to_vec(),
            data: Box::new(move || Ok(tensor.cast(DType::F32).into_data())),
        })
        .collect();
    let metadata = BTreeMap::from([("format".to_owned(), "pt".to_owned())]);
    write_safetensors(&dir.join(ADAPTER_WEIGHTS), entries, &metadata)?;
    let names: Vec<String> = model.projections().into_iter().map(|(n, _)| n).collect();
    let json = serde_json::to_vec_pretty(&peft_config_json(config, &names, base_model_name_or_path))
        .map_err(|source| PeftError::Json { path: dir.join(ADAPTER_CONFIG), source })?;
    write_atomic(&dir.join(ADAPTER_CONFIG), &json)?;
    Ok(())
}

/// Fields of `adapter_config.json` this project accepts only at PEFT's default (the features they enable are
/// not implemented), with that default.
const UNSUPPORTED_AT_DEFAULT: &[(&str, &str)] = &[
    ("use_dora", "false"),
    ("fan_in_fan_out", "false"),
    ("lora_bias", "false"),
    ("use_qalora", "false"),
    ("layer_replication", "null"),
    ("target_parameters", "null"),
    ("trainable_token_indices", "null"),
    ("alora_invocation_tokens", "null"),
    ("exclude_modules", "null"),
    ("rank_pattern", "{}"),
    ("alpha_pattern", "{}"),
    ("arrow_config", "null"),
    ("use_bdlora", "null"),
];

/// Reads `adapter_config.json` into a [`LoraConfig`] and the base model it names, checking PEFT's rules: a LoRA
/// adapter for a causal LM, with no option this project does not implement.
pub fn read_adapter_config(dir: &Path) -> Result<(LoraConfig, Option<String>)> {
    let path = dir.join(ADAPTER_CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|source| PeftError::Io { path: path.clone(), source })?;
    let error = |message: String| PeftError::Adapter { path: path.clone(), message };
    let value: Value = serde_json::from_str(&text).map_err(|source| PeftError::Json { path: path.clone(), source })?;
    let object = value.as_object().ok_or_else(|| error("expected a JSON object".into()))?;
    let get = |key: &str| object.get(key).filter(|v| !v.is_null());
    match get("peft_type").and_then(Value::as_str) {
        Some("LORA") => {}
        other => {
            return Err(error(format!(
                "peft_type {}: only LORA adapters are supported",
                other.map_or_else(|| "missing".to_owned(), |t| format!("`{t}`"))
            )));
        }
    }
    if let Some(task) = get("task_type").and_then(Value::as_str)
        && task != "CAUSAL_LM"
    {
        return Err(error(format!("task_type `{task}`: only CAUSAL_LM adapters apply to a causal LM")));
    }
    for (key, default) in UNSUPPORTED_AT_DEFAULT {
        let value = object.get(*key).cloned().unwrap_or(Value::Null);
        let is_default = match *default {
            "false" => value.is_null() || value == json!(false),
            "{}" => value.is_null() || value.as_object().is_some_and(serde_json::Map::is_empty),
            _ => value.is_null(),
        };
        if !is_default {
            return Err(error(format!("{key} = {value} is not supported (only {default})")));
        }
    }
    if let Some(pattern) = get("layers_pattern")
        && pattern != &json!("layers")
        && pattern != &json!(["layers"])
    {
        return Err(error(format!("layers_pattern = {pattern} is not supported (Llama's layers are `layers`)")));
    }
    let field = |key: &str| -> Result<Option<Value>> { Ok(get(key).cloned()) };
    let parse = |key: &str, v: Value| -> Result<LoraConfigField> {
        serde_json::from_value(json!({ key: v })).map_err(|e| error(format!("{key}: {e}")))
    };
    let mut config = LoraConfig::default();
    let r = get("r").and_then(Value::as_u64).ok_or_else(|| error("r: expected a whole number".into()))?;
    config.r = r as usize;
    config.lora_alpha = get("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
    config.lora_dropout = get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    config.use_rslora = get("use_rslora").and_then(Value::as_bool).unwrap_or(false);
    for key in ["target_modules", "bias", "modules_to_save", "layers_to_transform", "init_lora_weights"] {
        if let Some(v) = field(key)? {
            let LoraConfigField { target_modules, bias, modules_to_save, layers_to_transform, init_lora_weights } =
                parse(key, v)?;
            config.target_modules = target_modules.or(config.target_modules);
            config.bias = bias.unwrap_or(config.bias);
            config.modules_to_save = modules_to_save.or(config.modules_to_save);
            config.layers_to_transform = layers_to_transform.or(config.layers_to_transform);
            config.init_lora_weights = init_lora_weights.unwrap_or(config.init_lora_weights);
        }
    }
    config.validate().map_err(|e| error(e.to_string()))?;
    let base = get("base_model_name_or_path").and_then(Value::as_str).map(str::to_owned);
    Ok((config, base))
}

/// One field of a [`LoraConfig`] read on its own, for error messages that name it.
#[derive(serde::Deserialize)]
struct LoraConfigField {
    #[serde(default)]
    target_modules: Option<TargetModules>,
    #[serde(default)]
    bias: Option<LoraBias>,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    layers_to_transform: Option<LayerSelection>,
    #[serde(default)]
    init_lora_weights: Option<InitLoraWeights>,
}

/// Loads the adapter in `dir` (written here or by Python PEFT) onto `model` (PEFT's `PeftModel.from_pretrained`):
/// the config is checked, every targeted projection gets its saved factors (shapes checked against the base:
/// an adapter for another base model is an error naming the tensor), `modules_to_save` weights replace the
/// base's, and a tensor the config does not explain is an error. Returns the injected model (adapters
/// trainable) and the config.
pub fn load_adapter<P: Projection + Into<BaseLinear>>(
    model: LlamaForCausalLM<P>,
    dir: &Path,
) -> Result<(LlamaForCausalLM<LoraLinear>, LoraConfig)> {
    let (config, _) = read_adapter_config(dir)?;
    let weights = dir.join(ADAPTER_WEIGHTS);
    if !weights.is_file() {
        let message = if dir.join("adapter_model.bin").is_file() {
            "adapter_model.safetensors is missing; adapter_model.bin (a pickle) is not read: convert it with PEFT \
             (`save_pretrained(safe_serialization=True)`)"
        } else {
            "adapter_model.safetensors is missing"
        };
        return Err(PeftError::Adapter { path: dir.into(), message: message.into() });
    }
    let mut checkpoint = Checkpoint::open(std::slice::from_ref(&weights))?;
    strip_adapter_name(&mut checkpoint, &weights)?;
    let (r, scaling, dropout) = (config.r, config.scaling(), config.lora_dropout);
    // A target the model lacks comes from the config; the tensors' errors already name their file.
    let in_config = |e: PeftError| match e {
        PeftError::Target { .. } | PeftError::InvalidConfig { .. } => {
            PeftError::InAdapter { path: dir.join(ADAPTER_CONFIG), source: Box::new(e) }
        }
        other => other,
    };
    let mut model = inject_with(
        model,
        &config,
        |name, d_in, d_out, device, _| {
            let a = checkpoint.data(&adapter_key(name, Some("lora_A")), &[r, d_in])?;
            let b = checkpoint.data(&adapter_key(name, Some("lora_B")), &[d_out, r])?;
            let (a, b) = (floats(a, dir)?, floats(b, dir)?);
            Ok(LoraAdapter::from_peft(&a, &b, [r, d_in, d_out], scaling, dropout, device))
        },
        0,
    )
    .map_err(in_config)?;
    for module in modules_to_save(&config)? {
        let embed = &model.model.embed_tokens.weight;
        let [vocab, hidden] = embed.dims();
        let device = embed.device();
        // A saved full module takes the base model's dtype (a bf16 base gets a bf16 copy), as PEFT loads it.
        let dtype = match embed.val().dtype() {
            DType::BF16 => FloatDType::BF16,
            DType::F16 => FloatDType::F16,
            _ => FloatDType::F32,
        };
        let weight = checkpoint.tensor(&adapter_key(module.name(), None), [vocab, hidden], &device, dtype)?;
        match module {
            SavedModule::LmHead => {
                model.lm_head = Some(Linear { weight: Param::from_tensor(weight.transpose()), bias: None });
            }
            SavedModule::EmbedTokens => model.model.embed_tokens.weight = Param::from_tensor(weight),
        }
    }
    checkpoint.finish()?;
    Ok((model, config))
}

/// PEFT's in-memory keys carry the adapter's name (`…q_proj.lora_A.default.weight`,
/// `…lm_head.modules_to_save.default.weight`); `save_pretrained` writes them without it, and
/// `PeftModel.from_pretrained` accepts both. Such keys are renamed to the saved form (and logged); a file with the
/// tensors of several adapter names, or with a key in both forms, is refused naming them.
pub(crate) fn strip_adapter_name(checkpoint: &mut Checkpoint, path: &Path) -> Result<()> {
    let renames: Vec<(String, String, String)> = checkpoint
        .names()
        .into_iter()
        .filter_map(|key| saved_form(&key).map(|(saved, adapter)| (key, saved, adapter)))
        .collect();
    let adapters: std::collections::BTreeSet<&str> = renames.iter().map(|(_, _, a)| a.as_str()).collect();
    if adapters.len() > 1 {
        let names: Vec<String> = adapters.iter().map(|a| format!("`{a}`")).collect();
        return Err(PeftError::Adapter {
            path: path.into(),
            message: format!(
                "holds the tensors of {} adapters ({}); save each adapter on its own (PEFT's save_pretrained does)",
                names.len(),
                names.join(", ")
            ),
        });
    }
    for (key, saved, adapter) in &renames {
        if !checkpoint.rename(key, saved) {
            return Err(PeftError::Adapter {
                path: path.into(),
                message: format!("holds both `{key}` and `{saved}` (with and without the adapter name `{adapter}`)"),
            });
        }
    }
    if let Some(adapter) = adapters.first() {
        tracing::info!(file = %path.display(), adapter, tensors = renames.len(), "keys carry PEFT's adapter name; read without it");
    }
    Ok(())
}

/// `(saved key, adapter name)` for a key with PEFT's adapter-name segment after `lora_A` / `lora_B` /
/// `modules_to_save`; `None` for a key in the saved form.
fn saved_form(key: &str) -> Option<(String, String)> {
    let stem = key.strip_suffix(".weight")?;
    let (head, adapter) = stem.rsplit_once('.')?;
    for part in ["lora_A", "lora_B"] {
        if head.ends_with(&format!(".{part}")) {
            return Some((format!("{head}.weight"), adapter.to_owned()));
        }
    }
    head.strip_suffix(".modules_to_save").map(|module| (format!("{module}.weight"), adapter.to_owned()))
}

/// The values of `data` as f32.
pub(crate) fn floats(data: TensorData, dir: &Path) -> Result<Vec<f32>> {
    data.try_into_vec_as::<f32>()
        .map_err(|e| PeftError::Adapter { path: dir.join(ADAPTER_WEIGHTS), message: format!("{e:?}") })
}
