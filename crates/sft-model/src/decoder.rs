//! One decoder layer.

use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;

use crate::attention::LlamaAttention;
use crate::fused::rms_norm;
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
    /// `[batch, seq, hidden]` → same shape; the attention arguments as [`LlamaAttention::forward`]'s.
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        blocked: Option<&Tensor<4, Bool>>,
        segments: Option<&[(usize, usize)]>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let normed = rms_norm(&self.input_layernorm, x.clone());
        let h = x + self.self_attn.forward(normed, cos, sin, blocked, segments, cache);
        h.clone() + self.mlp.forward(rms_norm(&self.post_attention_layernorm, h))
    }
}
