//! The SwiGLU product `silu(gate) ⊙ up` as one differentiable operation.
//!
//! The generic path runs `sigmoid`, two multiplications and autodiff's bookkeeping for each; this is one pass
//! forward and one backward, keeping only `gate` and `up` (which the projections' backward needs anyway).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::{constant, contiguous, tensor, values};
use crate::kernels::swiglu as kernel;

/// The SwiGLU product of two tensors of the same shape.
#[backend_extension(Flex, Autodiff)]
pub trait SwigluBackend: Backend {
    /// `silu(gate) ⊙ up`.
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `(∂gate, ∂up)` for the output gradient `dy`.
    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

impl SwigluBackend for Flex {
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        let (gate, up) = (contiguous(gate), contiguous(up));
        tensor(kernel::forward(values(&gate), values(&up)), gate.shape())
    }

    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [gate, up, dy] = [gate, up, dy].map(contiguous);
        let (dgate, dup) = kernel::backward(values(&gate), values(&up), values(&dy));
        (tensor(dgate, gate.shape()), tensor(dup, gate.shape()))
    }
}

/// The backward of [`SwigluBackend::swiglu`].
#[derive(Debug)]
struct SwigluBackward;

impl<B: Backend + SwigluBackend> Backward<B, 2> for SwigluBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_gate, node_up] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (gate, up) = ops.state;
        let (dgate, dup) = B::swiglu_backward(gate, up, grad);
        for (node, grad) in [(node_gate, dgate), (node_up, dup)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + SwigluBackend, C: CheckpointStrategy> SwigluBackend for Autodiff<B, C> {
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        match SwigluBackward.prepare::<C>([gate.node(), up.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (gate, up) = (gate.into_primitive(), up.into_primitive());
                let y = B::swiglu(gate.clone(), up.clone());
                prep.finish((gate, up), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::swiglu(gate.into_primitive(), up.into_primitive())),
        }
    }

    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dgate, dup) = B::swiglu_backward(gate.into_primitive(), up.into_primitive(), dy.into_primitive());
        (constant::<B, C>(dgate), constant::<B, C>(dup))
    }
}

/// `silu(gate) ⊙ up` for tensors of one shape: the fused operation for f32 on flex
/// ([`super::has_cpu_kernels`]), tensor ops otherwise (the same function).
pub fn swiglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    if !super::has_cpu_kernels(&gate.device(), gate.dtype()) || up.dtype() != gate.dtype() {
        return silu(gate) * up;
    }
    Tensor::from_dispatch(<Dispatch as SwigluBackend>::swiglu(gate.into_dispatch(), up.into_dispatch()))
}
