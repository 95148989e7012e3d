//! Grouped-query self-attention.

use burn::module::Param;
use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::DType;

use crate::fused::{has_cpu_kernels, offset_rms_norm, rms_norm, segment_attention};
use crate::projection::Projection;
use crate::rope::apply_rotary;
use crate::softmax::masked_softmax;

/// Llama self-attention: `q_proj`, `k_proj`, `v_proj` (or Phi-3's fused `qkv_proj`), `o_proj` (HF names), RoPE
/// on queries and keys, key/value heads shared by `num_heads / num_kv_heads` query heads, softmax in f32 (whatever
/// the weights' dtype) over `q·kᵀ / √head_dim` (Gemma: `/ √query_pre_attn_scalar`).
#[derive(Module, Debug)]
pub struct LlamaAttention<P: Projection = Linear> {
    /// `[hidden, heads × head_dim]`; `None` with a fused `qkv_proj`.
    pub q_proj: Option<P>,
    /// `[hidden, kv_heads × head_dim]`; `None` with a fused `qkv_proj`.
    pub k_proj: Option<P>,
    /// `[hidden, kv_heads × head_dim]`; `None` with a fused `qkv_proj`.
    pub v_proj: Option<P>,
    /// Phi-3's fused input projection `[hidden, (heads + 2 × kv_heads) × head_dim]`, outputs `[q | k | v]`;
    /// `None` with separate projections. Exactly one of the two layouts is present (the loaders build it from the
    /// config).
    pub qkv_proj: Option<P>,
    /// `[heads × head_dim, hidden]`.
    pub o_proj: P,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// Biases added to the projections' outputs (`attention_bias`; Qwen2's q/k/v). They sit outside the
    /// projections, so a LoRA adds to the biased output and a merge leaves them as they are, as in PEFT.
    pub bias: AttentionBias,
    /// `q_norm` (Qwen3, Gemma 3): RMSNorm over `head_dim` of each query head, before RoPE.
    pub q_norm: Option<RmsNorm>,
    /// `k_norm`: the same for key heads.
    pub k_norm: Option<RmsNorm>,
    /// The q/k norms scale by `1 + w` in f32 (Gemma) instead of `w`.
    pub norm_offset: bool,
    /// The score scale is `query_pre_attn_scalar^-½` (Gemma) instead of `head_dim^-½`.
    pub query_pre_attn_scalar: Option<f64>,
    /// `sliding_window` (Mistral, Phi-3, Gemma's local layers): a query attends to itself and the `w − 1` keys
    /// before it, no further back (transformers' `sliding_window_overlay`: key index > query index − w). `None`: no
    /// window.
    pub sliding_window: Option<usize>,
}

/// The biases of `q_proj`, `k_proj`, `v_proj`, `o_proj` (HF `<proj>.bias`, `[out]`), each optional.
#[derive(Module, Debug, Default)]
pub struct AttentionBias {
    /// `q_proj.bias`, `[heads × head_dim]`.
    pub q: Option<Param<Tensor<1>>>,
    /// `k_proj.bias`, `[kv_heads × head_dim]`.
    pub k: Option<Param<Tensor<1>>>,
    /// `v_proj.bias`, `[kv_heads × head_dim]`.
    pub v: Option<Param<Tensor<1>>>,
    /// `o_proj.bias`, `[hidden]`.
    pub o: Option<Param<Tensor<1>>>,
}

/// `y + bias` over the last axis.
fn biased(y: Tensor<3>, bias: &Option<Param<Tensor<1>>>) -> Tensor<3> {
    match bias {
        Some(b) => {
            let b = b.val().cast(y.dtype());
            y + b.unsqueeze::<3>()
        }
        None => y,
    }
}

/// RMSNorm over the last axis of `[.., n, head_dim]` heads, `t` `[batch, seq, n × head_dim]`; `offset`: Gemma's
/// `(1 + w)` form.
fn head_norm(norm: &Option<RmsNorm>, offset: bool, t: Tensor<3>, n: usize, d: usize) -> Tensor<3> {
    match norm {
        Some(norm) => {
            let [b, s, _] = t.dims();
            let heads = t.reshape([b, s * n, d]);
            let normed = if offset { offset_rms_norm(norm, heads) } else { rms_norm(norm, heads) };
            normed.reshape([b, s, n * d])
        }
        None => t,
    }
}

