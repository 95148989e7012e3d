//! Named model shapes used by the project's demo, benchmarks and GPU checks (random weights; no download).

use std::path::Path;

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};

/// `(name, config.json)` of every preset. Parameter counts (embeddings and head included):
/// - `tiny`: hidden 256, 4 layers, 8 heads / 4 kv heads, vocab 4096 (the bundled tokenizer's), untied — 5.0M;
/// - `small`: hidden 512, 15 layers, 8 heads / 4 kv heads, intermediate 1536, vocab 32000, untied — 80.0M (the
///   "80M small test model" of the memory figures);
/// - `llama-3.2-1b`: the shape of `meta-llama/Llama-3.2-1B` (hidden 2048, 16 layers, 32 heads / 8 kv heads,
///   vocab 128256, tied, llama3 RoPE scaling) — 1.24B;
/// - `qwen2.5-0.5b`: `Qwen/Qwen2.5-0.5B` (hidden 896, 24 layers, 14 heads / 2 kv heads, q/k/v biases, vocab 151936,
///   tied) — 494,032,768, the count the model card publishes;
/// - `qwen3-0.6b`: `Qwen/Qwen3-0.6B` (hidden 1024, 28 layers, 16 heads / 8 kv heads of 128, q/k norms, vocab
///   151936, tied) — 596,049,920 (0.44B without the embeddings, as its card says);
/// - `mistral-7b`: `mistralai/Mistral-7B-v0.1` (hidden 4096, 32 layers, 32 heads / 8 kv heads, sliding window 4096,
///   vocab 32000, untied) — 7,241,732,096, the published count;
/// - `phi-4-mini`: `microsoft/Phi-4-mini-instruct` (hidden 3072, 32 layers, 24 heads / 8 kv heads of 128, fused
///   `qkv_proj` / `gate_up_proj`, partial rotary 0.75, vocab 200064, tied) — 3,836,021,760 (the card's 3.8B). The
///   shape: the checkpoint's 2 × 48 `longrope` factors are left out (plain RoPE over its 4096 positions);
/// - `gemma-3-1b`: `google/gemma-3-1b-pt` (hidden 1152, 26 layers, 4 heads / 1 kv head of 256, sliding window 512
///   on five of every six layers, vocab 262144, tied) — 999,885,952.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "tiny",
        r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 4096, "hidden_size": 256, "intermediate_size": 688,
            "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4, "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0, "max_position_embeddings": 2048}"#,
    ),
    (
        "small",
        r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 32000, "hidden_size": 512, "intermediate_size": 1536,
            "num_hidden_layers": 15, "num_attention_heads": 8, "num_key_value_heads": 4, "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0, "max_position_embeddings": 4096}"#,
    ),
    (
        "llama-3.2-1b",
        r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 2048,
            "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
            "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true,
            "max_position_embeddings": 131072, "bos_token_id": 128000, "eos_token_id": 128001,
            "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192}}"#,
    ),
    (
        "qwen2.5-0.5b",
        r#"{"architectures": ["Qwen2ForCausalLM"], "vocab_size": 151936, "hidden_size": 896,
            "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true,
            "max_position_embeddings": 32768, "sliding_window": 32768, "use_sliding_window": false,
            "bos_token_id": 151643, "eos_token_id": 151643}"#,
    ),
    (
        "qwen3-0.6b",
        r#"{"architectures": ["Qwen3ForCausalLM"], "vocab_size": 151936, "hidden_size": 1024,
            "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 128, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true,
            "max_position_embeddings": 40960, "bos_token_id": 151643, "eos_token_id": 151645}"#,
    ),
    (
        "mistral-7b",
        r#"{"architectures": ["MistralForCausalLM"], "vocab_size": 32000, "hidden_size": 4096,
            "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 4096, "max_position_embeddings": 32768,
            "bos_token_id": 1, "eos_token_id": 2}"#,
    ),
    (
        "phi-4-mini",
        r#"{"architectures": ["Phi3ForCausalLM"], "vocab_size": 200064, "hidden_size": 3072,
            "intermediate_size": 8192, "num_hidden_layers": 32, "num_attention_heads": 24, "num_key_value_heads": 8,
            "partial_rotary_factor": 0.75, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
            "max_position_embeddings": 4096, "original_max_position_embeddings": 4096, "sliding_window": 262144,
            "bos_token_id": 199999, "eos_token_id": 199999, "pad_token_id": 199999}"#,
    ),
    (
        "gemma-3-1b",
        r#"{"architectures": ["Gemma3ForCausalLM"], "vocab_size": 262144, "hidden_size": 1152,
            "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1,
            "head_dim": 256, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0, "sliding_window": 512, "sliding_window_pattern": 6,
            "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": true, "max_position_embeddings": 32768,
            "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}"#,
    ),
];

impl LlamaConfig {
    /// The preset called `name` (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self> {
        let (_, json) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| ModelError::Config {
            path: format!("preset:{name}").into(),
            key: "preset".into(),
            message: format!(
                "unknown preset; available: {}",
                PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        })?;
        Self::from_json(json, Path::new(&format!("preset:{name}")))
    }

    /// Number of parameters (embeddings, head, norms included; a tied head counted once).
    pub fn num_parameters(&self) -> usize {
        crate::model::expected_shapes(self).iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }
}
