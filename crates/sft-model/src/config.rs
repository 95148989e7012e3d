//! `config.json` of a Hugging Face decoder checkpoint: Llama, and the families that are the Llama graph with a few
//! switches (Qwen2 / Qwen2.5, Qwen3, Mistral, Phi-3 / Phi-4, Gemma 3), chosen by `architectures` / `model_type`.

use std::path::Path;

use burn::tensor::FloatDType;
use serde::Deserialize;

use crate::error::{ModelError, Result};

/// A model family: the Llama graph and the switches that set it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelFamily {
    /// `LlamaForCausalLM` (Llama 2 / 3.x, SmolLM2, …).
    Llama,
    /// `Qwen2ForCausalLM` (Qwen2, Qwen2.5): biases on q/k/v (not o).
    Qwen2,
    /// `Qwen3ForCausalLM` (dense Qwen3): RMSNorm over `head_dim` of queries and keys before RoPE (`q_norm`,
    /// `k_norm`); `head_dim` independent of `hidden_size / num_attention_heads`.
    Qwen3,
    /// `MistralForCausalLM`: sliding-window attention on every layer when `sliding_window` is set.
    Mistral,
    /// `Phi3ForCausalLM` (Phi-3, Phi-4): fused `qkv_proj` and `gate_up_proj`, rotary embeddings on the first
    /// `head_dim × partial_rotary_factor` dimensions of each head, Mistral's window when `sliding_window` is set.
    Phi3,
    /// `Gemma3ForCausalLM` (Gemma 3 text models): `(1 + w)` RMSNorms in f32, four per layer (sandwich), embeddings
    /// × √hidden, tanh-GELU MLP, `q_norm` / `k_norm`, scores scaled by `query_pre_attn_scalar^-½`, sliding and global
    /// layers (`layer_types`) with their own RoPE bases.
    Gemma3,
}

impl ModelFamily {
    /// transformers' class name (`architectures[0]` of `config.json`).
    pub fn architecture(self) -> &'static str {
        match self {
            Self::Llama => "LlamaForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
            Self::Mistral => "MistralForCausalLM",
            Self::Phi3 => "Phi3ForCausalLM",
            Self::Gemma3 => "Gemma3ForCausalLM",
        }
    }

    /// transformers' `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Mistral => "mistral",
            Self::Phi3 => "phi3",
            Self::Gemma3 => "gemma3_text",
        }
    }

    const ALL: [Self; 6] = [Self::Llama, Self::Qwen2, Self::Qwen3, Self::Mistral, Self::Phi3, Self::Gemma3];

    /// The family of `architectures[0]`, else of `model_type`.
    fn detect(architectures: &[String], model_type: Option<&str>) -> Option<Self> {
        match architectures.first() {
            Some(a) => Self::ALL.into_iter().find(|f| f.architecture() == a),
            None => Self::ALL.into_iter().find(|f| Some(f.model_type()) == model_type),
        }
    }
}

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

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `silu` (SwiGLU).
    Silu,
    /// `gelu_pytorch_tanh`: `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))` (GeGLU, Gemma).
    GeluTanh,
}

impl Activation {
    /// transformers' name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Silu => "silu",
            Self::GeluTanh => "gelu_pytorch_tanh",
        }
    }
}

