//! Fused operations of the decoder on flex, each a backend extension with a hand-written backward over the
//! [`kernels`](crate::kernels): attention over causal segments with RoPE ([`segment_attention`]), RMSNorm
//! ([`rms_norm`]) and the SwiGLU product ([`swiglu`]); and, for the chunked loss, the cross-entropy of a chunk
//! of logits with its gradient ([`cross_entropy_chunk`]).
//!
//! Each replaces a chain of flex operations (one pass, one allocation and, for most, one core per operation;
//! autodiff keeps every intermediate) by one parallel pass forward and one backward, keeping only what the
//! backward needs. They run on the flex device (with or without autodiff) for f32 tensors; elsewhere, and for
//! other dtypes, the model takes the generic tensor-op path, which computes the same function.

pub(crate) mod attention;
pub(crate) mod cross_entropy;
pub(crate) mod linear;
pub(crate) mod norm;
pub(crate) mod swiglu;

pub use attention::segment_attention;
pub use cross_entropy::{cross_entropy_chunk, head_cross_entropy};
pub use linear::{LowRank, fits_low_rank_linear, low_rank_linear, low_rank_linear_3d};
pub use norm::{offset_rms_norm, rms_norm};
pub use swiglu::swiglu;

use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::prelude::*;
use burn::tensor::DType;

use crate::kernels::blas::View;

/// Whether the fused operations run for tensors of `dtype` on `device`: the flex CPU device (with or without
/// autodiff) and f32.
pub fn has_cpu_kernels(device: &Device, dtype: DType) -> bool {
    dtype == DType::F32 && device.clone().inner() == Device::flex()
}

/// The f32 elements of a flex tensor in row-major order (copied only when the layout is not contiguous).
pub(crate) fn contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.is_contiguous() { tensor } else { tensor.to_contiguous() }
}

/// A 2-D f32 flex tensor as a strided view (negative strides are made contiguous first by [`strided`]).
pub(crate) fn view(t: &FlexTensor) -> View<'_> {
    let layout = t.layout();
    let (shape, strides) = (layout.shape(), layout.strides());
    let data = t.storage::<f32>().get(layout.start_offset()..).unwrap_or_default();
    View { data, rows: shape[0], cols: shape[1], rs: strides[0].unsigned_abs(), cs: strides[1].unsigned_abs() }
}

/// `t` as it is when its strides are non-negative (a transposed weight stays a view), else a contiguous copy.
pub(crate) fn strided(t: FlexTensor) -> FlexTensor {
    if t.layout().strides().iter().all(|&s| s >= 0) { t } else { t.to_contiguous() }
}

/// The row-major f32 elements of a contiguous flex tensor (empty for another dtype, which the callers exclude).
pub(crate) fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().unwrap_or_default()
}

/// A flex tensor of `shape` owning `values` (no copy).
pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// An output of a helper operation (a forward that keeps state, a backward) on the autodiff backend as a
/// constant: autodiff never differentiates it.
pub(crate) fn constant<B: Backend, C: CheckpointStrategy>(tensor: FloatTensor<B>) -> FloatTensor<Autodiff<B, C>> {
    ConstantBackward.prepare::<C>([]).compute_bound().stateless(tensor)
}

/// The (empty) backward of [`constant`].
#[derive(Debug)]
struct ConstantBackward;

impl<B: Backend> Backward<B, 0> for ConstantBackward {
    type State = ();

    fn backward(self, _ops: Ops<Self::State, 0>, _grads: &mut Gradients, _checkpointer: &mut Checkpointer) {}
}

#[cfg(test)]
mod tests {
    use burn::nn::{LinearConfig, RmsNormConfig};
    use burn::prelude::*;
    use burn::tensor::{DType, Distribution};

