//! The cross-entropy of a chunk of logits with its gradient, for the chunked causal-LM loss: one operation
//! instead of max, subtract, exp, sum, log, gather, arg-max, compare, divide and scatter (ten passes over
//! `[rows, vocab]`, most of them on one core). Nothing here is differentiated: the chunked loss forms the gradient
//! by hand.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;

use super::{constant, contiguous, tensor};
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
}

/// [`CrossEntropyBackend::cross_entropy_chunk`] of f32 `logits` `[rows, vocab]` on flex
/// ([`super::has_cpu_kernels`]); labels are checked to be in the vocabulary by the caller.
pub fn cross_entropy_chunk(logits: Tensor<2>, labels: Vec<u32>, grad_scale: Option<f32>) -> (Tensor<2>, Tensor<1>) {
    let (grad, totals) =
        <Dispatch as CrossEntropyBackend>::cross_entropy_chunk(logits.into_dispatch(), labels, grad_scale);
    (Tensor::from_dispatch(grad), Tensor::from_dispatch(totals))
}
