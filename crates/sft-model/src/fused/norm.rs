//! RMSNorm as one differentiable operation: `y = x / √(mean(x²) + ε) ⊙ γ` over the last dimension.
//!
//! Burn's `RmsNorm` takes six passes (square, mean, add, sqrt, divide, scale), and autodiff keeps four of their
//! `[tokens, hidden]` results; this keeps `x` and one reciprocal RMS per row.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::RmsNorm;
use burn::prelude::*;
use burn::tensor::DType;

use super::{constant, contiguous, tensor, values};
use crate::kernels::rms_norm as kernel;

/// RMSNorm over the last dimension of a `[rows, width]` tensor.
#[backend_extension(Flex, Autodiff)]
pub trait RmsNormBackend: Backend {
    /// `x` `[rows, width]`, `gamma` `[width]`: `(y, rstd)` with `rstd` `[rows]` = `1 / √(mean(x²) + eps)`.
    fn rms_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `(∂x, ∂γ)` for the output gradient `dy`; `∂γ` only when `gamma_grad`.
    fn rms_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        gamma_grad: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>);

    /// `y` alone; differentiable on the autodiff backend.
    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        Self::rms_norm_forward(x, gamma, eps).0
    }
}

impl RmsNormBackend for Flex {
    fn rms_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (x, gamma) = (contiguous(x), contiguous(gamma));
        let shape = x.shape();
        let (y, rstd) = kernel::forward(values(&x), values(&gamma), eps as f32);
        let rows = rstd.len();
        (tensor(y, shape), tensor(rstd, [rows]))
    }

    fn rms_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        gamma_grad: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let [x, gamma, rstd, dy] = [x, gamma, rstd, dy].map(contiguous);
        let (dx, dgamma) = kernel::backward(values(&x), values(&gamma), values(&rstd), values(&dy), gamma_grad);
        let width = gamma.shape().num_elements();
        (tensor(dx, x.shape()), dgamma.map(|g| tensor(g, [width])))
    }
}

/// The backward of [`RmsNormBackend::rms_norm`].
#[derive(Debug)]
struct RmsNormBackward;

impl<B: Backend + RmsNormBackend> Backward<B, 2> for RmsNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, rstd) = ops.state;
        let (dx, dgamma) = B::rms_norm_backward(x, gamma, rstd, grad, node_gamma.is_some());
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
        if let (Some(node), Some(dgamma)) = (node_gamma, dgamma) {
            grads.register::<B>(node.id, dgamma);
        }
    }
}

impl<B: Backend + RmsNormBackend, C: CheckpointStrategy> RmsNormBackend for Autodiff<B, C> {
    fn rms_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, rstd) = B::rms_norm_forward(x.into_primitive(), gamma.into_primitive(), eps);
        (constant::<B, C>(y), constant::<B, C>(rstd))
    }

    fn rms_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        gamma_grad: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let [x, gamma, rstd, dy] = [x, gamma, rstd, dy].map(|t| t.into_primitive());
        let (dx, dgamma) = B::rms_norm_backward(x, gamma, rstd, dy, gamma_grad);
        (constant::<B, C>(dx), dgamma.map(constant::<B, C>))
    }

    fn rms_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        match RmsNormBackward.prepare::<C>([x.node(), gamma.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                let (y, rstd) = B::rms_norm_forward(x.clone(), gamma.clone(), eps);
                prep.finish((x, gamma, rstd), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rms_norm(x.into_primitive(), gamma.into_primitive(), eps)),
        }
    }
}

/// `norm.forward(x)` for `x` `[batch, seq, hidden]`: the fused operation for f32 on flex
/// ([`super::has_cpu_kernels`]), Burn's `RmsNorm` otherwise (the same function).
pub fn rms_norm(norm: &RmsNorm, x: Tensor<3>) -> Tensor<3> {
    if !super::has_cpu_kernels(&x.device(), x.dtype()) || norm.gamma.val().dtype() != x.dtype() {
        return norm.forward(x);
    }
    fused(x, norm.gamma.val(), norm.epsilon)
}

/// Gemma's RMSNorm: `x / √(mean(x²) + ε) ⊙ (1 + γ)`, computed in f32 whatever `x`'s dtype and cast back
/// (transformers' `Gemma3RMSNorm`); `x` `[batch, seq, width]`.
pub fn offset_rms_norm(norm: &RmsNorm, x: Tensor<3>) -> Tensor<3> {
    let dtype = x.dtype();
    let x = x.cast(DType::F32);
    let scale = norm.gamma.val().cast(DType::F32).add_scalar(1.0);
    let y = if super::has_cpu_kernels(&x.device(), DType::F32) {
        fused(x, scale, norm.epsilon)
    } else {
        let width = scale.dims()[0];
        let rstd = x.clone().square().mean_dim(2).add_scalar(norm.epsilon).sqrt().recip();
        x * rstd * scale.reshape([1, 1, width])
    };
    y.cast(dtype)
}

fn fused(x: Tensor<3>, gamma: Tensor<1>, epsilon: f64) -> Tensor<3> {
    let [batch, seq, hidden] = x.dims();
    let y = <Dispatch as RmsNormBackend>::rms_norm(
        x.reshape([batch * seq, hidden]).into_dispatch(),
        gamma.into_dispatch(),
        epsilon,
    );
    Tensor::<2>::from_dispatch(y).reshape([batch, seq, hidden])
}
