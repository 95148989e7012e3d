//! One forward + backward of the "tiny" Llama (hidden 256, 4 layers, 8 heads, 4 kv heads, vocab 4096) on a batch
//! of 4 × 128 tokens, all parameters trainable, on flex (CPU). `cargo bench --bench model`; figures in
//! `benches/README.md`.
#![allow(clippy::unwrap_used)]

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::model_stage::{LlamaConfig, LlamaForCausalLM, ModelInput, causal_lm_loss};

const TINY: &str = r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 4096, "hidden_size": 256,
    "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0}"#;

fn forward_backward(c: &mut Criterion) {
    let config = LlamaConfig::from_json(TINY, std::path::Path::new("tiny.json")).unwrap();
    let device = Device::flex().autodiff();
    let model = LlamaForCausalLM::init(&config, &device, 0).train();
    let (batch, seq) = (4, 128);
    let ids: Vec<u32> = (0..batch * seq).map(|i| ((i * 7919) % 4096) as u32).collect();
    let labels: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
    let input = ModelInput::new(&ids, [batch, seq], None, None, None, &device).unwrap();
    let mut group = c.benchmark_group("tiny_llama_4x128");
    group.throughput(Throughput::Elements((batch * seq) as u64));
    group.sample_size(10);
    group.bench_function("forward", |b| {
        b.iter(|| model.forward(&input).inner().into_data());
    });
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let loss = causal_lm_loss(model.forward(&input), &labels).unwrap().mean();
            let grads = loss.backward();
            model.lm_head.as_ref().and_then(|h| h.weight.grad(&grads)).map(|g| g.into_data())
        });
    });
    group.finish();
}

criterion_group!(benches, forward_backward);
criterion_main!(benches);
