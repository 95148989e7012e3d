//! NF4 against bitsandbytes (`tests/fixtures/nf4/`): packed bytes, absmax, double quantization and dequantized
//! weights, bit for bit; the device path equals the host path; error bounds and memory accounting.

use burn::prelude::*;
use burn::tensor::DType;
use proptest::prelude::*;
use sft_peft::nf4::codebook::{NF4, dynamic_map};
use sft_peft::nf4::{Absmax, Nf4Linear, Nf4Weight, double_quantize};

use crate::{Tensors, values};

fn fixture() -> Tensors {
    Tensors::open(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nf4/nf4.safetensors"))
}

fn bytes(t: &Tensors, name: &str) -> Vec<u8> {
    t.raw(name).2
}

#[test]
fn codebooks_equal_bitsandbytes() {
    let f = fixture();
    assert_eq!(f.f32("code.nf4").0, NF4.to_vec());
    let map = dynamic_map();
    let theirs = f.f32("code.dynamic").0;
    let differ: Vec<usize> = (0..256).filter(|&i| map[i].to_bits() != theirs[i].to_bits()).collect();
    assert!(differ.is_empty(), "dynamic map entries differ at {differ:?}");
}

#[test]
fn quantization_is_bit_identical_to_bitsandbytes() {
    let f = fixture();
    let (weight, shape) = f.f32("weight");
    let q = Nf4Weight::quantize(&weight, [shape[0], shape[1]], false);
    assert_eq!(q.packed, bytes(&f, "nf4.packed"), "packed codes");
    assert_eq!(f.raw("nf4.packed").1, vec![16384, 1]);
    let Absmax::F32(absmax) = &q.absmax else { panic!("plain absmax expected") };
    assert_eq!(absmax, &f.f32("nf4.absmax").0, "absmax");
    let dequant = q.dequantize();
    let expected = f.f32("nf4.dequant").0;
    assert!(dequant.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "dequantized weight");

    // Double quantization with our own offset (the correctly rounded mean): codes equal, offset within 1 ulp,
    // dequantized weight within 1e-8.
    let dq = Nf4Weight::quantize(&weight, [128, 256], true);
    assert_eq!(dq.packed, q.packed, "the 4-bit codes do not depend on double quantization");
    let Absmax::Double { codes, nested, offset } = &dq.absmax else { panic!("double quant expected") };
    assert_eq!(codes, &bytes(&f, "dq.absmax_q"));
    let bnb_offset = f.f32("dq.offset").0[0];
    assert!(offset.to_bits().abs_diff(bnb_offset.to_bits()) <= 1, "offset {offset} vs {bnb_offset}");
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    // `absmax − offset` moves with the offset's last bit, and so does its per-block maximum.
    assert!(close(nested, &f.f32("dq.nested_absmax").0) <= 1e-8, "nested absmax");
    assert!(close(&dq.absmax_values(), &f.f32("dq.absmax_dequant").0) <= 1e-8);
    assert!(close(&dq.dequantize(), &f.f32("dq.dequant").0) <= 1e-8);

    // Given bitsandbytes' offset (as a checkpoint's quant state carries it), the whole chain is exact.
    let given = Nf4Weight { absmax: double_quantize(absmax, Some(bnb_offset)), ..dq.clone() };
    let Absmax::Double { codes, nested, .. } = &given.absmax else { panic!("double quant expected") };
    assert_eq!(codes, &bytes(&f, "dq.absmax_q"));
    assert_eq!(nested, &f.f32("dq.nested_absmax").0);
    assert_eq!(given.absmax_values(), f.f32("dq.absmax_dequant").0);
    assert_eq!(given.dequantize(), f.f32("dq.dequant").0);
}

#[test]
fn the_device_dequantization_equals_the_host_one() {
    let f = fixture();
    let (weight, _) = f.f32("weight");
    let device = Device::flex();
    for double in [false, true] {
        let q = Nf4Weight::quantize(&weight, [128, 256], double);
        let linear = Nf4Linear::new(&q, DType::F32, &device);
        assert_eq!(values(linear.dequantize_generic()), q.dequantize(), "generic path, double quant {double}");
        assert_eq!(values(linear.dequantize_fused().unwrap()), q.dequantize(), "fused path, double quant {double}");
        assert_eq!(values(linear.dequantize()), q.dequantize());
    }
}

#[test]
fn memory_is_4_5_bits_or_4_127_with_double_quant() {
    // A Llama-sized projection: 2048 × 2048.
    let n = 2048 * 2048;
    let weight: Vec<f32> = sft_rand::SplitMix64::new(1).normals(n, 0.02);
    let plain = Nf4Weight::quantize(&weight, [2048, 2048], false);
    let double = Nf4Weight::quantize(&weight, [2048, 2048], true);
    // n/2 packed bytes + 4 bytes per 64 weights = 0.5625 bytes per weight (4.5 bits).
    assert_eq!(plain.bytes(), n / 2 + 4 * n / 64);
    assert!((plain.bytes() as f64 / n as f64 - 0.5625).abs() < 1e-12);
    // n/2 + 1 byte per 64 weights + 4 bytes per 256 blocks + the offset ≈ 0.5159 bytes (4.127 bits).
    let per_weight = double.bytes() as f64 / n as f64;
    assert!((per_weight - (0.5 + 1.0 / 64.0 + 4.0 / (64.0 * 256.0))).abs() < 1e-6, "{per_weight}");
    assert!((per_weight * 8.0 - 4.127).abs() < 0.001);
    let device = Device::flex();
    assert_eq!(Nf4Linear::new(&plain, DType::F32, &device).quantized_bytes(), plain.bytes());
    // On the device: the same bytes (held in I32 words, n/2 is a multiple of 4 here), plus 4 bytes for the offset
    // as f64.
    assert_eq!(Nf4Linear::new(&double, DType::F32, &device).quantized_bytes(), double.bytes() + 4);
}

/// The largest gap between neighbouring NF4 values: −1.0 … −0.6962.
fn max_half_gap() -> f32 {
    NF4.windows(2).map(|w| w[1] - w[0]).fold(0.0, f32::max) / 2.0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any shape (blocks straddling rows, partial last block, odd sizes): the error of each element is at most
    /// half the largest codebook gap times its block's absmax, and the device path equals the host path.
    #[test]
    fn quantize_dequantize_error_is_bounded(rows in 1usize..24, cols in 1usize..150, seed in 0u64..1000, double in any::<bool>()) {
        let n = rows * cols;
        let weight = sft_rand::SplitMix64::new(seed).normals(n, 0.05);
        let q = Nf4Weight::quantize(&weight, [rows, cols], double);
        prop_assert_eq!(q.packed.len(), n.div_ceil(2));
        if n % 2 == 1 {
            prop_assert_eq!(q.packed[n / 2] & 0x0f, 7, "odd counts pad with code 7");
        }
        let exact_absmax: Vec<f32> = weight.chunks(64).map(|b| b.iter().fold(0f32, |m, v| m.max(v.abs()))).collect();
        let absmax = q.absmax_values();
        let dequant = q.dequantize();
        for (k, (w, d)) in weight.iter().zip(&dequant).enumerate() {
            let b = k / 64;
            // With double quantization the scale itself moves by at most its own quantization error.
            let scale_error = (absmax[b] - exact_absmax[b]).abs();
            let bound = max_half_gap() * exact_absmax[b] + scale_error + 1e-6;
            prop_assert!((w - d).abs() <= bound, "element {} of {}x{}: {} vs {} (bound {})", k, rows, cols, w, d, bound);
        }
        let linear = Nf4Linear::new(&q, DType::F32, &Device::flex());
        prop_assert_eq!(values(linear.dequantize_generic()), dequant.clone());
        prop_assert_eq!(values(linear.dequantize_fused().unwrap()), dequant);
    }
}

#[test]
fn the_fused_matmul_equals_the_generic_path_in_value_and_gradient() {
    fused_matmul_matches_generic(Device::flex().autodiff());
}

/// The fused NF4 matmul's output and input gradient equal the generic path's on `device` (an autodiff device), for
/// a weight whose blocks straddle rows, with and without double quantization: to 1e-6 relative with f32 compute,
/// and to 1e-2 (a few bf16 roundings) with bf16 compute where the device has bf16.
pub(crate) fn fused_matmul_matches_generic(device: Device) {
    let (d_out, d_in) = (96, 200); // blocks straddle rows
    let weight = sft_rand::SplitMix64::new(4).normals(d_out * d_in, 0.05);
    let f32_values = |t: Tensor<3>| values(t.cast(DType::F32));
    for (compute, tolerance) in [(DType::F32, 1e-6), (DType::BF16, 1e-2)] {
        if !device.supports_dtype(compute) {
            eprintln!("{device:?} has no {compute:?}: that compute dtype is not checked here");
            continue;
        }
        for double in [false, true] {
            let q = Nf4Weight::quantize(&weight, [d_out, d_in], double);
            let linear = Nf4Linear::new(&q, compute, &device);
            let x = Tensor::<3>::from_data(
                TensorData::new(sft_rand::SplitMix64::new(5).normals(2 * 7 * d_in, 1.0), [2, 7, d_in]),
                &device,
            )
            .require_grad();
            let target = Tensor::<3>::from_data(
                TensorData::new(sft_rand::SplitMix64::new(6).normals(2 * 7 * d_out, 1.0), [2, 7, d_out]),
                &device,
            );
            let fused = linear.forward_fused(x.clone()).expect("this backend takes the fused path");
            assert_eq!(fused.dtype(), compute);
            let generic = linear.forward_generic(x.clone());
            let (f, g) = (f32_values(fused.clone().inner()), f32_values(generic.clone().inner()));
            let scale = g.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = f.iter().zip(&g).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff <= tolerance * scale.max(1.0), "{compute:?}, double {double}: forward differs by {diff}");
            let loss = |y: Tensor<3>| (y.cast(DType::F32) * target.clone()).sum().backward();
            let grad_f = values(x.grad(&loss(fused)).unwrap());
            let grad_g = values(x.grad(&loss(generic)).unwrap());
            let scale = grad_g.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = grad_f.iter().zip(&grad_g).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(
                diff <= tolerance * scale.max(1.0),
                "{compute:?}, double {double}: input gradient differs by {diff}"
            );
        }
    }
}
