//! The SwiGLU feed-forward block.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;

/// `down_proj(silu(gate_proj(x)) * up_proj(x))`.
#[derive(Module, Debug)]
pub struct LlamaMlp {
    /// `[hidden, intermediate]`.
    pub gate_proj: Linear,
    /// `[hidden, intermediate]`.
    pub up_proj: Linear,
    /// `[intermediate, hidden]`.
    pub down_proj: Linear,
}

impl LlamaMlp {
    /// `[batch, seq, hidden]` → same shape.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down_proj.forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}
