//! The "tiny" Llama preset (hidden 256, 4 layers, 8 heads, 4 kv heads, vocab 4096) on a batch of 4 × 128 tokens
//! on flex (CPU), all parameters trainable: inference forward, and forward + backward with the plain loss (full
//! logits) and with the chunked fused loss. `cargo bench --bench model`; figures in `benches/README.md`.
#![allow(clippy::unwrap_used)]

/// mimalloc, as the project's training binaries use: with glibc's allocator every large tensor is a fresh `mmap`
/// and page-faults on each step (`benches/README.md`).
#[global_allocator]
static GLOBAL: sft::allocator::Allocator = sft::allocator::Allocator;

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::model_stage::{
    LlamaConfig, LlamaForCausalLM, LossOptions, ModelInput, causal_lm_loss, chunked_causal_lm_loss,
};

fn model(c: &mut Criterion) {
    sft::allocator::configure_for_training();
    let config = LlamaConfig::preset("tiny").unwrap();
    let (batch, seq) = (4, 128);
    let ids: Vec<u32> = (0..batch * seq).map(|i| ((i * 7919) % 4096) as u32).collect();
    let labels: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
    let mut group = c.benchmark_group("tiny_llama_4x128");
    group.throughput(Throughput::Elements((batch * seq) as u64));
    group.sample_size(10);

    let device = Device::flex();
    let inference = LlamaForCausalLM::init(&config, &device, 0);
    let input = ModelInput::new(&ids, [batch, seq], None, None, None, &device).unwrap();
    group.bench_function("forward", |b| b.iter(|| inference.forward(&input).into_data()));

    let device = Device::flex().autodiff();
    let model = LlamaForCausalLM::init(&config, &device, 0).train();
    let input = ModelInput::new(&ids, [batch, seq], None, None, None, &device).unwrap();
    let head_grad = |grads: &burn::tensor::Gradients| {
        model.lm_head.as_ref().and_then(|h| h.weight.grad(grads)).map(|g| g.into_data())
    };
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let loss = causal_lm_loss(model.forward(&input), &labels).unwrap().mean();
            head_grad(&loss.backward())
        });
    });
    group.bench_function("forward_backward_chunked_loss", |b| {
        b.iter(|| {
            let hidden = model.hidden_states(&input);
            let loss =
                chunked_causal_lm_loss(hidden, model.head_weight(), &labels, &LossOptions::train(256, 1.0 / 508.0))
                    .unwrap();
            head_grad(&loss.surrogate.unwrap().backward())
        });
    });
    group.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);
