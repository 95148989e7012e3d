//! The cross-entropy of a chunk of logits with its gradient, for the chunked causal-LM loss: one operation
//! instead of max, subtract, exp, sum, log, gather, arg-max, compare, divide and scatter (ten passes over
//! `[rows, vocab]`, most of them on one core). Nothing here is differentiated: the chunked loss forms the gradient
//! by hand.
//!
//! [`head_cross_entropy`] goes one step further for a frozen f32 head: the logits of the chunk are one `gemm` into
//! a buffer the kernel then turns into the gradient in place, and the hidden states' gradient a second `gemm` on
//! the head weight's own strides (no zeroed-then-realigned outputs, no copy of a transposed or tied weight).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;

use super::{constant, contiguous, strided, tensor, values, view};
use crate::kernels::blas::{View, product};
use crate::kernels::cross_entropy as kernel;

/// Cross-entropy of logit rows against labels.
#[backend_extension(Flex, Autodiff)]
pub trait CrossEntropyBackend: Backend {
    /// `logits` f32 `[rows, vocab]`, one label per row (each `< vocab`): `(gradient, totals)`, the gradient
    /// `grad_scale · (softmax(row) − one_hot(label))` `[rows, vocab]` (the logits themselves without a
    /// `grad_scale`), `totals` `[2]` = (Σ −log softmax(row)[label], rows whose first maximal logit is the label).
    fn cross_entropy_chunk(
        logits: FloatTensor<Self>,
        labels: Vec<u32>,
        grad_scale: Option<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// For hidden states `h` f32 `[rows, hidden]` and a head weight `w` f32 `[hidden, vocab]`: `(∂h, totals)`
    /// with `∂h = grad_scale · (softmax(h·w) − one_hot(label)) · wᵀ` `[rows, hidden]` (`[0, hidden]` without a
    /// `grad_scale`) and `totals` as [`cross_entropy_chunk`](Self::cross_entropy_chunk)'s.
    fn head_cross_entropy(
        h: FloatTensor<Self>,
        w: FloatTensor<Self>,
        labels: Vec<u32>,
        grad_scale: Option<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

impl CrossEntropyBackend for Flex {
    fn cross_entropy_chunk(
        logits: FloatTensor<Self>,
        labels: Vec<u32>,
        grad_scale: Option<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let logits = contiguous(logits);
        let shape = logits.shape();
        let vocab = shape.as_slice().last().copied().unwrap_or(0);
        // The buffer is reused when the tensor is not shared (the logits of a chunk never are).
        let mut values = logits.into_data().try_into_vec::<f32>().unwrap_or_default();
        let totals = kernel::cross_entropy(&mut values, &labels, vocab, grad_scale);
        (tensor(values, shape), tensor(vec![totals.sum as f32, totals.correct as f32], [2]))
    }

    fn head_cross_entropy(
        h: FloatTensor<Self>,
        w: FloatTensor<Self>,
        labels: Vec<u32>,
        grad_scale: Option<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (h, w) = (contiguous(h), strided(w));
        let wv = view(&w);
        let (hidden, vocab) = (wv.rows, wv.cols);
        let rows = labels.len();
        let mut logits = product(View::row_major(values(&h), rows, hidden), wv, 1.0);
        let totals = kernel::cross_entropy(&mut logits, &labels, vocab, grad_scale);
        let dh = match grad_scale {
            Some(_) => tensor(product(View::row_major(&logits, rows, vocab), wv.t(), 1.0), [rows, hidden]),
            None => tensor(Vec::new(), [0, hidden]),
        };
        (dh, tensor(vec![totals.sum as f32, totals.correct as f32], [2]))
    }
}

impl<B: Backend + CrossEntropyBackend, C: CheckpointStrategy> CrossEntropyBackend for Autodiff<B, C> {
    fn cross_entropy_chunk(
        logits: FloatTensor<Self>,
        labels: Vec<u32>,
        grad_scale: Option<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (grad, totals) = B::cross_entropy_chunk(logits.into_primitive(), labels, grad_scale);
        (constant::<B, C>(grad), constant::<B, C>(totals))
    }

    fn head_cross_entropy(
        h: FloatTensor<Self>,
        w: FloatTensor<Self>,
        labels: Vec<u32>,
        grad_scale: Option<f32>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dh, totals) = B::head_cross_entropy(h.into_primitive(), w.into_primitive(), labels, grad_scale);
        (constant::<B, C>(dh), constant::<B, C>(totals))
    }
}

/// [`CrossEntropyBackend::cross_entropy_chunk`] of f32 `logits` `[rows, vocab]` on flex
/// ([`super::has_cpu_kernels`]); labels are checked to be in the vocabulary by the caller.
pub fn cross_entropy_chunk(logits: Tensor<2>, labels: Vec<u32>, grad_scale: Option<f32>) -> (Tensor<2>, Tensor<1>) {
    let (grad, totals) =
        <Dispatch as CrossEntropyBackend>::cross_entropy_chunk(logits.into_dispatch(), labels, grad_scale);
    (Tensor::from_dispatch(grad), Tensor::from_dispatch(totals))
}

/// [`CrossEntropyBackend::head_cross_entropy`] of f32 hidden states `h` `[rows, hidden]` and head weight `w`
/// `[hidden, vocab]` on flex ([`super::has_cpu_kernels`]): `(∂h, totals)`, nothing differentiated; labels are
/// checked to be in the vocabulary by the caller.
pub fn head_cross_entropy(
    h: Tensor<2>,
    w: Tensor<2>,
    labels: Vec<u32>,
    grad_scale: Option<f32>,
) -> (Tensor<2>, Tensor<1>) {
    let (dh, totals) =
        <Dispatch as CrossEntropyBackend>::head_cross_entropy(h.into_dispatch(), w.into_dispatch(), labels, grad_scale);
    (Tensor::from_dispatch(dh), Tensor::from_dispatch(totals))
}
