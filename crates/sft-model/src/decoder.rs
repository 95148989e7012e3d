//! One decoder layer.

use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;

use crate::attention::LlamaAttention;
use crate::fused::{offset_rms_norm, rms_norm};
use crate::mlp::LlamaMlp;
use crate::projection::Projection;

/// Pre-norm residual block: `h = x + attn(norm₁(x))`, `out = h + mlp(norm₂(h))`; with Gemma's sandwich norms
/// `h = x + post_attention_layernorm(attn(input_layernorm(x)))`,
/// `out = h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)))`.
#[derive(Module, Debug)]
pub struct LlamaDecoderLayer<P: Projection = Linear> {
    /// Self-attention.
    pub self_attn: LlamaAttention<P>,
    /// Feed-forward.
    pub mlp: LlamaMlp<P>,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP; Gemma: the norm of the attention's output.
    pub post_attention_layernorm: RmsNorm,
    /// Gemma: the norm before the MLP.
    pub pre_feedforward_layernorm: Option<RmsNorm>,
    /// Gemma: the norm of the MLP's output.
    pub post_feedforward_layernorm: Option<RmsNorm>,
    /// The norms scale by `1 + w` in f32 (Gemma) instead of `w`.
    pub norm_offset: bool,
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
        let norm = |norm: &RmsNorm, x: Tensor<3>| {
            if self.norm_offset { offset_rms_norm(norm, x) } else { rms_norm(norm, x) }
        };
        let attn = self.self_attn.forward(norm(&self.input_layernorm, x.clone()), cos, sin, blocked, segments, cache);
        match (&self.pre_feedforward_layernorm, &self.post_feedforward_layernorm) {
            (Some(pre), Some(post)) => {
                let h = x + norm(&self.post_attention_layernorm, attn);
                h.clone() + norm(post, self.mlp.forward(norm(pre, h)))
            }
            _ => {
                let h = x + attn;
                h.clone() + self.mlp.forward(norm(&self.post_attention_layernorm, h))
            }
        }
    }
}
