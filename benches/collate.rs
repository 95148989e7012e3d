//! Collation throughput: 10,000 pre-tokenized examples (the 400 legal-clause rows ×25: median ~120 tokens, max ~260)
//! into batches of 16. `cargo bench --bench collate`; figures in `benches/README.md`.
#![allow(clippy::unwrap_used)]

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::collate::{Collate, Collator, pack_best_fit_decreasing};
use sft::tokenize::TokenizedExample;

fn collate(c: &mut Criterion) {
    let base = common::tokenized();
    let examples: Vec<TokenizedExample> = (0..25).flat_map(|_| base.iter().cloned()).collect();
    assert_eq!(examples.len(), 10_000);
    let refs: Vec<&TokenizedExample> = examples.iter().collect();
    let mut group = c.benchmark_group("collate_10k");
    group.throughput(Throughput::Elements(examples.len() as u64));
    for (name, pad_to_multiple_of) in [("pad", None), ("pad_multiple_8", Some(8))] {
        let collator = Collator { pad_id: 2, pad_to_multiple_of };
        group.bench_function(name, |b| {
            b.iter(|| refs.chunks(16).map(|batch| collator.collate(batch).num_tokens).sum::<usize>())
        });
    }
    let collator = Collator { pad_id: 2, pad_to_multiple_of: Some(8) };
    let lengths: Vec<usize> = examples.iter().map(TokenizedExample::len).collect();
    group.bench_function("pack_bfd_512_and_collate", |b| {
        b.iter(|| {
            let bins = pack_best_fit_decreasing(&lengths, 512).unwrap();
            let rows: Vec<Vec<&TokenizedExample>> =
                bins.iter().map(|bin| bin.iter().map(|&i| &examples[i]).collect()).collect();
            rows.chunks(16).map(|batch| collator.collate_packed(batch).num_tokens).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, collate);
criterion_main!(benches);