/// RoPE scaling (`rope_scaling` / `rope_parameters`).
#[derive(Debug, Clone, PartialEq)]
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
    /// Phi-3 / Phi-4's `longrope`: frequency `i` divided by `short_factor[i]` while the sequence fits
    /// `original_max_position_embeddings`, by `long_factor[i]` past it, and cos / sin multiplied by
    /// `attention_factor` (transformers' `_compute_longrope_parameters` and its dynamic update).
    LongRope {
        /// Per-frequency divisors up to `original_max_position_embeddings` (`rotary_dim / 2` of them).
        short_factor: Vec<f64>,
        /// Per-frequency divisors past it.
        long_factor: Vec<f64>,
        /// The pre-training context length (`original_max_position_embeddings` of the config).
        original_max_position_embeddings: usize,
        /// The cos / sin scale: `attention_factor` when given, else `√(1 + ln s / ln original)` with
        /// `s = max_position_embeddings / original` (1 when `s ≤ 1`).
        attention_factor: f64,
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

/// Architectures this crate implements.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "LlamaForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "MistralForCausalLM",
    "Phi3ForCausalLM",
    "Gemma3ForCausalLM",
];

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

    /// transformers' `config.json` for this config, with `torch_dtype` naming the weights' dtype.
    pub fn to_hf_json(&self, dtype: FloatDType) -> serde_json::Value {
        let torch_dtype = match dtype {
            FloatDType::BF16 => "bfloat16",
            FloatDType::F16 => "float16",
            FloatDType::F64 => "float64",
            FloatDType::F32 | FloatDType::Flex32 => "float32",
        };
        let rope_scaling = match &self.rope_scaling {
            RopeScaling::None => serde_json::Value::Null,
            RopeScaling::Linear { factor } => serde_json::json!({"rope_type": "linear", "factor": factor}),
            RopeScaling::LongRope { short_factor, long_factor, attention_factor, .. } => serde_json::json!({
                "rope_type": "longrope",
                "short_factor": short_factor,
                "long_factor": long_factor,
                "attention_factor": attention_factor,
            }),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                serde_json::json!({
                    "rope_type": "llama3",
                    "factor": factor,
                    "low_freq_factor": low_freq_factor,
                    "high_freq_factor": high_freq_factor,
                    "original_max_position_embeddings": *original_max_position_embeddings as u64,
                })
            }
        };
        let eos = match self.eos_token_id.as_slice() {
            [] => serde_json::Value::Null,
            [one] => serde_json::json!(one),
            many => serde_json::json!(many),
        };
        let mut json = serde_json::json!({
            "architectures": [self.family.architecture()],
            "model_type": self.family.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": self.hidden_act.name(),
            "attention_bias": self.qkv_bias,
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
        });
        if let Some(object) = json.as_object_mut() {
            match self.family {
                ModelFamily::Mistral => {
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                }
                ModelFamily::Qwen2 | ModelFamily::Qwen3 => {
                    let types: Vec<&str> = (0..self.num_hidden_layers)
                        .map(|l| if self.layer_window(l).is_some() { "sliding_attention" } else { "full_attention" })
                        .collect();
                    object.insert("use_sliding_window".into(), serde_json::json!(self.sliding_window.is_some()));
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                    object.insert("layer_types".into(), serde_json::json!(types));
                }
                ModelFamily::Phi3 => {
                    if let RopeScaling::LongRope { original_max_position_embeddings, .. } = &self.rope_scaling {
                        object.insert(
                            "original_max_position_embeddings".into(),
                            serde_json::json!(original_max_position_embeddings),
                        );
                    }
                    let factor = self.rotary_dim as f64 / self.head_dim as f64;
                    object.insert("partial_rotary_factor".into(), serde_json::json!(factor));
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                }
                ModelFamily::Gemma3 => {
                    let types: Vec<&str> = (0..self.num_hidden_layers)
                        .map(|l| if self.layer_window(l).is_some() { "sliding_attention" } else { "full_attention" })
                        .collect();
                    object.remove("hidden_act");
                    object.insert("hidden_activation".into(), serde_json::json!(self.hidden_act.name()));
                    object.insert("query_pre_attn_scalar".into(), serde_json::json!(self.query_pre_attn_scalar));
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                    object.insert("layer_types".into(), serde_json::json!(types));
                    object.insert("rope_local_base_freq".into(), serde_json::json!(self.rope_local_theta));
                    object.insert("final_logit_softcapping".into(), serde_json::Value::Null);
                    object.insert("attn_logit_softcapping".into(), serde_json::Value::Null);
                }
                ModelFamily::Llama => {}
            }
        }
        json
    }
}

/// What `longrope` needs besides its own fields.
struct ScalingContext {
    max_position_embeddings: usize,
    original_max_position_embeddings: Option<usize>,
    rotary_dim: usize,
}

fn parse_scaling(
    value: Option<&serde_json::Value>,
    context: &ScalingContext,
) -> std::result::Result<RopeScaling, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(RopeScaling::None) };
    let kind = value.get("rope_type").or_else(|| value.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
    let number = |key: &str| -> std::result::Result<f64, String> {
        value.get(key).and_then(serde_json::Value::as_f64).ok_or_else(|| format!("`{kind}` scaling needs `{key}`"))
    };
    let factors = |key: &str| -> std::result::Result<Vec<f64>, String> {
        let list =
            value.get(key).and_then(|v| v.as_array()).ok_or_else(|| format!("`{kind}` scaling needs `{key}`"))?;
        let list: Option<Vec<f64>> = list.iter().map(serde_json::Value::as_f64).collect();
        let list =
            list.filter(|l| l.iter().all(|f| *f > 0.0)).ok_or_else(|| format!("`{key}`: expected numbers > 0"))?;
        if list.len() != context.rotary_dim / 2 {
            return Err(format!(
                "`{key}` has {} entries; the rotary dimension {} needs {}",
                list.len(),
                context.rotary_dim,
                context.rotary_dim / 2
            ));
        }
        Ok(list)
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
        "longrope" => {
            // transformers: the ratio of the config's two lengths when it has `original_max_position_embeddings`
            // (Phi-3), else `factor` over `max_position_embeddings`.
            let (original, scale) = match context.original_max_position_embeddings {
                Some(original) => (original, context.max_position_embeddings as f64 / original as f64),
                None => (context.max_position_embeddings, value.get("factor").and_then(|f| f.as_f64()).unwrap_or(1.0)),
            };
            if original < 2 {
                return Err(format!("`longrope` needs original_max_position_embeddings ≥ 2, found {original}"));
            }
            let attention_factor = match value.get("attention_factor").and_then(|f| f.as_f64()) {
                Some(f) => f,
                None if scale <= 1.0 => 1.0,
                None => (1.0 + scale.ln() / (original as f64).ln()).sqrt(),
            };
            Ok(RopeScaling::LongRope {
                short_factor: factors("short_factor")?,
                long_factor: factors("long_factor")?,
                original_max_position_embeddings: original,
                attention_factor,
            })
        }
        other => Err(format!("rope type `{other}` is not supported (default, linear, llama3, longrope)")),
    }
}
