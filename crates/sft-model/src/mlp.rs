//! The SwiGLU feed-forward block.

use burn::nn::Linear;
use burn::prelude::*;

use crate::fused::swiglu;
use crate::projection::Projection;

/// `down_proj(silu(gate_proj(x)) * up_proj(x))`.
#[derive(Module, Debug)]
pub struct LlamaMlp<P: Projection = Linear> {
    /// `[hidden, intermediate]`.
    pub gate_proj: P,
    /// `[hidden, intermediate]`.
    pub up_proj: P,
    /// `[intermediate, hidden]`.
    pub down_proj: P,
}

impl<P: Projection> LlamaMlp<P> {
    /// `[batch, seq, hidden]` → same shape.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down_proj.forward(swiglu(self.gate_proj.forward(x.clone()), self.up_proj.forward(x)))
    }
}
