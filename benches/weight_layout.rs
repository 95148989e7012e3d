//! A frozen projection's two products — the forward `x·w` and the input gradient `dy·wᵀ` — through
//! `sft_model::fused::low_rank_linear` (the `gemm` crate underneath), with the weight stored either as the
//! checkpoint has it (`[out, in]` row-major, which the model reads as a transposed `[in, out]` view) or as a
//! contiguous `[in, out]` copy. The shapes are the small preset's projections on one padding-free micro-batch of
//! the comparison's data (4 examples of 122 tokens on average). It shows what bounds the small preset's step on
//! the CPU: `gemm` packs the left operand of its (internally transposed) product, and packing a row-major weight is
//! slow, so each layout leaves one of the two products at a lower rate. `cargo bench --bench weight_layout`;
//! figures in `benches/README.md`.
#![allow(clippy::unwrap_used)]

#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

mod common;

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::model_stage::fused::low_rank_linear;

/// Tokens of one padding-free micro-batch of the comparison's data (4 × 122).
const TOKENS: usize = 488;
/// `(in, out)` of the small preset's projections: q/o, k/v, gate/up, down.
const SHAPES: [(usize, usize); 4] = [(512, 512), (512, 256), (512, 1536), (1536, 512)];

fn weight_layout(c: &mut Criterion) {
    sft::allocator::configure_for_training();
    let device = common::bench_device();
    let autodiff = device.clone().autodiff();
    for (d_in, d_out) in SHAPES {
        let checkpoint = Tensor::<2>::random([d_out, d_in], Distribution::Normal(0.0, 0.02), &device).into_data();
        let x = Tensor::<2>::random([TOKENS, d_in], Distribution::Normal(0.0, 1.0), &device).into_data();
        let mut group = c.benchmark_group(format!("frozen_{d_in}x{d_out}_{TOKENS}_tokens"));
        group.throughput(Throughput::Elements((TOKENS * d_in * d_out) as u64));
        group.sample_size(20);
        for contiguous in [false, true] {
            let name = if contiguous { "contiguous_in_out" } else { "checkpoint_out_in" };
            let x_plain = Tensor::<2>::from_data(x.clone(), &device);
            let (w_plain, w_autodiff) =
                (weight(&checkpoint, contiguous, &device), weight(&checkpoint, contiguous, &autodiff));
            let x_autodiff = Tensor::<2>::from_data(x.clone(), &autodiff);
            group.bench_function(format!("forward/{name}"), |bench| {
                bench.iter(|| low_rank_linear(x_plain.clone(), w_plain.clone(), None).into_data())
            });
            group.bench_function(format!("forward_and_input_gradient/{name}"), |bench| {
                bench.iter(|| {
                    let x = x_autodiff.clone().require_grad();
                    let grads = low_rank_linear(x.clone(), w_autodiff.clone(), None).sum().backward();
                    x.grad(&grads).unwrap().into_data()
                })
            });
        }
        group.finish();
    }
}

/// The frozen weight `[in, out]` from the checkpoint's `[out, in]` data: a transposed view over that data, as the
/// model loads it, or (`contiguous`) a row-major copy.
fn weight(checkpoint: &TensorData, contiguous: bool, device: &Device) -> Tensor<2> {
    let view = Tensor::<2>::from_data(checkpoint.clone(), device).transpose();
    if contiguous { Tensor::from_data(view.into_data(), device) } else { view }
}

criterion_group!(benches, weight_layout);
criterion_main!(benches);
