//! The `sft` binary: `train` with `--set` overrides, and bad configs (one-line error naming the key, exit status
//! 1, nothing written).

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sft(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sft")).args(args).current_dir(root()).env("HF_HUB_OFFLINE", "1").output().unwrap()
}

#[test]
fn train_with_overrides_writes_an_adapter() {
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("run");
    let set_output = format!("training_args.output_dir={}", output_dir.display());
    let result = sft(&[
        "train",
        "--config",
        "configs/legal_clauses.json",
        "--set",
        &set_output,
        "--set",
        "training_args.max_steps=2",
        "--set",
        "training_args.eval_steps=2",
        "--set",
        "training_args.save_steps=2",
        "--set",
        "dataset_config.sample_size=40",
    ]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Completed after 2 steps"), "{stdout}");
    for file in ["adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "checkpoint-2/trainer_state.json"]
    {
        assert!(output_dir.join(file).is_file(), "{file}");
    }
    // The run config saved in the checkpoint carries the overrides.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output_dir.join("checkpoint-2/run_config.json")).unwrap()).unwrap();
    assert_eq!(saved["training_args"]["max_steps"], 2);
    assert_eq!(saved["dataset_config"]["sample_size"], 40);
}

#[test]
fn bad_configs_fail_with_one_line_naming_the_key_and_write_nothing() {
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("never");
    let set_output = format!("training_args.output_dir={}", output_dir.display());
    for (set, key) in [
        ("training_args.learning_rate=-1", "training_args.learning_rate"),
        ("lora_config.rank=3", "lora_config.rank"),
        ("training_args.eval_strategy=\"sometimes\"", "training_args.eval_strategy"),
        ("nonsense", "nonsense"),
    ] {
        let result = sft(&["train", "--config", "configs/legal_clauses.json", "--set", &set_output, "--set", set]);
        assert_eq!(result.status.code(), Some(1), "{set}");
        let stderr = String::from_utf8_lossy(&result.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].starts_with("error: configs/legal_clauses.json: ") && lines[0].contains(key), "{stderr}");
        assert!(!output_dir.exists(), "{set}: nothing is written");
    }
}
