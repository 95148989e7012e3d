//! `config.json` of a Hugging Face Llama checkpoint.

use std::path::Path;

use burn::tensor::FloatDType;
use serde::Deserialize;

use crate::error::{ModelError, Result};

/// The architecture hyper-parameters, as transformers' `LlamaConfig` names them.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of `embed_tokens` and `lm_head`).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); equals `num_attention_heads` when absent.
    pub num_key_value_heads: usize,
    /// Per-head width; `hidden_size / num_attention_heads` when absent.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE frequency scaling.
    pub rope_scaling: RopeScaling,
    /// Whether `lm_head` reuses `embed_tokens`.
    pub tie_word_embeddings: bool,
    /// Longest position the model was trained for.
    pub max_position_embeddings: usize,
    /// BOS id, if set.
    pub bos_token_id: Option<u32>,
    /// EOS ids (Llama 3 Instruct lists several).
    pub eos_token_id: Vec<u32>,
    /// PAD id, if set.
    pub pad_token_id: Option<u32>,
}

/// RoPE scaling (`rope_scaling` / `rope_parameters`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE (`default`).
    None,
    /// Positions divided by `factor` (`linear`).
    Linear {
        /// The factor.
        factor: f64,
    },
    /// Llama 3.1's frequency-dependent scaling (`llama3`).
    Llama3 {
        /// Scale of long wavelengths.
        factor: f64,
        /// Wavelength band edge (low frequencies).
        low_freq_factor: f64,
        /// Wavelength band edge (high frequencies).
        high_freq_factor: f64,
        /// Context length of the original model.
        original_max_position_embeddings: f64,
    },
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    rope_parameters: Option<serde_json::Value>,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    #[serde(default)]
    bos_token_id: Option<u32>,
    #[serde(default)]
    eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    pad_token_id: Option<u32>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> usize {
    2048
}

/// Architectures this crate implements.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["LlamaForCausalLM"];

impl LlamaConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        Self::from_json(&text, path)
    }

    /// Parses and checks `text`; `path` names the file in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let error = |key: &str, message: String| ModelError::Config { path: path.into(), key: key.into(), message };
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| error("(file)", e.to_string()))?;
        let architectures = raw.architectures.clone().unwrap_or_default();
        let llama = architectures.iter().any(|a| SUPPORTED_ARCHITECTURES.contains(&a.as_str()))
            || (architectures.is_empty() && raw.model_type.as_deref() == Some("llama"));
        if !llama {
            return Err(error(
                "architectures",
                format!(
                    "unsupported architecture {:?} (model_type {:?}); supported: {}",
                    architectures,
                    raw.model_type,
                    SUPPORTED_ARCHITECTURES.join(", ")
                ),
            ));
        }
        if let Some(act) = &raw.hidden_act
            && act != "silu"
        {
            return Err(error("hidden_act", format!("`{act}` is not supported (Llama uses `silu`)")));
        }
        if raw.attention_bias || raw.mlp_bias {
            return Err(error("attention_bias", "biased projections are not supported yet".into()));
        }
        for (key, value) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("intermediate_size", raw.intermediate_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("num_attention_heads", raw.num_attention_heads),
        ] {
            if value == 0 {
                return Err(error(key, "expected a whole number > 0".into()));
            }
        }
        let heads = raw.num_attention_heads;
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(error(
                "num_key_value_heads",
                format!("{kv_heads} does not divide num_attention_heads = {heads}"),
            ));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None if raw.hidden_size.is_multiple_of(heads) => raw.hidden_size / heads,
            None => {
                return Err(error(
                    "hidden_size",
                    format!("{} is not divisible by num_attention_heads = {heads}", raw.hidden_size),
                ));
            }
        };
        if head_dim == 0 || head_dim % 2 == 1 {
            return Err(error("head_dim", format!("{head_dim} must be even and > 0 for rotary embeddings")));
        }
        let params = raw.rope_parameters.as_ref();
        let rope_theta = raw
            .rope_theta
            .or_else(|| params.and_then(|p| p.get("rope_theta")).and_then(serde_json::Value::as_f64))
            .unwrap_or(10_000.0);
        let scaling = raw.rope_scaling.as_ref().or(params);
        let rope_scaling = parse_scaling(scaling).map_err(|m| error("rope_scaling", m))?;
        let eos_token_id = match raw.eos_token_id {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(list)) => list.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect(),
            Some(other) => return Err(error("eos_token_id", format!("expected an id or a list, found {other}"))),
        };
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: raw.tie_word_embeddings,
            max_position_embeddings: raw.max_position_embeddings,
            bos_token_id: raw.bos_token_id,
            eos_token_id,
            pad_token_id: raw.pad_token_id,
        })
    }
}

impl LlamaConfig {
    /// transformers' `config.json` for this config, with `torch_dtype` naming the weights' dtype.
    pub fn to_hf_json(&self, dtype: FloatDType) -> serde_json::Value {
        let torch_dtype = match dtype {
            FloatDType::BF16 => "bfloat16",
            FloatDType::F16 => "float16",
            FloatDType::F64 => "float64",
            FloatDType::F32 | FloatDType::Flex32 => "float32",
        };
        let rope_scaling = match self.rope_scaling {
            RopeScaling::None => serde_json::Value::Null,
            RopeScaling::Linear { factor } => serde_json::json!({"rope_type": "linear", "factor": factor}),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                serde_json::json!({
                    "rope_type": "llama3",
                    "factor": factor,
                    "low_freq_factor": low_freq_factor,
                    "high_freq_factor": high_freq_factor,
                    "original_max_position_embeddings": original_max_position_embeddings as u64,
                })
            }
        };
        let eos = match self.eos_token_id.as_slice() {
            [] => serde_json::Value::Null,
            [one] => serde_json::json!(one),
            many => serde_json::json!(many),
        };
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": rope_scaling,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": crate::init::INITIALIZER_RANGE,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "pad_token_id": self.pad_token_id,
            "torch_dtype": torch_dtype,
            "use_cache": true,
        })
    }
}

fn parse_scaling(value: Option<&serde_json::Value>) -> std::result::Result<RopeScaling, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(RopeScaling::None) };
    let kind = value.get("rope_type").or_else(|| value.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
    let number = |key: &str| -> std::result::Result<f64, String> {
        value.get(key).and_then(serde_json::Value::as_f64).ok_or_else(|| format!("`{kind}` scaling needs `{key}`"))
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor: number("factor")? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: number("factor")?,
            low_freq_factor: number("low_freq_factor")?,
            high_freq_factor: number("high_freq_factor")?,
            original_max_position_embeddings: number("original_max_position_embeddings")?,
        }),
        other => Err(format!("rope type `{other}` is not supported (default, linear, llama3)")),
    }
}