impl<P: Projection> LlamaAttention<P> {
    /// `x` `[batch, seq, hidden]`; `cos`/`sin` `[batch, 1, seq, rotary_dim]`; `blocked` `[batch, 1, seq, keys]`, true
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
            && self.fits_segment_kernel(cos.dims()[3])
            && has_cpu_kernels(&x.device(), x.dtype())
        {
            let tokens = batch * seq;
            let flat = |t: Tensor<3>| {
                let width = t.dims()[2];
                t.reshape([tokens, width])
            };
            let table = |t: &Tensor<4>| t.clone().reshape([tokens, d]);
            let (q, k, v) = self.qkv(x);
            let out =
                segment_attention(flat(q), flat(k), flat(v), table(cos), table(sin), segments.to_vec(), [h, kv, d]);
            return biased(self.o_proj.forward(out.reshape([batch, seq, h * d])), &self.bias.o);
        }
        let heads = |t: Tensor<3>, n: usize| t.reshape([batch, seq, n, d]).swap_dims(1, 2);
        let (q, k, v) = self.qkv(x);
        let q = apply_rotary(heads(q, h), cos, sin);
        let mut k = apply_rotary(heads(k, kv), cos, sin);
        let mut v = heads(v, kv);
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
        let scale = self.query_pre_attn_scalar.unwrap_or(d as f64);
        let scores = q.matmul(k.transpose()).div_scalar(scale.sqrt()).cast(DType::F32);
        let mut blocked = match blocked {
            Some(blocked) => blocked.clone(),
            None => causal(seq, keys, &scores.device()),
        };
        if let Some(window) = self.sliding_window {
            let outside = outside_window(seq, keys, window, &scores.device());
            let shape = blocked.dims();
            blocked = blocked.bool_or(outside.expand(shape));
        }
        // A query whose every key is blocked (a padding position past the window) gets a zero row, not NaN.
        let probs = masked_softmax(scores, blocked.expand([batch, h, seq, keys])).cast(dtype);
        let out = probs.matmul(v).swap_dims(1, 2).reshape([batch, seq, h * d]);
        biased(self.o_proj.forward(out), &self.bias.o)
    }

    /// Whether the fused [`segment_attention`] computes this layer: no window, RoPE over the whole head
    /// (`rotary_dim` the tables' width), scores scaled by `head_dim^-½`.
    pub(crate) fn fits_segment_kernel(&self, rotary_dim: usize) -> bool {
        self.sliding_window.is_none()
            && rotary_dim == self.head_dim
            && self.query_pre_attn_scalar.is_none_or(|s| s == self.head_dim as f64)
    }

    /// Queries, keys and values `[batch, seq, heads × head_dim]` of `x`: projected (a fused `qkv_proj` split into
    /// its `[q | k | v]` column blocks), biased, and (Qwen3, Gemma) normalised per head; RoPE not yet applied.
    fn qkv(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let (h, kv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let (q, k, v) = match (&self.q_proj, &self.k_proj, &self.v_proj, &self.qkv_proj) {
            (Some(q), Some(k), Some(v), _) => (q.forward(x.clone()), k.forward(x.clone()), v.forward(x)),
            (_, _, _, Some(qkv)) => {
                let all = qkv.forward(x);
                let q = all.clone().narrow(2, 0, h * d);
                let k = all.clone().narrow(2, h * d, kv * d);
                (q, k, all.narrow(2, (h + kv) * d, kv * d))
            }
            _ => unreachable!("an attention is built with q_proj, k_proj and v_proj, or qkv_proj"),
        };
        let q = head_norm(&self.q_norm, self.norm_offset, biased(q, &self.bias.q), h, d);
        let k = head_norm(&self.k_norm, self.norm_offset, biased(k, &self.bias.k), kv, d);
        (q, k, biased(v, &self.bias.v))
    }
}

/// `[1, 1, seq, keys]`: query `i` (position `keys − seq + i`) may not attend to key `j` after it.
fn causal(seq: usize, keys: usize, device: &Device) -> Tensor<4, Bool> {
    let past = keys - seq;
    let blocked: Vec<bool> = (0..seq).flat_map(|i| (0..keys).map(move |j| j > past + i)).collect();
    Tensor::from_data(TensorData::new(blocked, [1, 1, seq, keys]), device)
}

/// `[1, 1, seq, keys]`: query `i` (index `keys − seq + i`) may not attend to key `j` at `window` or more indices
/// before it. Indices, not positions: in a packed row the keys of other examples are blocked anyway, and within one
/// example the two differ by a constant.
fn outside_window(seq: usize, keys: usize, window: usize, device: &Device) -> Tensor<4, Bool> {
    let past = keys - seq;
    let blocked: Vec<bool> = (0..seq).flat_map(|i| (0..keys).map(move |j| j + window <= past + i)).collect();
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
