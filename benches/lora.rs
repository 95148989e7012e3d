//! One 2048×2048 projection, forward + backward on x of 4 × 512 tokens (f32, flex), gradient of the input
//! always computed (as inside a model): the frozen base alone, our factored `LoraLinear` (r = 16), and Burn's
//! `apply_lora` (which materialises `W + scale·A·B` every forward). `cargo bench --bench lora`; figures in
//! `benches/README.md`.
#![allow(clippy::unwrap_used)]

/// mimalloc, as the project's training binaries use: with glibc's allocator every large tensor is a fresh `mmap`
/// and page-faults on each step (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

mod common;

use burn::module::{Lora, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::model_stage::Projection;
use sft::peft::{LoraAdapter, LoraLinear};

const D: usize = 2048;
const R: usize = 16;
const TOKENS: [usize; 2] = [4, 512];

fn step(forward: impl Fn(Tensor<3>) -> Tensor<3>, x: &Tensor<3>) -> f32 {
    let x = x.clone().require_grad();
    let y = forward(x.clone());
    let grads = y.sum().backward();
    x.grad(&grads).unwrap().sum().into_scalar::<f32>()
}

fn lora(c: &mut Criterion) {
    sft::allocator::configure_for_training();
    let device = common::bench_device().autodiff();
    let linear: Linear = LinearConfig::new(D, D).with_bias(false).init(&device);
    let frozen =
        Linear { weight: Param::from_tensor(linear.weight.val().detach()).set_require_grad(false), bias: None };
    let mut random = sft_rand::SplitMix64::new(0);
    let a = random.uniforms(R * D, -1.0 / (D as f64).sqrt(), 1.0 / (D as f64).sqrt());
    let b = random.normals(D * R, 0.02);
    let ours = LoraLinear {
        base: frozen.clone().into(),
        adapter: Some(LoraAdapter::from_peft(&a, &b, [R, D, D], 2.0, 0.0, &device)),
        merged: false,
    };
    let burn_lora = linear.apply_lora(Lora::new(R, 32.0));
    let x = Tensor::<3>::random([TOKENS[0], TOKENS[1], D], Distribution::Normal(0.0, 1.0), &device).detach();

    let mut group = c.benchmark_group("linear_2048_r16_4x512");
    group.throughput(Throughput::Elements((TOKENS[0] * TOKENS[1]) as u64));
    group.sample_size(20);
    group.bench_function("frozen_base", |bench| bench.iter(|| step(|x| frozen.forward(x), &x)));
    group.bench_function("lora_factored", |bench| bench.iter(|| step(|x| Projection::forward(&ours, x), &x)));
    group.bench_function("burn_apply_lora", |bench| bench.iter(|| step(|x| burn_lora.forward(x), &x)));
    group.finish();
}

criterion_group!(benches, lora);
criterion_main!(benches);
