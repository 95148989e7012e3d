//! The seam for adapted and quantized linear layers.

use burn::module::ModuleDisplay;
use burn::nn::Linear;
use burn::prelude::*;

/// A linear map `[.., in] → [.., out]` used for the seven projections of every decoder layer (`q_proj`, `k_proj`,
/// `v_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`). The model is generic over it: `Linear` for a plain
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

/// The HF module names of the projections of a model with `layers` decoder layers
/// (`model.layers.N.self_attn.q_proj`, …), in checkpoint order: what
/// [`LlamaForCausalLM::projections`](crate::LlamaForCausalLM::projections) names, known from the config alone.
pub fn projection_names(layers: usize) -> Vec<String> {
    (0..layers).flat_map(|l| PROJECTIONS.map(|p| format!("model.layers.{l}.{p}"))).collect()
}

/// The names of the projections of one decoder layer, relative to `model.layers.N`, in checkpoint order.
pub const PROJECTIONS: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];
