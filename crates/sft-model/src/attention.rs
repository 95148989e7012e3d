//! Grouped-query self-attention.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;

use crate::fused::{has_cpu_kernels, segment_attention};
use crate::projection::Projection;
use crate::rope::apply_rotary;
use crate::softmax::masked_softmax;

/// Llama self-attention: `q_proj`, `k_proj`, `v_proj`, `o_proj` (HF names), RoPE on queries and keys, key/value
/// heads shared by `num_heads / num_kv_heads` query heads, softmax in f32 (whatever the weights' dtype) over `q·kᵀ / √head_dim`.
#[derive(Module, Debug)]
pub struct LlamaAttention<P: Projection = Linear> {
    /// `[hidden, heads × head_dim]`.
    pub q_proj: P,
    /// `[hidden, kv_heads × head_dim]`.
    pub k_proj: P,
    /// `[hidden, kv_heads × head_dim]`.
    pub v_proj: P,
    /// `[heads × head_dim, hidden]`.
    pub o_proj: P,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
}

impl<P: Projection> LlamaAttention<P> {
    /// `x` `[batch, seq, hidden]`; `cos`/`sin` `[batch, 1, seq, head_dim]`; `blocked` `[batch, 1, seq, keys]`, true
    /// where a query may not attend to a key (`None`: causal over every key, the new positions last); `segments`,
    /// when given, the same mask as runs ([`ModelInput::segments`]). With a `cache`, the new keys and values are appended to the cached ones
    /// (`keys` = cached + `seq`). Returns `[batch, seq, hidden]`.
    ///
    /// Without a cache, with `segments`, for f32 on flex, the fused [`segment_attention`] computes it; otherwise
    /// tensor operations over the masked square.
    ///
    /// [`ModelInput::segments`]: crate::ModelInput::segments
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        blocked: Option<&Tensor<4, Bool>>,
        segments: Option<&[(usize, usize)]>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let (h, kv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        if let Some(segments) = segments
            && cache.is_none()
            && has_cpu_kernels(&x.device(), x.dtype())
        {
            let tokens = batch * seq;
            let flat = |t: Tensor<3>| {
                let width = t.dims()[2];
                t.reshape([tokens, width])
            };
            let table = |t: &Tensor<4>| t.clone().reshape([tokens, d]);
            let out = segment_attention(
                flat(self.q_proj.forward(x.clone())),
                flat(self.k_proj.forward(x.clone())),
                flat(self.v_proj.forward(x)),
                table(cos),
                table(sin),
                segments.to_vec(),
                [h, kv, d],
            );
            return self.o_proj.forward(out.reshape([batch, seq, h * d]));
        }
        let heads = |t: Tensor<3>, n: usize| t.reshape([batch, seq, n, d]).swap_dims(1, 2);
        let q = apply_rotary(heads(self.q_proj.forward(x.clone()), h), cos, sin);
        let mut k = apply_rotary(heads(self.k_proj.forward(x.clone()), kv), cos, sin);
        let mut v = heads(self.v_proj.forward(x), kv);
        if let Some(cache) = cache {
            if let Some((past_k, past_v)) = cache.take() {
                k = Tensor::cat(vec![past_k, k], 2);
                v = Tensor::cat(vec![past_v, v], 2);
            }
            *cache = Some((k.clone(), v.clone()));
        }
        let keys = k.dims()[2];
        let (k, v) = (repeat_kv(k, h / kv), repeat_kv(v, h / kv));
        let dtype = q.dtype();
        let scores = q.matmul(k.transpose()).div_scalar((d as f64).sqrt()).cast(DType::F32);
        let blocked = match blocked {
            Some(blocked) => blocked.clone(),
            None => causal(seq, keys, &scores.device()),
        };
        let probs = masked_softmax(scores, blocked.expand([batch, h, seq, keys])).cast(dtype);
        let out = probs.matmul(v).swap_dims(1, 2).reshape([batch, seq, h * d]);
        self.o_proj.forward(out)
    }
}

/// `[1, 1, seq, keys]`: query `i` (position `keys − seq + i`) may not attend to key `j` after it.
fn causal(seq: usize, keys: usize, device: &Device) -> Tensor<4, Bool> {
    let past = keys - seq;
    let blocked: Vec<bool> = (0..seq).flat_map(|i| (0..keys).map(move |j| j > past + i)).collect();
    Tensor::from_data(TensorData::new(blocked, [1, 1, seq, keys]), device)
}

/// `[b, kv, s, d]` → `[b, kv × n_rep, s, d]`, each key/value head repeated for its `n_rep` query heads in order
/// (transformers' `repeat_kv`).
fn repeat_kv(x: Tensor<4>, n_rep: usize) -> Tensor<4> {
    if n_rep == 1 {
        return x;
    }
    let [b, kv, s, d] = x.dims();
    x.unsqueeze_dim::<5>(2).expand([b, kv, n_rep, s, d]).reshape([b, kv * n_rep, s, d])
}
