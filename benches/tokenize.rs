//! Tokenize + mask throughput: the 400-row legal-clause set ×50 (20,000 examples), completion-only masking, all
//! cores (rayon). `cargo bench --bench tokenize`; figures in `benches/README.md`.
#![allow(clippy::unwrap_used)]

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::tokenize::{Encoder, Masking};

fn tokenize(c: &mut Criterion) {
    let base = common::examples();
    let examples: Vec<_> = (0..50).flat_map(|_| base.iter().cloned()).collect();
    let tokenizer = common::tokenizer();
    let mut group = c.benchmark_group("tokenize_mask");
    group.throughput(Throughput::Elements(examples.len() as u64));
    group.sample_size(10);
    for (name, masking) in [
        ("completion_only", Masking::CompletionOnly),
        ("full_sequence", Masking::FullSequence),
        ("marker", Masking::Marker { response_template: "### Output\n".into() }),
    ] {
        let options = sft::tokenize::EncodeOptions { masking, ..common::config().encode_options() };
        let encoder = Encoder::new(&tokenizer, &options);
        group.bench_function(name, |b| b.iter(|| encoder.encode_all(&examples).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, tokenize);
criterion_main!(benches);
