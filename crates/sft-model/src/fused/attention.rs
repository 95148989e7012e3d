//! Causal grouped-query attention over segments, with RoPE, as one differentiable operation.
//!
//! The generic path ([`LlamaAttention`](crate::LlamaAttention)) splits heads with a transpose copy, rotates
//! queries and keys with four element-wise passes, repeats key/value heads, and runs the masked softmax over the
//! whole padded `[batch, heads, seq, seq]` square. This operation takes the projections as they come out of the
//! linear layers, `[tokens, heads × head_dim]`, and computes each segment (one example: a run of tokens attending
//! causally among themselves) on its own: no padding, no mask, no copies of the heads. Autodiff keeps the rotated
//! queries and keys, the values and the probabilities of each segment (`heads × len²`).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;

use super::{constant, contiguous, tensor, values};
use crate::kernels::attention::{self, Heads};
use crate::kernels::rope;

/// Segment attention (see the module docs). `segments` are `(first token, length)` runs of the flat token axis;
/// `shape` is `[heads, kv_heads, head_dim]`.
#[backend_extension(Flex, Autodiff)]
pub trait SegmentAttentionBackend: Backend {
    /// `q` `[tokens, heads × d]`, `k`/`v` `[tokens, kv_heads × d]` (not yet rotated), `cos`/`sin` `[tokens, d]`
    /// (transformers' duplicated-frequency tables): the attention output `[tokens, heads × d]`, zero for tokens
    /// outside every segment.
    fn segment_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> FloatTensor<Self>;

    /// The forward pass keeping what the backward needs: `(output, rotated q, rotated k, probabilities)`, the
    /// probabilities flat, `heads × len × len` per segment in order.
    fn segment_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients `(∂q, ∂k, ∂v)` (with respect to the unrotated `q` and `k`) for the output gradient `dout`.
    #[allow(clippy::too_many_arguments)]
    fn segment_attention_backward(
        q_rot: FloatTensor<Self>,
        k_rot: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probs: FloatTensor<Self>,
        dout: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn heads([heads, kv_heads, head_dim]: [usize; 3]) -> Heads {
    Heads { heads, kv_heads, head_dim }
}

fn scale(head_dim: usize) -> f32 {
    (1.0 / (head_dim as f64).sqrt()) as f32
}

/// The forward pass on flex: `[output, rotated q, rotated k, probabilities]`, the probabilities `[0]` unless
/// `keep`.
#[allow(clippy::too_many_arguments)]
fn flex_forward(
    q: FloatTensor<Flex>,
    k: FloatTensor<Flex>,
    v: FloatTensor<Flex>,
    cos: FloatTensor<Flex>,
    sin: FloatTensor<Flex>,
    segments: &[(usize, usize)],
    shape: [usize; 3],
    keep: bool,
) -> [FloatTensor<Flex>; 4] {
    let (cos, sin, v) = (contiguous(cos), contiguous(sin), contiguous(v));
    let d = shape[2];
    let rotate = |x: FloatTensor<Flex>| rope::rotate(values(&contiguous(x)), values(&cos), values(&sin), d, false);
    let (q_rot, k_rot) = (rotate(q), rotate(k));
    let tokens = q_rot.len() / (shape[0] * d).max(1);
    let mut probs = vec![0f32; if keep { attention::probs_len(segments, shape[0]) } else { 0 }];
    let kept = keep.then_some(probs.as_mut_slice());
    let out = attention::forward(&q_rot, &k_rot, values(&v), segments, heads(shape), scale(d), kept);
    let n = probs.len();
    [
        tensor(out, [tokens, shape[0] * d]),
        tensor(q_rot, [tokens, shape[0] * d]),
        tensor(k_rot, [tokens, shape[1] * d]),
        tensor(probs, [n]),
    ]
}

impl SegmentAttentionBackend for Flex {
    fn segment_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> FloatTensor<Self> {
        let [out, ..] = flex_forward(q, k, v, cos, sin, &segments, shape, false);
        out
    }

    fn segment_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [out, q_rot, k_rot, probs] = flex_forward(q, k, v, cos, sin, &segments, shape, true);
        (out, q_rot, k_rot, probs)
    }

    fn segment_attention_backward(
        q_rot: FloatTensor<Self>,
        k_rot: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probs: FloatTensor<Self>,
        dout: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [q_rot, k_rot, v, probs, dout, cos, sin] = [q_rot, k_rot, v, probs, dout, cos, sin].map(contiguous);
        let d = shape[2];
        let (dq_rot, dk_rot, dv) = attention::backward(
            values(&q_rot),
            values(&k_rot),
            values(&v),
            values(&probs),
            values(&dout),
            &segments,
            heads(shape),
            scale(d),
        );
        let tokens = dq_rot.len() / (shape[0] * d).max(1);
        // RoPE is a rotation per pair of columns: its backward rotates back.
        let dq = rope::rotate(&dq_rot, values(&cos), values(&sin), d, true);
        let dk = rope::rotate(&dk_rot, values(&cos), values(&sin), d, true);
        (tensor(dq, [tokens, shape[0] * d]), tensor(dk, [tokens, shape[1] * d]), tensor(dv, [tokens, shape[1] * d]))
    }
}

/// The backward of [`SegmentAttentionBackend::segment_attention`].
#[derive(Debug)]
struct SegmentAttentionBackward;

type AttentionState<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    Vec<(usize, usize)>,
    [usize; 3],
);

