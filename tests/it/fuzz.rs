//! The config parser never panics: mutations of every config in `configs/` go through `RunConfig::from_json`
//! (BOM and duplicate-key checks, serde, validation), which must return the config or an error. The count of inputs
//! of the last long run is in the README.

use std::path::Path;

use sft::config::RunConfig;

#[path = "../../crates/sft-data/tests/it/mutate.rs"]
mod mutate;

use mutate::{Budget, peak_rss_mib, run};

#[test]
fn no_config_makes_the_parser_panic() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            seeds.push(std::fs::read(path).unwrap());
        }
    }
    assert!(seeds.len() >= 3, "the configs in configs/");
    let outcome = run(&seeds, 64 << 10, Budget::from_env(20_000, 15), |_, bytes| {
        // The parser takes text: invalid UTF-8 is the reader's error (`RunConfig::from_file`), tested elsewhere.
        let text = String::from_utf8_lossy(bytes);
        RunConfig::from_json(&text, Path::new("fuzz.json")).is_ok()
    });
    // The peak RSS is the whole test process's (other tests train models beside this one): reported, not bounded.
    let peak = peak_rss_mib();
    eprintln!(
        "config: {} inputs, {} refused, {} panics; peak RSS of the test process {peak} MiB",
        outcome.inputs,
        outcome.rejected,
        outcome.panics.len()
    );
    if let Some((input, message)) = outcome.panics.first() {
        let kept = std::env::temp_dir().join("sft-config-fuzz-panic.json");
        std::fs::write(&kept, input).unwrap();
        panic!(
            "{} of {} configs panicked; the first ({message}) is in {}",
            outcome.panics.len(),
            outcome.inputs,
            kept.display()
        );
    }
    assert!(outcome.inputs >= 1_000, "only {} inputs in the time budget", outcome.inputs);
    assert!(outcome.rejected < outcome.inputs, "some mutations stay valid configs");
}
