//! A frozen projection with an optional low-rank (LoRA) update, as one differentiable operation:
//! `y = x·W + s·((x ⊙ m)·A)·B`, with `x` `[tokens, in]`, the frozen weight `W` `[in, out]`, the factors `A`
//! `[in, r]` and `B` `[r, out]`, the scaling `s` and an optional dropout mask `m` `[tokens, in]` (its entries 0 or
//! `1 / (1 − p)`).
//!
//! The generic path runs it as Burn's `linear` (which copies a transposed weight into a contiguous one before
//! every product), a mask multiplication, two small products, a scale, an add, and in the backward as many again,
//! each a flex operation with its own zeroed (and then realigned, i.e. copied) output and autodiff node. Here the
//! forward is two `gemm` calls into one output (the update accumulated into the base product) plus the rank-`r`
//! product, the backward four: `∂x = ∂y·Wᵀ + s·((∂y·Bᵀ)·Aᵀ) ⊙ m`, `∂A = s·(x ⊙ m)ᵀ·(∂y·Bᵀ)`, `∂B = s·hᵀ·∂y` with
//! `h = (x ⊙ m)·A`, each on the operands' own strides. Autodiff keeps `x` (only while `A` trains), the mask and
//! `h` (`[tokens, r]`); `W` gets no gradient (callers route a trainable weight through the generic path).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use super::{constant, contiguous, strided, tensor, values, view};
use crate::kernels::blas::{View, matmul, product};