impl<B: Backend + SegmentAttentionBackend> Backward<B, 3> for SegmentAttentionBackward {
    type State = AttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (q_rot, k_rot, v, probs, cos, sin, segments, shape) = ops.state;
        let (dq, dk, dv) = B::segment_attention_backward(q_rot, k_rot, v, probs, grad, cos, sin, segments, shape);
        for (node, grad) in [(node_q, dq), (node_k, dk), (node_v, dv)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + SegmentAttentionBackend, C: CheckpointStrategy> SegmentAttentionBackend for Autodiff<B, C> {
    fn segment_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> FloatTensor<Self> {
        let (cos, sin) = (cos.into_primitive(), sin.into_primitive());
        match SegmentAttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let v = v.into_primitive();
                let (out, q_rot, k_rot, probs) = B::segment_attention_forward(
                    q.into_primitive(),
                    k.into_primitive(),
                    v.clone(),
                    cos.clone(),
                    sin.clone(),
                    segments.clone(),
                    shape,
                );
                prep.finish((q_rot, k_rot, v, probs, cos, sin, segments, shape), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::segment_attention(
                q.into_primitive(),
                k.into_primitive(),
                v.into_primitive(),
                cos,
                sin,
                segments,
                shape,
            )),
        }
    }

    fn segment_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [q, k, v, cos, sin] = [q, k, v, cos, sin].map(|t| t.into_primitive());
        let (a, b, c, d) = B::segment_attention_forward(q, k, v, cos, sin, segments, shape);
        (constant::<B, C>(a), constant::<B, C>(b), constant::<B, C>(c), constant::<B, C>(d))
    }

    fn segment_attention_backward(
        q_rot: FloatTensor<Self>,
        k_rot: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probs: FloatTensor<Self>,
        dout: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        segments: Vec<(usize, usize)>,
        shape: [usize; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [q_rot, k_rot, v, probs, dout, cos, sin] =
            [q_rot, k_rot, v, probs, dout, cos, sin].map(|t| t.into_primitive());
        let (a, b, c) = B::segment_attention_backward(q_rot, k_rot, v, probs, dout, cos, sin, segments, shape);
        (constant::<B, C>(a), constant::<B, C>(b), constant::<B, C>(c))
    }
}

/// Segment attention of `q` `[tokens, heads × d]`, `k`/`v` `[tokens, kv_heads × d]` with RoPE tables `cos`/`sin`
/// `[tokens, d]`: each `(start, len)` segment attends causally within itself; tokens outside every segment get 0.
/// Only for f32 tensors on flex ([`super::has_cpu_kernels`]); `shape` is `[heads, kv_heads, head_dim]`.
pub fn segment_attention(
    q: Tensor<2>,
    k: Tensor<2>,
    v: Tensor<2>,
    cos: Tensor<2>,
    sin: Tensor<2>,
    segments: Vec<(usize, usize)>,
    shape: [usize; 3],
) -> Tensor<2> {
    let out = <Dispatch as SegmentAttentionBackend>::segment_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        cos.into_dispatch(),
        sin.into_dispatch(),
        segments,
        shape,
    );
    Tensor::from_dispatch(out)
}
