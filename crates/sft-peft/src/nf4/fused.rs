//! The fused NF4 matmul: a backend extension with a hand-written backward.
//!
//! `nf4_matmul(x, packed, absmax)` computes `x · Wᵀ` for an NF4 weight `W` `[out, in]` without keeping the dense
//! weight: the forward dequantizes into a temporary and multiplies, and the backward dequantizes again to compute
//! `∂x = ∂y · W`. Autodiff stores only the packed codes and scales (as bitsandbytes' `MatMul4Bit` does), so a
//! QLoRA step never holds dense copies of the frozen weights. No gradient reaches the weight.
//!
//! Backends: `Flex` (CPU: the bytes are decoded on the host by byte-pair lookup, blocks in parallel), `Cube`
//! (wgpu, CUDA: a CubeCL dequantization kernel, with the `wgpu` or `cuda` feature) and `Autodiff` over either.
//! Other backends use [`Nf4Linear`](super::Nf4Linear)'s generic tensor-op path.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Flex, backend_extension};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::codebook::NF4;
use super::weight::BLOCKSIZE;

/// The fused NF4 operations.
#[backend_extension(Flex, Cube: cfg(any(feature = "wgpu", feature = "cuda")), Autodiff)]
pub trait Nf4Backend: Backend {
    /// The dequantized f32 weight `[out, in]` from bitsandbytes' packed bytes (held four to an I32 word,
    /// little-endian) and block scales `[blocks]`.
    fn nf4_dequantize(packed: IntTensor<Self>, absmax: FloatTensor<Self>, shape: [usize; 2]) -> FloatTensor<Self>;

    /// `x` `[m, in]` times the transposed NF4 weight `[out, in]`, dequantized to `x`'s dtype (f32 or bf16: the
    /// compute dtype): `[m, out]` in that dtype. Differentiable in `x` only.
    fn nf4_matmul(
        x: FloatTensor<Self>,
        packed: IntTensor<Self>,
        absmax: FloatTensor<Self>,
        shape: [usize; 2],
    ) -> FloatTensor<Self>;
}

// The flex path reads the I32 words' storage as bitsandbytes' byte order.
const _: () = assert!(cfg!(target_endian = "little"), "the NF4 flex path assumes a little-endian host");

/// `[NF4[b >> 4], NF4[b & 15]]` for every byte value `b`.
pub(crate) fn byte_pairs() -> [[f32; 2]; 256] {
    let mut table = [[0.0; 2]; 256];
    for (b, pair) in table.iter_mut().enumerate() {
        *pair = [NF4[b >> 4], NF4[b & 0x0f]];
    }
    table
}

/// Decodes `packed` with `absmax` into a row-major `[out, in]` f32 buffer, blocks in parallel.
pub(crate) fn decode(packed: &[u8], absmax: &[f32], n: usize) -> Vec<f32> {
    let pairs = byte_pairs();
    let mut out = vec![0f32; n];
    out.par_chunks_mut(BLOCKSIZE).zip(absmax.par_iter()).enumerate().for_each(|(b, (chunk, &scale))| {
        let bytes = packed.get(b * BLOCKSIZE / 2..).unwrap_or_default();
        for (values, byte) in chunk.chunks_mut(2).zip(bytes) {
            let [high, low] = pairs[usize::from(*byte)];
            values[0] = high * scale;
            if let Some(second) = values.get_mut(1) {
                *second = low * scale;
            }
        }
    });
    out
}

/// The dequantized weight `[out, in]` in `dtype` (cast from the f32 result unless f32).
pub(crate) fn dequantize_as<B: Nf4Backend>(
    packed: IntTensor<B>,
    absmax: FloatTensor<B>,
    shape: [usize; 2],
    dtype: DType,
) -> FloatTensor<B> {
    let weight = B::nf4_dequantize(packed, absmax, shape);
    if dtype == DType::F32 { weight } else { B::float_cast(weight, dtype.into()) }
}

/// `x · dequantize(W)ᵀ` in `x`'s dtype: the matmul both backends share once the weight is decoded.
pub(crate) fn matmul_dequantized<B: Nf4Backend>(
    x: FloatTensor<B>,
    packed: IntTensor<B>,
    absmax: FloatTensor<B>,
    shape: [usize; 2],
) -> FloatTensor<B> {
    let weight = dequantize_as::<B>(packed, absmax, shape, x.dtype());
    B::float_matmul(x, B::float_transpose(weight))
}

impl Nf4Backend for Flex {
    fn nf4_dequantize(packed: IntTensor<Self>, absmax: FloatTensor<Self>, shape: [usize; 2]) -> FloatTensor<Self> {
        let (packed, absmax) = (packed.to_contiguous(), absmax.to_contiguous());
        let n = shape[0] * shape[1];
        // The I32 words' storage is bitsandbytes' byte sequence (little-endian words).
        let bytes: &[u8] = packed.bytes().get(..n.div_ceil(2)).unwrap_or_default();
        let scales: &[f32] = absmax.as_slice::<f32>().unwrap_or_default();
        let values = decode(bytes, scales, n);
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    fn nf4_matmul(
        x: FloatTensor<Self>,
        packed: IntTensor<Self>,
        absmax: FloatTensor<Self>,
        shape: [usize; 2],
    ) -> FloatTensor<Self> {
        matmul_dequantized::<Self>(x, packed, absmax, shape)
    }
}

/// The (empty) backward of a constant produced by an extension op.
#[derive(Debug)]
struct ConstantBackward;

impl<B: Backend> Backward<B, 0> for ConstantBackward {
    type State = ();

    fn backward(self, _ops: Ops<Self::State, 0>, _grads: &mut Gradients, _checkpointer: &mut Checkpointer) {}
}

/// The backward of [`Nf4Backend::nf4_matmul`]: `∂x = ∂y · dequantize(W)`, in `∂y`'s dtype.
#[derive(Debug)]
struct Nf4MatmulBackward;

impl<B: Backend + Nf4Backend> Backward<B, 1> for Nf4MatmulBackward {
    type State = (IntTensor<B>, FloatTensor<B>, [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (packed, absmax, shape) = ops.state;
        if let Some(node) = node_x {
            let weight = dequantize_as::<B>(packed, absmax, shape, grad.dtype());
            grads.register::<B>(node.id, B::float_matmul(grad, weight));
        }
    }
}

impl<B: Backend + Nf4Backend, C: CheckpointStrategy> Nf4Backend for Autodiff<B, C> {
    fn nf4_dequantize(packed: IntTensor<Self>, absmax: FloatTensor<Self>, shape: [usize; 2]) -> FloatTensor<Self> {
        let weight = B::nf4_dequantize(packed, absmax.into_primitive(), shape);
        // A constant: an op without parents is never tracked.
        ConstantBackward.prepare::<C>([]).compute_bound().stateless(weight)
    }

    fn nf4_matmul(
        x: FloatTensor<Self>,
        packed: IntTensor<Self>,
        absmax: FloatTensor<Self>,
        shape: [usize; 2],
    ) -> FloatTensor<Self> {
        let absmax = absmax.into_primitive();
        match Nf4MatmulBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::nf4_matmul(x.primitive().clone(), packed.clone(), absmax.clone(), shape);
                prep.finish((packed, absmax, shape), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::nf4_matmul(x.into_primitive(), packed, absmax, shape)),
        }
    }
}
