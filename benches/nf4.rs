//! NF4: dequantizing a 4096×4096 weight (generic tensor-op path, the fused CPU op, the host reference), and
//! forward / forward + backward of a 2048×2048 NF4 projection on 4 × 512 tokens, generic vs fused, against the
//! dense f32 projection (flex; `SFT_BENCH_DEVICE=wgpu` with `--features wgpu` for the GPU, where "fused" is the
//! CubeCL kernel).
//! `cargo bench --bench nf4`; figures in `benches/README.md`.
#![allow(clippy::unwrap_used)]

/// mimalloc, as the project's training binaries use (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

mod common;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::peft::nf4::{Nf4Linear, Nf4Weight};

fn dequantize(c: &mut Criterion) {
    sft::allocator::configure_for_training();
    let n = 4096;
    let weight = sft_rand::SplitMix64::new(0).normals(n * n, 0.02);
    let q = Nf4Weight::quantize(&weight, [n, n], false);
    let device = common::bench_device();
    let linear = Nf4Linear::new(&q, DType::F32, &device);
    let mut group = c.benchmark_group("nf4_dequantize_4096x4096");
    group.throughput(Throughput::Bytes((n * n * 4) as u64));
    group.sample_size(10);
    group.bench_function("generic_tensor_ops", |b| {
        b.iter(|| linear.dequantize_generic().slice([0..1, 0..1]).into_scalar::<f32>())
    });
    group.bench_function("fused", |b| {
        b.iter(|| linear.dequantize_fused().unwrap().slice([0..1, 0..1]).into_scalar::<f32>())
    });
    group.bench_function("host_reference", |b| b.iter(|| q.dequantize()));
    group.finish();
}

fn step(forward: impl Fn(Tensor<3>) -> Tensor<3>, x: &Tensor<3>) -> f32 {
    let x = x.clone().require_grad();
    let grads = forward(x.clone()).sum().backward();
    x.grad(&grads).unwrap().sum().into_scalar::<f32>()
}

fn linear(c: &mut Criterion) {
    sft::allocator::configure_for_training();
    let d = 2048;
    let weight = sft_rand::SplitMix64::new(1).normals(d * d, 0.02);
    let device = common::bench_device().autodiff();
    let hf = Tensor::<2>::from_data(TensorData::new(weight.clone(), [d, d]), &device);
    let dense = Linear { weight: Param::from_tensor(hf.clone().transpose()).set_require_grad(false), bias: None };
    let nf4 = Nf4Linear::new(&Nf4Weight::quantize(&weight, [d, d], false), DType::F32, &device);
    let x = Tensor::<3>::from_data(
        TensorData::new(sft_rand::SplitMix64::new(2).normals(4 * 512 * d, 1.0), [4, 512, d]),
        &device,
    );
    let mut group = c.benchmark_group("nf4_linear_2048_4x512");
    group.throughput(Throughput::Elements(2048));
    group.sample_size(10);
    group.bench_function("dense_f32_forward", |b| {
        b.iter(|| dense.forward(x.clone()).slice([0..1, 0..1, 0..1]).into_scalar::<f32>())
    });
    group.bench_function("nf4_generic_forward", |b| {
        b.iter(|| nf4.forward_generic(x.clone()).slice([0..1, 0..1, 0..1]).into_scalar::<f32>())
    });
    group.bench_function("nf4_fused_forward", |b| {
        b.iter(|| nf4.forward_fused(x.clone()).unwrap().slice([0..1, 0..1, 0..1]).into_scalar::<f32>())
    });
    group.bench_function("dense_f32_forward_backward", |b| b.iter(|| step(|x| dense.forward(x), &x)));
    group.bench_function("nf4_generic_forward_backward", |b| b.iter(|| step(|x| nf4.forward_generic(x), &x)));
    group.bench_function("nf4_fused_forward_backward", |b| b.iter(|| step(|x| nf4.forward_fused(x).unwrap(), &x)));
    group.finish();
}

criterion_group!(benches, dequantize, linear);
criterion_main!(benches);
