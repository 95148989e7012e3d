//! The data parsers never panic: mutations of the fixtures in every format (CSV, JSON Lines, JSON, Parquet) go
//! through `load_splits` (reading, format detection, formatting), which must return `Ok` or an error. The count of
//! inputs of the last long run is in the crate README.

use sft_data::{DataConfig, SplitFiles, load_splits};

use crate::mutate::{Budget, peak_rss_mib, run};
use crate::{fixture, legal};

#[test]
fn no_data_file_makes_the_parsers_panic() {
    // Per format; the default budget keeps CI short, SFT_FUZZ_INPUTS / SFT_FUZZ_SECONDS lengthen it.
    let budget = Budget::from_env(3_000, 15);
    let dir = tempfile::tempdir().unwrap();
    let formats: [(&str, &[&str]); 4] = [
        ("csv", &["legal_test.csv", "tricky.csv"]),
        ("jsonl", &["legal_test.jsonl", "chat.jsonl", "prompt_completion.jsonl"]),
        ("json", &["legal_test.json"]),
        ("parquet", &["legal_test.parquet", "chat.parquet"]),
    ];
    let mut report = Vec::new();
    for (ext, names) in formats {
        let seeds: Vec<Vec<u8>> = names.iter().map(|n| std::fs::read(fixture(n)).unwrap()).collect();
        let path = dir.path().join(format!("input.{ext}"));
        let files = SplitFiles { train: vec![path.clone()], ..SplitFiles::default() };
        // The legal-clause fixtures and tricky.csv have capitalised columns; the others use the defaults.
        let configs: Vec<DataConfig> = names
            .iter()
            .map(|n| if n.starts_with("legal") || n.starts_with("tricky") { legal() } else { DataConfig::new("fuzz") })
            .collect();
        let outcome = run(&seeds, 64 << 10, budget, |seed, bytes| {
            std::fs::write(&path, bytes).unwrap();
            load_splits(&configs[seed], &files).is_ok()
        });
        report.push(outcome.summary(ext));
        outcome.assert_no_panics(ext, &format!("sft-data-fuzz-panic.{ext}"));
        assert!(outcome.inputs >= 100, "{ext}: only {} inputs in the time budget", outcome.inputs);
    }
    let peak = peak_rss_mib();
    eprintln!("{}; peak RSS {peak} MiB", report.join("; "));
    assert!(peak < 1024, "peak RSS {peak} MiB: a small input made a parser allocate far beyond its size");
}
