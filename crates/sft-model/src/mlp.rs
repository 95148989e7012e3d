//! The gated feed-forward block: SwiGLU (Llama, Qwen, Mistral, Phi-3) or tanh-GELU (Gemma 3).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::gelu_approximate;

use crate::family::Activation;
use crate::fused::swiglu;
use crate::projection::Projection;

/// `down_proj(act(gate) * up)`, with `gate`, `up` from `gate_proj` / `up_proj`, or from one fused `gate_up_proj`
/// whose first `intermediate` outputs are `gate` and last `intermediate` are `up` (Phi-3). Exactly one of the two
/// layouts is present; the loaders build it from the config.
#[derive(Module, Debug)]
pub struct LlamaMlp<P: Projection = Linear> {
    /// `[hidden, intermediate]`; `None` with a fused `gate_up_proj`.
    pub gate_proj: Option<P>,
    /// `[hidden, intermediate]`; `None` with a fused `gate_up_proj`.
    pub up_proj: Option<P>,
    /// `[hidden, 2 × intermediate]`, `[gate | up]` (Phi-3); `None` with separate projections.
    pub gate_up_proj: Option<P>,
    /// `[intermediate, hidden]`.
    pub down_proj: P,
    /// The gate's activation (configuration, not a parameter).
    #[module(skip)]
    pub act: Activation,
}

impl<P: Projection> LlamaMlp<P> {
    /// `[batch, seq, hidden]` → same shape.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (gate, up) = match (&self.gate_proj, &self.up_proj, &self.gate_up_proj) {
            (Some(gate), Some(up), _) => (gate.forward(x.clone()), up.forward(x)),
            (_, _, Some(fused)) => {
                let both = fused.forward(x);
                let half = both.dims()[2] / 2;
                (both.clone().narrow(2, 0, half), both.narrow(2, half, half))
            }
            _ => unreachable!("an MLP is built with gate_proj and up_proj, or gate_up_proj"),
        };
        let hidden = match self.act {
            Activation::Silu => swiglu(gate, up),
            Activation::GeluTanh => gelu_approximate(gate) * up,
        };
        self.down_proj.forward(hidden)
    }
}
