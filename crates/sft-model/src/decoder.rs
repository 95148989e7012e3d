//! One decoder layer.

use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;

use crate::attention::LlamaAttention;
use crate::mlp::LlamaMlp;
use crate::projection::Projection;

/// Pre-norm residual block: `h = x + attn(norm₁(x))`, `out = h + mlp(norm₂(h))`.
#[derive(Module, Debug)]
pub struct LlamaDecoderLayer<P: Projection = Linear> {
    /// Self-attention.
    pub self_attn: LlamaAttention<P>,
    /// Feed-forward.
    pub mlp: LlamaMlp<P>,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
}

impl<P: Projection> LlamaDecoderLayer<P> {
    /// `[batch, seq, hidden]` → same shape.
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        blocked: &Tensor<4, Bool>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let h = x.clone() + self.self_attn.forward(self.input_layernorm.forward(x), cos, sin, blocked, cache);
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }
}