    use crate::{LlamaAttention, ModelInput};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.inner().into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    #[test]
    fn segment_attention_equals_the_masked_path_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let (hidden, heads, kv, d) = (32, 4, 2, 8);
        let linear = |i, o| LinearConfig::new(i, o).with_bias(false).init(&device);
        let attn = LlamaAttention {
            q_proj: Some(linear(hidden, heads * d)),
            k_proj: Some(linear(hidden, kv * d)),
            v_proj: Some(linear(hidden, kv * d)),
            qkv_proj: None,
            o_proj: linear(heads * d, hidden),
            num_heads: heads,
            num_kv_heads: kv,
            head_dim: d,
            bias: crate::AttentionBias::default(),
            q_norm: None,
            k_norm: None,
            norm_offset: false,
            query_pre_attn_scalar: None,
            sliding_window: None,
        };
        // Row 0: one example of 9; row 1: two packed examples (4 + 3) and two padding tokens.
        let (batch, seq) = (2, 9);
        let mask = [[1u8; 9], [1, 1, 1, 1, 1, 1, 1, 0, 0]].concat();
        let sequences = [[0u32; 9], [0, 0, 0, 0, 1, 1, 1, 2, 2]].concat();
        let positions = [(0..9).collect::<Vec<u32>>(), vec![0, 1, 2, 3, 0, 1, 2, 0, 0]].concat();
        let ids = vec![0u32; batch * seq];
        let input =
            ModelInput::new(&ids, [batch, seq], Some(&mask), Some(&positions), Some(&sequences), &device).unwrap();
        let segments = input.segments.clone().unwrap();
        assert_eq!(segments, vec![(0, 9), (9, 4), (13, 3)]);
        let inv_freq = Tensor::<1>::from_floats(
            crate::rope::inv_freq(&crate::LlamaConfig::preset("tiny").unwrap())[..d / 2].to_vec().as_slice(),
            &device,
        );
        let (cos, sin) = crate::rope::cos_sin(&inv_freq, input.position_ids.clone(), DType::F32);
        let x = random([batch, seq, hidden], &device).require_grad();
        let weights = random([batch, seq, hidden], &device)
            * Tensor::<1>::from_floats(mask.iter().map(|&m| f32::from(m)).collect::<Vec<_>>().as_slice(), &device)
                .reshape([batch, seq, 1]);
        let run = |segments: Option<&[(usize, usize)]>| {
            let out = attn.forward(x.clone(), &cos, &sin, input.blocked.as_ref(), segments, None);
            let grads = (out.clone() * weights.clone()).sum().backward();
            let gx = values(x.grad(&grads).unwrap());
            let gw = values(attn.q_proj.as_ref().unwrap().weight.val().grad(&grads).unwrap());
            (values(out * weights.clone().abs().sign()), gx, gw)
        };
        let (fused, fused_gx, fused_gw) = run(Some(&segments));
        let (reference, reference_gx, reference_gw) = run(None);
        assert!(max_diff(&fused, &reference) < 1e-5, "outputs at real tokens: {}", max_diff(&fused, &reference));
        assert!(max_diff(&fused_gx, &reference_gx) < 1e-4, "∂x: {}", max_diff(&fused_gx, &reference_gx));
        assert!(max_diff(&fused_gw, &reference_gw) < 1e-4, "∂q_proj: {}", max_diff(&fused_gw, &reference_gw));
    }

    #[test]
    fn segments_are_none_when_padding_splits_an_example() {
        let device = Device::flex();
        let ids = [0u32; 6];
        let split = ModelInput::new(&ids, [1, 6], Some(&[1, 1, 0, 1, 1, 0]), None, None, &device).unwrap();
        assert_eq!(split.segments, None);
        let left = ModelInput::new(&ids, [2, 3], Some(&[0, 1, 1, 1, 1, 1]), None, None, &device).unwrap();
        assert_eq!(left.segments, Some(vec![(1, 2), (3, 3)]));
        let reused = ModelInput::new(&ids, [1, 6], None, None, Some(&[0, 0, 1, 1, 0, 0]), &device).unwrap();
        assert_eq!(reused.segments, None);
    }

    #[test]
    fn a_padding_free_input_has_the_mask_of_the_packed_row() {
        let device = Device::flex();
        let ids = [3u32, 4, 5, 6, 7];
        let (positions, sequences) = ([0u32, 1, 2, 0, 1], [1u32, 1, 1, 2, 2]);
        let flat = ModelInput::padding_free(&ids, &positions, &sequences, &device).unwrap();
        assert_eq!((flat.blocked.is_none(), flat.segments.clone()), (true, Some(vec![(0, 3), (3, 2)])));
        let packed = ModelInput::new(&ids, [1, 5], None, Some(&positions), Some(&sequences), &device).unwrap();
        let bools = |t: Tensor<4, Bool>| t.into_data().try_to_vec::<bool>().unwrap_or_default();
        assert_eq!(bools(flat.mask()), bools(packed.blocked.unwrap()));
        assert!(ModelInput::padding_free(&ids, &positions, &[1, 2, 1, 2, 2], &device).is_err());
        assert!(ModelInput::padding_free(&ids, &positions[..4], &sequences, &device).is_err());
    }

    #[test]
    fn low_rank_linear_equals_tensor_ops_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let (tokens, d_in, d_out, r) = (37, 48, 40, 4);
        // The weight as checkpoints give it: the transpose of an [out, in] matrix (a strided view), frozen.
        let w = random([d_out, d_in], &device).transpose();
        let x = random([tokens, d_in], &device).require_grad();
        let a = random([d_in, r], &device).require_grad();
        let b = random([r, d_out], &device).require_grad();
        let keep = Tensor::<2>::random([tokens, d_in], Distribution::Uniform(0.0, 1.0), &device).greater_elem(0.2);
        let mask = keep.float().mul_scalar(1.0 / 0.8);
        let upstream = random([tokens, d_out], &device);
        let grads_of = |y: Tensor<2>| {
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let g = |t: &Tensor<2>| t.grad(&grads).map(values).unwrap_or_default();
            (values(y), g(&x), g(&a), g(&b))
        };
        for mask in [Some(mask.clone()), None] {
            let update = super::LowRank { a: a.clone(), b: b.clone(), mask: mask.clone(), scaling: 0.75 };
            assert!(super::fits_low_rank_linear(&x, &w));
            let fused = grads_of(super::low_rank_linear(x.clone(), w.clone(), Some(update)));
            let xm = mask.map_or_else(|| x.clone(), |m| x.clone() * m);
            let generic =
                grads_of(x.clone().matmul(w.clone()) + xm.matmul(a.clone()).matmul(b.clone()).mul_scalar(0.75));
            for (name, f, g) in [
                ("y", &fused.0, &generic.0),
                ("∂x", &fused.1, &generic.1),
                ("∂a", &fused.2, &generic.2),
                ("∂b", &fused.3, &generic.3),
            ] {
                assert!(!g.is_empty() && max_diff(f, g) < 1e-4, "{name}: {}", max_diff(f, g));
            }
        }
        // Without an update: the frozen product and its input gradient.
        let (y, dx, _, _) = grads_of(super::low_rank_linear(x.clone(), w.clone(), None));
        let (y_ref, dx_ref, _, _) = grads_of(x.clone().matmul(w.clone()));
        assert!(max_diff(&y, &y_ref) < 1e-4 && max_diff(&dx, &dx_ref) < 1e-4);
        // A trainable weight does not fit (its gradient would be missing).
        assert!(!super::fits_low_rank_linear(&x, &w.clone().require_grad()));
    }

    #[test]
    fn head_cross_entropy_equals_the_logits_path() {
        let device = Device::flex();
        let (rows, hidden, vocab) = (19, 24, 300);
        // A tied head: the transposed embeddings (a strided view).
        let w = random([vocab, hidden], &device).transpose();
        let h = random([rows, hidden], &device);
        let labels: Vec<u32> = (0..rows as u32).map(|i| (i * 37) % vocab as u32).collect();
        let (grad, totals) = super::cross_entropy_chunk(h.clone().matmul(w.clone()), labels.clone(), Some(0.5));
        let reference = values(grad.matmul(w.clone().transpose()));
        let (dh, fused_totals) = super::head_cross_entropy(h.clone(), w.clone(), labels.clone(), Some(0.5));
        assert!(max_diff(&values(dh), &reference) < 1e-5);
        let (t, f) = (values(totals), values(fused_totals));
        assert!((t[0] - f[0]).abs() < 1e-3 * t[0].abs() && t[1] == f[1], "{t:?} vs {f:?}");
        // Without a gradient: the totals alone.
        let (none, no_grad_totals) = super::head_cross_entropy(h, w, labels, None);
        assert_eq!(none.dims(), [0, hidden]);
        assert_eq!(values(no_grad_totals), f);
    }

    #[test]
    fn rms_norm_equals_burns_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let mut norm = RmsNormConfig::new(24).with_epsilon(1e-5).init(&device);
        norm.gamma = burn::module::Param::from_tensor((random([24], &device) + 1.0).detach().require_grad());
        let x = random([3, 5, 24], &device).require_grad();
        let w = random([3, 5, 24], &device);
        let run = |fused: bool| {
            let y = if fused { super::rms_norm(&norm, x.clone()) } else { norm.forward(x.clone()) };
            let grads = (y.clone() * w.clone()).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()), values(norm.gamma.val().grad(&grads).unwrap()))
        };
        let (a, b) = (run(true), run(false));
        assert!(max_diff(&a.0, &b.0) < 1e-5 && max_diff(&a.1, &b.1) < 1e-4 && max_diff(&a.2, &b.2) < 1e-4);
    }

    #[test]
    fn swiglu_equals_silu_times_up_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let (gate, up) = (random([2, 7, 40], &device).require_grad(), random([2, 7, 40], &device).require_grad());
        let w = random([2, 7, 40], &device);
        let run = |fused: bool| {
            let y = if fused {
                super::swiglu(gate.clone(), up.clone())
            } else {
                burn::tensor::activation::silu(gate.clone()) * up.clone()
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            (values(y), values(gate.grad(&grads).unwrap()), values(up.grad(&grads).unwrap()))
        };
        let (a, b) = (run(true), run(false));
        assert!(max_diff(&a.0, &b.0) < 1e-5 && max_diff(&a.1, &b.1) < 1e-5 && max_diff(&a.2, &b.2) < 1e-5);
    }
}
