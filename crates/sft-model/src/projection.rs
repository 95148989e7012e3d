//! The seam for adapted and quantized linear layers.

use burn::module::ModuleDisplay;
use burn::nn::Linear;
use burn::prelude::*;

use crate::config::LlamaConfig;

/// A linear map `[.., in] → [.., out]` used for the projections of every decoder layer (`q_proj`, `k_proj`,
/// `v_proj` or the fused `qkv_proj`, `o_proj`, `gate_proj`, `up_proj` or the fused `gate_up_proj`, `down_proj`). The model is generic over it: `Linear` for a plain
/// model, LoRA-adapted or NF4-quantized layers from `sft-peft` for fine-tuning
/// ([`LlamaForCausalLM::map_projections`](crate::LlamaForCausalLM::map_projections) swaps them).
pub trait Projection: Module + ModuleDisplay + core::fmt::Debug {
    /// `x` `[batch, seq, in]` → `[batch, seq, out]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3>;
}

impl Projection for Linear {
    /// A frozen f32 weight on flex runs as the fused [`low_rank_linear`](crate::fused::low_rank_linear) (no
    /// update); anything else as Burn's `Linear`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let w = self.weight.val();
        if self.bias.is_none() && crate::fused::fits_low_rank_linear(&x, &w) {
            return crate::fused::low_rank_linear_3d(x, w, None);
        }
        Linear::forward(self, x)
    }
}

/// The HF module names of `config`'s projections (`model.layers.N.self_attn.q_proj`, …), in checkpoint order:
/// what [`LlamaForCausalLM::projections`](crate::LlamaForCausalLM::projections) names, known from the config alone.
pub fn projection_names(config: &LlamaConfig) -> Vec<String> {
    let layer = layer_projections(config);
    (0..config.num_hidden_layers)
        .flat_map(|l| layer.iter().map(move |(p, _, _)| format!("model.layers.{l}.{p}")))
        .collect()
}

/// The projections of one decoder layer of `config`, relative to `model.layers.N`, in checkpoint order, with their
/// HF weight shapes `[out, in]`: Llama's seven, or Phi-3's four with the fused `qkv_proj` (`[q | k | v]` rows)
/// and `gate_up_proj` (`[gate | up]` rows).
pub fn layer_projections(config: &LlamaConfig) -> Vec<(&'static str, usize, usize)> {
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let (q, kv) = (config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim);
    if config.fused_projections {
        vec![
            ("self_attn.qkv_proj", q + 2 * kv, h),
            ("self_attn.o_proj", h, q),
            ("mlp.gate_up_proj", 2 * i, h),
            ("mlp.down_proj", h, i),
        ]
    } else {
        vec![
            ("self_attn.q_proj", q, h),
            ("self_attn.k_proj", kv, h),
            ("self_attn.v_proj", kv, h),
            ("self_attn.o_proj", h, q),
            ("mlp.gate_proj", i, h),
            ("mlp.up_proj", i, h),
            ("mlp.down_proj", h, i),
        ]
    }
}

/// The names of the projections of one decoder layer, relative to `model.layers.N`, of every supported family:
/// Llama's seven (also Qwen's, Mistral's, Gemma's) and Phi-3's fused `qkv_proj` and `gate_up_proj`. A
/// `target_modules` entry is checked against these before the model's own names are known.
pub const PROJECTIONS: [&str; 9] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.qkv_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.gate_up_proj",
    "mlp.down_proj",
];
