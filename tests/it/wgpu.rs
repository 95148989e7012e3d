//! `sft train` on `"device": "wgpu"` (the GPU, or Mesa lavapipe without one) against the CPU: the same run gives
//! the same losses (`--features wgpu`; run by `scripts/gpu-check.sh`, not by CI, whose budget a second build of
//! the whole facade with wgpu does not fit).

use std::path::Path;
use std::process::Command;

fn train(output_dir: &Path, device: &str) -> Vec<serde_json::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let result = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(["train", "--config", "configs/legal_clauses.json"])
        .args(["--set", &format!("training_args.output_dir={}", output_dir.display())])
        .args(["--set", "training_args.max_steps=3", "--set", "training_args.logging_steps=1"])
        .args(["--set", "training_args.eval_steps=3", "--set", "training_args.save_steps=3"])
        .args(["--set", "dataset_config.sample_size=40", "--set", &format!("device={device}")])
        .current_dir(root)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(result.status.success(), "{device}: {}", String::from_utf8_lossy(&result.stderr));
    std::fs::read_to_string(output_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn training_on_wgpu_matches_the_cpu() {
    let out = tempfile::tempdir().unwrap();
    let gpu = train(&out.path().join("wgpu"), "wgpu");
    let cpu = train(&out.path().join("cpu"), "cpu");
    assert_eq!(gpu.len(), cpu.len());
    for (gpu_entry, cpu_entry) in gpu.iter().zip(&cpu) {
        for key in ["loss", "grad_norm", "eval_loss"] {
            if let (Some(g), Some(c)) = (gpu_entry[key].as_f64(), cpu_entry[key].as_f64()) {
                let rel = (g - c).abs() / c.abs();
                eprintln!("step {}: {key} wgpu {g} vs cpu {c} (relative {rel:.1e})", cpu_entry["step"]);
                assert!(rel < 1e-3, "{key}: wgpu {g} vs cpu {c}");
            }
        }
    }
}