/// The fused projection (see the module docs). An absent mask is an empty tensor (no elements), as is `x` in the
/// backward when `∂a` is not wanted.
#[backend_extension(Flex, Autodiff)]
pub trait LowRankLinearBackend: Backend {
    /// `(y, h)`: `y = x·w + scaling·((x ⊙ mask)·a)·b` `[tokens, out]` and `h = (x ⊙ mask)·a` `[tokens, r]`, for
    /// `x` `[tokens, in]`, `w` `[in, out]`, `a` `[in, r]`, `b` `[r, out]`, `mask` `[tokens, in]` or empty.
    fn low_rank_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scaling: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `(∂x, ∂a, ∂b)` for the output gradient `dy`, each computed only where `wanted` (in that order; empty
    /// otherwise).
    #[allow(clippy::too_many_arguments)]
    fn low_rank_linear_backward(
        dy: FloatTensor<Self>,
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        h: FloatTensor<Self>,
        scaling: f32,
        wanted: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `x·w` for `x` `[tokens, in]` and `w` `[in, out]` (no update).
    fn frozen_linear(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `∂x = dy·wᵀ`.
    fn frozen_linear_backward(dy: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `t`, or `None` when it has no elements (the absent mask or input).
fn present(t: FlexTensor) -> Option<FlexTensor> {
    (t.shape().num_elements() > 0).then_some(t)
}

/// `x ⊙ mask` (row-major, both `[tokens, in]`), in parallel.
fn masked(x: &[f32], mask: &[f32]) -> Vec<f32> {
    x.par_iter().with_min_len(16 * 1024).zip(mask).map(|(x, m)| x * m).collect()
}

/// `dy·wᵀ` `[tokens, in]` for `dy` `[tokens, out]`.
fn input_grad(dyv: View<'_>, wv: View<'_>) -> Vec<f32> {
    product(dyv, wv.t(), 1.0)
}

impl LowRankLinearBackend for Flex {
    fn low_rank_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scaling: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (x, w, a, b) = (contiguous(x), strided(w), contiguous(a), contiguous(b));
        let (wv, [tokens, d_in]) = (view(&w), x.shape().dims::<2>());
        let (d_out, r) = (wv.cols, a.shape().dims::<2>()[1]);
        let mut y = product(View::row_major(values(&x), tokens, d_in), wv, 1.0);
        let xm = present(mask).map(|m| masked(values(&x), values(&contiguous(m))));
        let xm = View::row_major(xm.as_deref().unwrap_or(values(&x)), tokens, d_in);
        let h = product(xm, View::row_major(values(&a), d_in, r), 1.0);
        matmul(&mut y, View::row_major(&h, tokens, r), View::row_major(values(&b), r, d_out), scaling, true);
        (tensor(y, [tokens, d_out]), tensor(h, [tokens, r]))
    }

    fn low_rank_linear_backward(
        dy: FloatTensor<Self>,
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        h: FloatTensor<Self>,
        scaling: f32,
        [want_x, want_a, want_b]: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dy, w, a, b) = (contiguous(dy), strided(w), contiguous(a), contiguous(b));
        let wv = view(&w);
        let (d_in, d_out, r) = (wv.rows, wv.cols, a.shape().dims::<2>()[1]);
        let tokens = dy.shape().dims::<2>()[0];
        let dyv = View::row_major(values(&dy), tokens, d_out);
        let (av, bv) = (View::row_major(values(&a), d_in, r), View::row_major(values(&b), r, d_out));
        let mask = present(mask).map(contiguous);
        // g = ∂y·Bᵀ `[tokens, r]`: the gradient reaching h (before the scaling).
        let g = product(dyv, bv.t(), 1.0);
        let gv = View::row_major(&g, tokens, r);
        let dx = want_x.then(|| {
            let mut dx = input_grad(dyv, wv);
            match &mask {
                None => matmul(&mut dx, gv, av.t(), scaling, true),
                Some(m) => {
                    let t = product(gv, av.t(), scaling);
                    let chunk = 16 * 1024;
                    dx.par_chunks_mut(chunk).zip(t.par_chunks(chunk)).zip(values(m).par_chunks(chunk)).for_each(
                        |((dx, t), m)| {
                            for ((dx, t), m) in dx.iter_mut().zip(t).zip(m) {
                                *dx += t * m;
                            }
                        },
                    );
                }
            }
            tensor(dx, [tokens, d_in])
        });
        let da = want_a.then(|| {
            let x = contiguous(x);
            let xm = mask.as_ref().map(|m| masked(values(&x), values(m)));
            let xmv = View::row_major(xm.as_deref().unwrap_or(values(&x)), tokens, d_in);
            tensor(product(xmv.t(), gv, scaling), [d_in, r])
        });
        let db = want_b.then(|| {
            let h = contiguous(h);
            tensor(product(View::row_major(values(&h), tokens, r).t(), dyv, scaling), [r, d_out])
        });
        let empty = || tensor(Vec::new(), [0]);
        (dx.unwrap_or_else(empty), da.unwrap_or_else(empty), db.unwrap_or_else(empty))
    }

    fn frozen_linear(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, w) = (contiguous(x), strided(w));
        let (wv, [tokens, d_in]) = (view(&w), x.shape().dims::<2>());
        tensor(product(View::row_major(values(&x), tokens, d_in), wv, 1.0), [tokens, wv.cols])
    }

    fn frozen_linear_backward(dy: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let (dy, w) = (contiguous(dy), strided(w));
        let wv = view(&w);
        let tokens = dy.shape().dims::<2>()[0];
        tensor(input_grad(View::row_major(values(&dy), tokens, wv.cols), wv), [tokens, wv.rows])
    }
}

/// What the adapted backward keeps: `x` (only when `a` trains), `w`, `a`, `b`, the mask, `h`, the scaling.
type LinearState<B> =
    (Option<FloatTensor<B>>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, f32);

/// The backward of [`LowRankLinearBackend::low_rank_linear`]: parents `x`, `a`, `b`.
#[derive(Debug)]
struct LowRankLinearBackward;

impl<B: Backend + LowRankLinearBackend> Backward<B, 3> for LowRankLinearBackward {
    type State = LinearState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_a, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, a, b, mask, h, scaling) = ops.state;
        // Without x (a does not train), h stands in for it: it is read for ∂a only.
        let wanted = [node_x.is_some(), node_a.is_some() && x.is_some(), node_b.is_some()];
        let x = x.unwrap_or_else(|| h.clone());
        let (dx, da, db) = B::low_rank_linear_backward(grad, x, w, a, b, mask, h, scaling, wanted);
        for (node, grad) in [(node_x, dx), (node_a, da), (node_b, db)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// The backward of [`LowRankLinearBackend::frozen_linear`]: parent `x`; keeps only `w`.
#[derive(Debug)]
struct FrozenLinearBackward;

impl<B: Backend + LowRankLinearBackend> Backward<B, 1> for FrozenLinearBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::frozen_linear_backward(grad, ops.state));
        }
    }
}

