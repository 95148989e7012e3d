//! `config.json` of a Hugging Face decoder checkpoint: Llama, and the families that are the Llama graph with a few
//! switches (Qwen2 / Qwen2.5, Qwen3, Mistral, Phi-3 / Phi-4, Gemma 3), chosen by `architectures` / `model_type`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{ModelError, Result};
use crate::family::{Activation, ModelFamily, SUPPORTED_ARCHITECTURES};
use crate::scaling::{RopeScaling, ScalingContext, parse_scaling};

/// The architecture hyper-parameters, as transformers' `LlamaConfig` names them, and the family's switches.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// The family (from `architectures` / `model_type`).
    pub family: ModelFamily,
    /// Biases on `q_proj`, `k_proj`, `v_proj` (Qwen2; Llama's and Qwen3's `attention_bias`).
    pub qkv_bias: bool,
    /// A bias on `o_proj` (Llama's and Qwen3's `attention_bias`; never in Qwen2).
    pub o_bias: bool,
    /// `q_norm` / `k_norm`: RMSNorm over `head_dim` of queries and keys, before RoPE (Qwen3).
    pub qk_norm: bool,
    /// The attention window of the windowed layers (`sliding_window`): a query sees itself and the
    /// `sliding_window − 1` keys before it. `None`: full attention everywhere.
    pub sliding_window: Option<usize>,
    /// Which layers are windowed (`layer_types[i] == "sliding_attention"`), one entry per layer: all of them for
    /// Mistral; for Qwen with `use_sliding_window`, `layer_types` as given, else the layers from
    /// `max_window_layers` on (transformers' rule).
    pub window_layers: Vec<bool>,
    /// Fused input projections (Phi-3): `self_attn.qkv_proj` `[q | k | v]` instead of `q_proj`, `k_proj`, `v_proj`,
    /// and `mlp.gate_up_proj` `[gate | up]` instead of `gate_proj`, `up_proj`.
    pub fused_projections: bool,
    /// How many leading dimensions of each head RoPE rotates: `head_dim × partial_rotary_factor` (Phi-3), else
    /// `head_dim`.
    pub rotary_dim: usize,
    /// The MLP's activation (`hidden_act`, Gemma's `hidden_activation`).
    pub hidden_act: Activation,
    /// Gemma's RMSNorm `x̂ · (1 + w)` (computed in f32) instead of `x̂ · w`, for every norm of the model.
    pub norm_offset: bool,
    /// Gemma's four norms per layer: `post_attention_layernorm` normalises the attention's output,
    /// `pre_feedforward_layernorm` / `post_feedforward_layernorm` the MLP's input and output.
    pub sandwich_norms: bool,
    /// Embeddings multiplied by √`hidden_size` (Gemma; the tied head uses the unscaled matrix).
    pub scale_embeddings: bool,
    /// Attention scores are `q·kᵀ × query_pre_attn_scalar^-½` (Gemma); `None`: `head_dim^-½`.
    pub query_pre_attn_scalar: Option<f64>,
    /// The RoPE base of the windowed layers, when they have their own (Gemma 3's `sliding_attention` /
    /// `rope_local_base_freq`); `None`: every layer uses `rope_theta`.
    pub rope_local_theta: Option<f64>,
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
    tie_word_embeddings: Option<bool>,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    original_max_position_embeddings: Option<usize>,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    hidden_activation: Option<String>,
    #[serde(default)]
    partial_rotary_factor: Option<f64>,
    #[serde(default)]
    query_pre_attn_scalar: Option<f64>,
    #[serde(default)]
    rope_local_base_freq: Option<f64>,
    #[serde(default)]
    sliding_window_pattern: Option<usize>,
    #[serde(default)]
    final_logit_softcapping: Option<f64>,
    #[serde(default)]
    use_bidirectional_attention: Option<bool>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    use_sliding_window: bool,
    #[serde(default)]
    sliding_window: Option<usize>,
    #[serde(default)]
    max_window_layers: Option<usize>,
    #[serde(default)]
    layer_types: Option<Vec<String>>,
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
        let Some(family) = ModelFamily::detect(&architectures, raw.model_type.as_deref()) else {
            return Err(error(
                "architectures",
                format!(
                    "unsupported architecture {:?} (model_type {:?}); supported: {}",
                    architectures,
                    raw.model_type,
                    SUPPORTED_ARCHITECTURES.join(", ")
                ),
            ));
        };
        // Gemma names the activation `hidden_activation`; the others `hidden_act`.
        let (act_key, act) = match family {
            ModelFamily::Gemma3 => {
                ("hidden_activation", raw.hidden_activation.as_deref().unwrap_or("gelu_pytorch_tanh"))
            }
            _ => ("hidden_act", raw.hidden_act.as_deref().unwrap_or("silu")),
        };
        let hidden_act = match act {
            "silu" | "swish" => Activation::Silu,
            "gelu_pytorch_tanh" => Activation::GeluTanh,
            other => {
                return Err(error(act_key, format!("`{other}` is not supported (silu, gelu_pytorch_tanh)")));
            }
        };
        if raw.use_bidirectional_attention == Some(true) {
            return Err(error("use_bidirectional_attention", "bidirectional attention is not supported".into()));
        }
        if let Some(cap) = raw.final_logit_softcapping {
            return Err(error("final_logit_softcapping", format!("{cap}: logit soft-capping is not supported")));
        }
        if raw.mlp_bias {
            return Err(error("mlp_bias", "biased MLP projections are not supported yet".into()));
        }

        let (qkv_bias, o_bias) = match family {
            ModelFamily::Qwen2 => (true, false),
            ModelFamily::Llama | ModelFamily::Qwen3 | ModelFamily::Gemma3 => (raw.attention_bias, raw.attention_bias),
            ModelFamily::Mistral | ModelFamily::Phi3 => (false, false),
        };
        // Mistral windows every layer when `sliding_window` is set; Qwen's value applies only with
        // `use_sliding_window`, to the layers `layer_types` marks, else to those from `max_window_layers` on
        // (transformers' `Qwen2Config` / `Qwen3Config`; 28 by default).
        let layers = raw.num_hidden_layers;
        let (sliding_window, window_layers) = match family {
            ModelFamily::Mistral | ModelFamily::Phi3 => {
                (raw.sliding_window, vec![raw.sliding_window.is_some(); layers])
            }
            // Gemma 3: `layer_types`, else every `sliding_window_pattern`-th layer global (default 6).
            ModelFamily::Gemma3 => {
                let windowed = match &raw.layer_types {
                    Some(types) => {
                        if types.len() != layers {
                            return Err(error("layer_types", format!("{} entries for {layers} layers", types.len())));
                        }
                        types.iter().map(|t| t == "sliding_attention").collect()
                    }
                    None => {
                        let pattern = raw.sliding_window_pattern.unwrap_or(6);
                        if pattern == 0 {
                            return Err(error("sliding_window_pattern", "expected a whole number > 0".into()));
                        }
                        (0..layers).map(|l| (l + 1) % pattern != 0).collect()
                    }
                };
                (Some(raw.sliding_window.unwrap_or(4096)), windowed)
            }
            ModelFamily::Qwen2 | ModelFamily::Qwen3 if raw.use_sliding_window && raw.sliding_window.is_some() => {
                let windowed = match &raw.layer_types {
                    Some(types) => {
                        if types.len() != layers {
                            return Err(error("layer_types", format!("{} entries for {layers} layers", types.len())));
                        }
                        types.iter().map(|t| t == "sliding_attention").collect()
                    }
                    None => (0..layers).map(|l| l >= raw.max_window_layers.unwrap_or(28)).collect(),
                };
                (raw.sliding_window, windowed)
            }
            _ => (None, vec![false; layers]),
        };
        if sliding_window == Some(0) {
            return Err(error("sliding_window", "expected a whole number > 0 or null".into()));
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
        // transformers 5 writes `rope_parameters` (Gemma 3: one per layer type); 4.x configs `rope_theta`,
        // `rope_scaling` and Gemma's `rope_local_base_freq`. Either set is read.
        let params = raw.rope_parameters.as_ref();
        let theta_of = |p: Option<&serde_json::Value>| p.and_then(|p| p.get("rope_theta")).and_then(|v| v.as_f64());
        let (params, local_params) = match family {
            ModelFamily::Gemma3 => (
                params.and_then(|p| p.get("full_attention")).or(params),
                params.and_then(|p| p.get("sliding_attention")),
            ),
            _ => (params, None),
        };
        let rope_theta = raw.rope_theta.or_else(|| theta_of(params)).unwrap_or(10_000.0);
        let rope_local_theta = match family {
            ModelFamily::Gemma3 => {
                Some(raw.rope_local_base_freq.or_else(|| theta_of(local_params)).unwrap_or(10_000.0))
            }
            _ => None,
        };
        let scaling = raw.rope_scaling.as_ref().or(params);
        let factor = raw
            .partial_rotary_factor
            .or_else(|| params.and_then(|p| p.get("partial_rotary_factor")).and_then(|v| v.as_f64()))
            .unwrap_or(1.0);
        if !(factor > 0.0 && factor <= 1.0) {
            return Err(error("partial_rotary_factor", format!("{factor}: expected a number in (0, 1]")));
        }
        // transformers: `int(head_dim * partial_rotary_factor)`.
        let rotary_dim = (head_dim as f64 * factor) as usize;
        if rotary_dim == 0 || rotary_dim % 2 == 1 {
            return Err(error(
                "partial_rotary_factor",
                format!("rotates {rotary_dim} of {head_dim} dimensions; rotary embeddings need an even number > 0"),
            ));
        }
        let context = ScalingContext {
            max_position_embeddings: raw.max_position_embeddings,
            original_max_position_embeddings: raw.original_max_position_embeddings,
            rotary_dim,
        };
        let rope_scaling = parse_scaling(scaling, &context).map_err(|m| error("rope_scaling", m))?;
        let eos_token_id = match raw.eos_token_id {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(list)) => list.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect(),
            Some(other) => return Err(error("eos_token_id", format!("expected an id or a list, found {other}"))),
        };
        Ok(Self {
            family,
            qkv_bias,
            o_bias,
            qk_norm: matches!(family, ModelFamily::Qwen3 | ModelFamily::Gemma3),
            fused_projections: family == ModelFamily::Phi3,
            rotary_dim,
            hidden_act,
            norm_offset: family == ModelFamily::Gemma3,
            sandwich_norms: family == ModelFamily::Gemma3,
            scale_embeddings: family == ModelFamily::Gemma3,
            query_pre_attn_scalar: match family {
                ModelFamily::Gemma3 => Some(raw.query_pre_attn_scalar.unwrap_or(256.0)),
                _ => None,
            },
            rope_local_theta,
            sliding_window,
            window_layers,
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
            // transformers' defaults: tied for Gemma 3, untied for the others.
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(family == ModelFamily::Gemma3),
            max_position_embeddings: raw.max_position_embeddings,
            bos_token_id: raw.bos_token_id,
            eos_token_id,
            pad_token_id: raw.pad_token_id,
        })
    }
}

impl LlamaConfig {
    /// The attention window of layer `layer`, if it is windowed.
    pub fn layer_window(&self, layer: usize) -> Option<usize> {
        self.sliding_window.filter(|_| self.window_layers.get(layer).copied().unwrap_or(false))
    }
}
