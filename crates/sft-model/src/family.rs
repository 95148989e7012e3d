//! The model families one decoder carries, chosen by `config.json`'s `architectures` / `model_type`, and the MLP
//! activations they use.

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
    pub(crate) fn detect(architectures: &[String], model_type: Option<&str>) -> Option<Self> {
        match architectures.first() {
            Some(a) => Self::ALL.into_iter().find(|f| f.architecture() == a),
            None => Self::ALL.into_iter().find(|f| Some(f.model_type()) == model_type),
        }
    }
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
