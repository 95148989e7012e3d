//! The attention softmax as one differentiable operation (a backend extension with a hand-written backward).
//!
//! Autodiff through `mask_fill` + `softmax` records every intermediate (the filled scores, the row maxima and
//! their arg-max indices, the exponentials, the sums) for the backward. This operation keeps only its output `P`,
//! and its backward is `∂S = P ⊙ (∂P − Σ_k ∂P ⊙ P)`: three passes instead of a dozen, and one `[b, h, q, k]` tensor
//! kept per layer instead of about five.
//!
//! Blocked positions get exactly 0: the shifted scores are filled with −∞ before `exp` (which returns 0 for −∞
//! without the slow underflow path that a large finite negative takes in libm). A row with every key blocked (a
//! padding row of a packed batch) gets all zeros instead of NaN.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
use burn::backend::Cube;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::Scalar;

/// The masked softmax over the last dimension.
#[backend_extension(Flex, Cube: cfg(any(feature = "wgpu", feature = "cuda")), Autodiff)]
pub trait MaskedSoftmaxBackend: Backend {
    /// `softmax(scores)` over the last dimension with the `blocked` positions (true) excluded: f32 `scores` and a
    /// `blocked` mask of the same 4-D shape; blocked positions and fully blocked rows give 0.
    fn masked_softmax(scores: FloatTensor<Self>, blocked: BoolTensor<Self>) -> FloatTensor<Self> {
        masked_softmax_forward::<Self>(scores, blocked)
    }
}

impl MaskedSoftmaxBackend for Flex {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl MaskedSoftmaxBackend for Cube {}

/// The forward pass with the operations of any backend.
fn masked_softmax_forward<B: Backend>(scores: FloatTensor<B>, blocked: BoolTensor<B>) -> FloatTensor<B> {
    let last = 3;
    let filled = B::float_mask_fill(scores, blocked.clone(), Scalar::Float(f64::from(f32::MIN)));
    let max = B::float_max_dim(filled.clone(), last);
    let shifted = B::float_mask_fill(B::float_sub(filled, max), blocked, Scalar::Float(f64::NEG_INFINITY));
    let exp = B::float_exp(shifted);
    let sum = B::float_clamp_min(B::float_sum_dim(exp.clone(), last), Scalar::Float(f64::from(f32::MIN_POSITIVE)));
    B::float_div(exp, sum)
}

/// The backward of [`MaskedSoftmaxBackend::masked_softmax`]: `∂S = P ⊙ (∂P − Σ_k ∂P ⊙ P)`.
#[derive(Debug)]
struct MaskedSoftmaxBackward;

impl<B: Backend> Backward<B, 1> for MaskedSoftmaxBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let probs = ops.state;
        if let Some(node) = node {
            let weighted = B::float_mul(grad, probs.clone());
            let row = B::float_sum_dim(weighted.clone(), 3);
            grads.register::<B>(node.id, B::float_sub(weighted, B::float_mul(probs, row)));
        }
    }
}

impl<B: Backend + MaskedSoftmaxBackend, C: CheckpointStrategy> MaskedSoftmaxBackend for Autodiff<B, C> {
    fn masked_softmax(scores: FloatTensor<Self>, blocked: BoolTensor<Self>) -> FloatTensor<Self> {
        match MaskedSoftmaxBackward.prepare::<C>([scores.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let probs = B::masked_softmax(scores.into_primitive(), blocked);
                prep.finish(probs.clone(), probs)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::masked_softmax(scores.into_primitive(), blocked)),
        }
    }
}

/// `softmax(scores)` over the last dimension of f32 `scores` `[b, h, q, k]` with `blocked` positions (same shape,
/// true) excluded: [`MaskedSoftmaxBackend`] on flex and the CubeCL backend, `mask_fill` + `softmax` elsewhere.
pub fn masked_softmax(scores: Tensor<4>, blocked: Tensor<4, Bool>) -> Tensor<4> {
    if crate::has_extensions(&scores.device()) {
        let probs = <Dispatch as MaskedSoftmaxBackend>::masked_softmax(scores.into_dispatch(), blocked.into_dispatch());
        return Tensor::from_dispatch(probs);
    }
    burn::tensor::activation::softmax(scores.mask_fill(blocked, f32::MIN), 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        sft_rand::SplitMix64::new(seed).normals(n, 3.0)
    }

    #[test]
    fn equals_mask_fill_and_softmax_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let shape = [2, 3, 5, 7];
        let n = shape.iter().product();
        let scores = Tensor::<4>::from_data(TensorData::new(data(n, 1), shape), &device).require_grad();
        // Causal-style mask plus a few random blocks; row (0, 0, 0) keeps only key 0.
        let blocked: Vec<bool> = (0..n).map(|i| (i % 7) > (i / 7) % 5 || i % 11 == 3).collect();
        let blocked = Tensor::<4, Bool>::from_data(TensorData::new(blocked, shape), &device);
        let weights = Tensor::<4>::from_data(TensorData::new(data(n, 2), shape), &device);

        let ours = masked_softmax(scores.clone(), blocked.clone());
        let reference = burn::tensor::activation::softmax(scores.clone().mask_fill(blocked.clone(), f32::MIN), 3);
        let values = |t: Tensor<4>| t.inner().into_data().try_to_vec::<f32>().unwrap_or_default();
        let (a, b) = (values(ours.clone()), values(reference.clone()));
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff <= 1e-6, "values differ by {diff}");
        let masked: Vec<bool> = blocked.clone().inner().into_data().try_to_vec::<bool>().unwrap_or_default();
        assert!(a.iter().zip(&masked).all(|(p, &m)| !m || *p == 0.0), "blocked positions are exactly 0");

        let grad = |p: Tensor<4>| values(scores.grad(&(p * weights.clone()).sum().backward()).unwrap().reshape(shape));
        let (ga, gb) = (grad(ours), grad(reference));
        let diff = ga.iter().zip(&gb).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff <= 1e-5, "gradients differ by {diff}");
    }

    #[test]
    fn a_fully_blocked_row_is_zero_not_nan() {
        let device = Device::flex();
        let scores = Tensor::<4>::from_data(TensorData::new(data(6, 3), [1, 1, 2, 3]), &device);
        let blocked = Tensor::<4, Bool>::from_data(
            TensorData::new(vec![true, true, true, false, true, false], [1, 1, 2, 3]),
            &device,
        );
        let p: Vec<f32> = masked_softmax(scores, blocked).into_data().try_to_vec().unwrap_or_default();
        assert_eq!(&p[..3], &[0.0, 0.0, 0.0]);
        assert!((p[3] + p[5] - 1.0).abs() < 1e-6 && p[4] == 0.0, "{p:?}");
    }
}
