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
        // The parser takes text; invalid UTF-8 stops `RunConfig::from_file` before it, naming the file.
        let text = String::from_utf8_lossy(bytes);
        RunConfig::from_json(&text, Path::new("fuzz.json")).is_ok()
    });
    // The peak RSS is the whole test process's (other tests train models beside this one): reported, not bounded.
    let peak = peak_rss_mib();
    eprintln!("{}; peak RSS of the test process {peak} MiB", outcome.summary("config"));
    outcome.assert_no_panics("config", "sft-config-fuzz-panic.json");
    assert!(outcome.inputs >= 1_000, "only {} inputs in the time budget", outcome.inputs);
    assert!(outcome.rejected < outcome.inputs, "some mutations stay valid configs");
}
