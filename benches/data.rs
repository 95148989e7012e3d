//! Data stage throughput: load + format the 400-row legal-clause set replicated ×100 (40,000 records).
//!
//! `cargo bench --bench data`; figures in `benches/README.md`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::data::{DataConfig, SplitFiles, SplitSize, load_splits, read_all};

const COPIES: usize = 100;

fn fixtures() -> (tempfile::TempDir, PathBuf, PathBuf, usize) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/legal_clauses");
    let dir = tempfile::tempdir().unwrap();
    let mut body = Vec::new();
    let mut header = Vec::new();
    for name in ["train.csv", "test.csv"] {
        let bytes = std::fs::read(root.join(name)).unwrap();
        let split = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        header = bytes[..split].to_vec();
        body.extend_from_slice(&bytes[split..]);
    }
    let csv = dir.path().join("legal_x100.csv");
    let mut file = std::fs::File::create(&csv).unwrap();
    file.write_all(&header).unwrap();
    for _ in 0..COPIES {
        file.write_all(&body).unwrap();
    }
    drop(file);
    let records = read_all(std::slice::from_ref(&csv)).unwrap();
    let jsonl = dir.path().join("legal_x100.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&jsonl).unwrap());
    for r in &records {
        serde_json::to_writer(&mut file, &r.fields).unwrap();
        file.write_all(b"\n").unwrap();
    }
    file.flush().unwrap();
    (dir, csv, jsonl, records.len())
}

fn load_and_format(c: &mut Criterion) {
    let (_dir, csv, jsonl, rows) = fixtures();
    assert_eq!(rows, 400 * COPIES);
    let config = DataConfig {
        instruction_column: "Instruction".into(),
        input_column: Some("Input".into()),
        output_column: "Output".into(),
        validation_size: Some(SplitSize::Fraction(0.1)),
        ..DataConfig::new("bench")
    };
    let mut group = c.benchmark_group("load_format_split");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    for (name, path) in [("csv", &csv), ("jsonl", &jsonl)] {
        let files = SplitFiles { train: vec![path.clone()], ..SplitFiles::default() };
        group.bench_function(name, |b| b.iter(|| load_splits(&config, &files).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, load_and_format);
criterion_main!(benches);