impl<B: Backend + LowRankLinearBackend, C: CheckpointStrategy> LowRankLinearBackend for Autodiff<B, C> {
    fn low_rank_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scaling: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let a_trains = a.is_tracked();
        let prepared = LowRankLinearBackward.prepare::<C>([x.node(), a.node(), b.node()]).compute_bound().stateful();
        let [x, w, a, b, mask] = [x, w, a, b, mask].map(|t| t.into_primitive());
        match prepared {
            OpsKind::Tracked(prep) => {
                let (y, h) = B::low_rank_linear(x.clone(), w.clone(), a.clone(), b.clone(), mask.clone(), scaling);
                let state = (a_trains.then_some(x), w, a, b, mask, h.clone(), scaling);
                (prep.finish(state, y), constant::<B, C>(h))
            }
            OpsKind::UnTracked(prep) => {
                let (y, h) = B::low_rank_linear(x, w, a, b, mask, scaling);
                (prep.finish(y), constant::<B, C>(h))
            }
        }
    }

    fn low_rank_linear_backward(
        dy: FloatTensor<Self>,
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        h: FloatTensor<Self>,
        scaling: f32,
        wanted: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [dy, x, w, a, b, mask, h] = [dy, x, w, a, b, mask, h].map(|t| t.into_primitive());
        let (dx, da, db) = B::low_rank_linear_backward(dy, x, w, a, b, mask, h, scaling, wanted);
        (constant::<B, C>(dx), constant::<B, C>(da), constant::<B, C>(db))
    }

    fn frozen_linear(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let prepared = FrozenLinearBackward.prepare::<C>([x.node()]).compute_bound().stateful();
        let (x, w) = (x.into_primitive(), w.into_primitive());
        match prepared {
            OpsKind::Tracked(prep) => {
                let y = B::frozen_linear(x, w.clone());
                prep.finish(w, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::frozen_linear(x, w)),
        }
    }

    fn frozen_linear_backward(dy: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        constant::<B, C>(B::frozen_linear_backward(dy.into_primitive(), w.into_primitive()))
    }
}

/// The low-rank update of [`low_rank_linear`]: `scaling · ((x ⊙ mask)·a)·b`.
#[derive(Debug, Clone)]
pub struct LowRank {
    /// `A` `[in, r]`, f32.
    pub a: Tensor<2>,
    /// `B` `[r, out]`, f32.
    pub b: Tensor<2>,
    /// The dropout mask `[tokens, in]` (entries 0 or `1 / (1 − p)`), if any.
    pub mask: Option<Tensor<2>>,
    /// `s`.
    pub scaling: f64,
}

/// Whether [`low_rank_linear`] runs for `x` and the weight `w`: f32 on flex ([`super::has_cpu_kernels`]) and a
/// frozen `w` (no gradient is computed for it).
pub fn fits_low_rank_linear<const D: usize>(x: &Tensor<D>, w: &Tensor<2>) -> bool {
    super::has_cpu_kernels(&x.device(), x.dtype()) && w.dtype() == x.dtype() && !w.is_require_grad()
}

/// `x·w + scaling·((x ⊙ mask)·a)·b` for `x` `[tokens, in]` and a frozen weight `w` `[in, out]`: `[tokens, out]`.
/// Only where [`fits_low_rank_linear`] holds (the factors f32 as well); other backends and dtypes compute the same
/// function with tensor operations.
pub fn low_rank_linear(x: Tensor<2>, w: Tensor<2>, update: Option<LowRank>) -> Tensor<2> {
    let y = match update {
        Some(u) => {
            let mask = u.mask.unwrap_or_else(|| Tensor::zeros([0, 0], (&x.device(), burn::tensor::DType::F32)));
            <Dispatch as LowRankLinearBackend>::low_rank_linear(
                x.into_dispatch(),
                w.into_dispatch(),
                u.a.into_dispatch(),
                u.b.into_dispatch(),
                mask.into_dispatch(),
                u.scaling as f32,
            )
            .0
        }
        None => <Dispatch as LowRankLinearBackend>::frozen_linear(x.into_dispatch(), w.into_dispatch()),
    };
    Tensor::from_dispatch(y)
}

/// [`low_rank_linear`] over the tokens of `x` `[batch, seq, in]`: `[batch, seq, out]` (the mask, if any,
/// `[batch · seq, in]`).
pub fn low_rank_linear_3d(x: Tensor<3>, w: Tensor<2>, update: Option<LowRank>) -> Tensor<3> {
    let [batch, seq, d_in] = x.dims();
    let d_out = w.dims()[1];
    low_rank_linear(x.reshape([batch * seq, d_in]), w, update).reshape([batch, seq, d_out])
}
