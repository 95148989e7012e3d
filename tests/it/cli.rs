//! The `sft` binary: `train` with `--set` overrides, and bad configs (one-line error naming the key, exit status
//! 1, nothing written).

use std::path::PathBuf;
use std::process::Command;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft::model_stage::{LlamaForCausalLM, ModelInput};

use crate::short_train_args;

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
    let args = short_train_args(&output_dir, &["training_args.report_to=[\"tensorboard\"]"]);
    let result = sft(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Completed after 2 steps"), "{stdout}");
    // TensorBoard: one event file under runs/, with the run's training and evaluation scalars at step 2.
    let runs: Vec<_> = std::fs::read_dir(output_dir.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."));
    let scalars: Vec<(String, i64)> = sft_testkit::tensorboard::read_event_file(&runs[0])
        .unwrap()
        .into_iter()
        .flat_map(|e| e.values.into_iter().map(move |v| (v.tag, e.step)))
        .collect();
    for tag in ["train/loss", "train/learning_rate", "eval/loss"] {
        assert!(scalars.contains(&(tag.to_owned(), 2)), "{tag} at step 2 not in {scalars:?}");
    }
    // The loss curve (its drawing is tested in sft-train) and the model card.
    let svg = std::fs::read_to_string(output_dir.join("loss_curve.svg")).unwrap();
    assert!(svg.starts_with("<svg ") && svg.contains("train loss") && svg.contains("eval loss"), "{svg}");
    let card = std::fs::read_to_string(output_dir.join("README.md")).unwrap();
    assert!(card.contains("library_name: peft"), "{card}");
    for file in ["adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "checkpoint-2/trainer_state.json"]
    {
        assert!(output_dir.join(file).is_file(), "{file}");
    }
    // The run config saved in the checkpoint carries the overrides.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output_dir.join("checkpoint-2/run_config.json")).unwrap()).unwrap();
    assert_eq!(saved["training_args"]["max_steps"], 2);
    assert_eq!(saved["dataset_config"]["sample_size"], 40);

    // `sft eval` of the saved adapter on the same split repeats the run's last evaluation.
    let logged = std::fs::read_to_string(output_dir.join("metrics.jsonl")).unwrap();
    let logged: f64 = logged
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["eval_loss"].as_f64())
        .unwrap();
    let result = sft(&[
        "eval",
        "--config",
        "configs/legal_clauses.json",
        "--set",
        "dataset_config.sample_size=40",
        "--adapter",
        output_dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&result.stdout).to_string();
    assert!(result.status.success(), "{stdout}{}", String::from_utf8_lossy(&result.stderr));
    let eval_loss: f64 = stdout.lines().find_map(|l| l.strip_prefix("eval_loss ")).unwrap().parse().unwrap();
    assert!((eval_loss - logged).abs() <= 1e-6 * logged, "{eval_loss} vs {logged}");

    // `sft generate` is deterministic (greedy).
    let prompt = "### Instruction\nWhat type of clause is this?\n\n### Input\nThis Agreement is governed by the laws of Ontario.\n\n### Output\n";
    let generate = || {
        let args = ["generate", "--adapter", output_dir.to_str().unwrap(), "--prompt", prompt, "--max-new-tokens", "6"];
        let result = sft(&args);
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        result.stdout
    };
    assert_eq!(generate(), generate());

    // `sft merge`: a plain HF checkpoint that sft-model loads, with the LoRA model's logits.
    let merged = out.path().join("merged");
    merge_verified(&output_dir, &merged);
    assert!(merged.join("tokenizer.json").is_file());
    let base = root().join("models/llama-tiny");
    let diff = max_logit_diff(&merged, &base, Some(&output_dir));
    assert!(diff <= 1e-4, "merged logits differ by {diff}");
    let moved = max_logit_diff(&merged, &base, None);
    assert!(moved > 1e-3, "the merge changed the base ({moved})");
}

/// The largest logit difference, on a fixed batch, between the model in `merged` and the one in `base` (with the
/// adapter in `adapter`, if any).
/// `sft merge --verify` of `adapter` into `merged`: it succeeds and prints its own check, the largest logit
/// difference against base + adapter, within 1e-4.
fn merge_verified(adapter: &std::path::Path, merged: &std::path::Path) {
    let result = sft(&["merge", "--adapter", adapter.to_str().unwrap(), "--out", merged.to_str().unwrap(), "--verify"]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let stdout = String::from_utf8_lossy(&result.stdout);
    let verified = stdout.lines().find_map(|l| l.strip_prefix("verified    max |logit difference| ")).unwrap();
    let worst: f32 = verified.split_whitespace().next().unwrap().parse().unwrap();
    assert!(worst <= 1e-4, "{stdout}");
}

fn max_logit_diff(merged: &std::path::Path, base: &std::path::Path, adapter: Option<&std::path::Path>) -> f32 {
    let device = Device::flex();
    let (_, merged) = LlamaForCausalLM::from_pretrained(merged, &device, FloatDType::F32).unwrap();
    let base = LlamaForCausalLM::from_pretrained(base, &device, FloatDType::F32).unwrap().1;
    let ids: Vec<u32> = (0..24).map(|i| (i * 37 + 5) % 4000 + 3).collect();
    let input = ModelInput::new(&ids, [2, 12], None, None, None, &device).unwrap();
    let other = match adapter {
        Some(dir) => sft::peft::load_adapter(base, dir).unwrap().0.forward(&input),
        None => base.forward(&input),
    };
    let values = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
    let (a, b) = (values(merged.forward(&input)), values(other));
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
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
        ("training_args.metric_for_best_model=\"eval_los\"", "training_args.metric_for_best_model"),
        ("lora_config.target_modules=[\"q_prj\"]", "lora_config.target_modules"),
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

#[test]
fn a_key_given_twice_fails_naming_it_with_both_lines_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output_dir = dir.path().join("never");
    let text = std::fs::read_to_string(root().join("configs/legal_clauses.json")).unwrap();
    // The training arguments start with the output directory, given a second time right after it.
    let (head, tail) = text.split_once("\"training_args\": {").unwrap();
    let config = format!(
        "\u{feff}{head}\"training_args\": {{\n    \"output_dir\": {:?},\n    \"learning_rate\": 1e-3,\n    \
         \"learning_rate\": 2e-3,{tail}",
        output_dir.display().to_string()
    );
    let path = dir.path().join("twice.json");
    std::fs::write(&path, &config).unwrap();
    let first = config[..config.find("\"learning_rate\": 1e-3").unwrap()].lines().count();
    let result = sft(&["train", "--config", path.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}: training_args.learning_rate: given twice (lines {first} and {}); keep one",
            path.display(),
            first + 1
        )
    );
    assert!(!output_dir.exists(), "nothing is written");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config, "the input is untouched");
}

#[test]
fn inspect_shows_the_splits_their_statistics_and_marked_examples() {
    let result = sft(&["inspect", "--config", "configs/legal_clauses.json", "--examples", "1"]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let out = String::from_utf8(result.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // The embedded set: 368 train-file rows, 10% held out for validation (rounded up), 32 test rows.
    assert!(lines[1].starts_with("rows        train 331 | validation 37 | test 32"), "{out}");
    assert!(lines[2].contains("masking CompletionOnly, max_length 512"), "{out}");
    for (line, split) in lines[3..6].iter().zip(["train", "validation", "test"]) {
        assert!(line.starts_with(split) && line.contains("0 dropped") && line.contains("p50"), "{line}");
        assert!(line.contains("supervised"), "{line}");
    }
    assert!(lines[3].starts_with("train       331 kept"), "{out}");
    assert!(out.contains("── train example 0 (") && out.contains('⟦') && out.contains('⟧'), "{out}");
    assert!(!out.contains("── train example 1"), "one example asked for");
}

#[test]
fn bf16_with_gradient_checkpointing_trains_and_saves_f32_adapters() {
    trains_in_half_precision("training_args.bf16=true", FloatDType::BF16);
}

#[test]
fn fp16_with_gradient_checkpointing_trains_and_saves_f32_adapters() {
    trains_in_half_precision("training_args.fp16=true", FloatDType::F16);
}

/// `sft train` with `precision` (`training_args.bf16=true` or `fp16=true`) and gradient checkpointing completes;
/// the adapter files hold f32 whatever the base's dtype (the trained lm_head copy kept its f32 master copy in the
/// optimizer); loaded onto a `dtype` base, the copy takes the base's dtype and the model runs.
fn trains_in_half_precision(precision: &str, dtype: FloatDType) {
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("run");
    let args = short_train_args(&output_dir, &[precision, "training_args.gradient_checkpointing=true"]);
    let result = sft(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&result.stderr));
    assert!(stdout.contains("Completed after 2 steps"), "{stdout}");
    let bytes = std::fs::read(output_dir.join("adapter_model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(file.tensors().iter().all(|(_, view)| view.dtype() == safetensors::Dtype::F32));
    let device = Device::flex();
    let base = LlamaForCausalLM::from_pretrained(&root().join("models/llama-tiny"), &device, dtype).unwrap().1;
    let (model, _) = sft::peft::load_adapter(base, &output_dir).unwrap();
    assert_eq!(model.head_weight().dtype(), burn::tensor::DType::from(dtype));
    let input = ModelInput::new(&[5, 6, 7, 8], [1, 4], None, None, None, &device).unwrap();
    let logits: Vec<f32> = model.forward(&input).cast(burn::tensor::DType::F32).into_data().try_to_vec().unwrap();
    assert!(logits.iter().all(|v| v.is_finite()));
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn a_gpu_device_without_its_cargo_feature_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("never");
    let set_output = format!("training_args.output_dir={}", output_dir.display());
    let result =
        sft(&["train", "--config", "configs/legal_clauses.json", "--set", &set_output, "--set", "device=wgpu"]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: configs/legal_clauses.json: device: \"wgpu\" needs a binary built with the `wgpu` cargo feature \
         (cargo build --release --features wgpu); this one has cpu"
    );
    assert!(!output_dir.exists(), "nothing is written");
}

/// Bytes a directory's files take on a tmpfs (whole 4 KiB pages per file).
fn pages(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len().div_ceil(4096) * 4096).sum()
}

/// A full disk while `checkpoint-2` is written: the run stops with "No space left on device" (exit status 1),
/// `checkpoint-1` stays whole (its checksums hold) and nothing of `checkpoint-2` remains. The disk is a tmpfs
/// sized between one and two checkpoints, mounted in a private mount namespace (`unshare`), so the test needs
/// no privileges; where user namespaces are not allowed it says so and checks nothing (the injected-error test
/// of `sft_train::write_checkpoint` covers the same path everywhere).
#[test]
fn a_full_disk_while_a_checkpoint_is_written_keeps_the_previous_one() {
    // What the test needs: a private mount namespace in which a tmpfs can be mounted.
    let probe_dir = tempfile::tempdir().unwrap();
    let mount_probe = format!("mount -t tmpfs -o size=64k tmpfs '{}'", probe_dir.path().display());
    let namespaces =
        Command::new("unshare").args(["--user", "--map-root-user", "--mount", "sh", "-c", &mount_probe]).output();
    if !namespaces.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no private mount namespace with a tmpfs here (`unshare --user --map-root-user --mount`)");
        return;
    }
    let quick = [
        "training_args.save_steps=1",
        "training_args.eval_strategy=\"no\"",
        "training_args.load_best_model_at_end=false",
        "training_args.save_total_limit=null",
        "early_stopping=null",
    ];
    // How much one checkpoint takes: a run of one step.
    let probe = tempfile::tempdir().unwrap();
    let mut overrides = quick.to_vec();
    overrides.push("training_args.max_steps=1");
    let args = short_train_args(&probe.path().join("run"), &overrides);
    let result = sft(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let checkpoint = pages(&probe.path().join("run/checkpoint-1"));
    assert!(checkpoint > 1 << 20, "a checkpoint of {checkpoint} bytes");

    // Two steps with a checkpoint after each, on a disk with room for one and a half.
    let work = tempfile::tempdir().unwrap();
    let (mount, kept) = (work.path().join("disk"), work.path().join("kept"));
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::create_dir_all(&kept).unwrap();
    let size = checkpoint * 3 / 2 + (64 << 10);
    let args = short_train_args(&mount.join("run"), &quick);
    let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let script = format!(
        "mount -t tmpfs -o size={size} tmpfs '{mnt}' || exit 99\n\
         '{sft}' {args} >'{kept}/stdout' 2>'{kept}/stderr'\n\
         echo $? >'{kept}/status'\n\
         cp -r '{mnt}/run' '{kept}/run'",
        mnt = mount.display(),
        sft = env!("CARGO_BIN_EXE_sft"),
        args = quoted.join(" "),
        kept = kept.display(),
    );
    let status = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .current_dir(root())
        .env("HF_HUB_OFFLINE", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the namespace script failed: {status}");
    let stderr = std::fs::read_to_string(kept.join("stderr")).unwrap();
    assert_eq!(std::fs::read_to_string(kept.join("status")).unwrap().trim(), "1", "{stderr}");
    assert!(stderr.contains("could not write checkpoint-2 in "), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("the checkpoints written before it are intact"), "{stderr}");
    let run = kept.join("run");
    let mut left: Vec<String> =
        std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert!(left.contains(&"checkpoint-1".to_owned()), "{left:?}");
    assert!(!left.iter().any(|n| n.starts_with("tmp-") || n == "checkpoint-2"), "{left:?}");
    sft::train::verify_checkpoint(&run.join("checkpoint-1")).unwrap();
    assert_eq!(sft::train::TrainerState::load(&run.join("checkpoint-1")).unwrap().global_step, 1);
}

#[test]
fn a_blank_field_in_the_data_fails_naming_file_row_and_column_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let csv = "Instruction,Input,Output\nDraft a clause.,,This Agreement.\nSummarise it.,x,\"  \t \"\n";
    std::fs::write(data.join("train.csv"), csv).unwrap();
    let output_dir = dir.path().join("never");
    let result = sft(&[
        "train",
        "--config",
        "configs/legal_clauses.json",
        "--set",
        &format!("dataset_config.dataset_name={}", data.display()),
        "--set",
        &format!("training_args.output_dir={}", output_dir.display()),
    ]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}: row 1 (line 3): column `Output` (set by `dataset_config.output_column`) is only whitespace; \
             every row needs it, so fill it in or remove the row",
            data.join("train.csv").display()
        )
    );
    assert!(!output_dir.exists(), "nothing is written");
    assert_eq!(std::fs::read_to_string(data.join("train.csv")).unwrap(), csv, "the input is untouched");
}

#[test]
fn resuming_from_a_damaged_checkpoint_fails_naming_the_file() {
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("run");
    let quick =
        ["training_args.eval_strategy=\"no\"", "training_args.load_best_model_at_end=false", "early_stopping=null"];
    let args = short_train_args(&output_dir, &quick);
    let result = sft(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let optimizer = output_dir.join("checkpoint-2/optimizer.safetensors");
    let mut bytes = std::fs::read(&optimizer).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 1;
    std::fs::write(&optimizer, &bytes).unwrap();
    let mut resume = quick.to_vec();
    resume.push("training_args.resume_from_checkpoint=true");
    let args = short_train_args(&output_dir, &resume);
    let result = sft(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: {}: its SHA-256 differs from the one in checksums.sha256",
            optimizer.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&optimizer).unwrap(), bytes, "the checkpoint is left as it was");
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let result = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(["inspect", "--config", "configs/legal_clauses.json", "--examples", "0"])
        .current_dir(root())
        .env("HF_HUB_OFFLINE", "1")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains(" INFO "), "the run logs something at info: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape codes in a captured log: {stderr:?}");
}

#[test]
fn a_qwen3_directory_as_model_name_inspects_trains_and_merges() {
    // The qwen3-micro fixture (q/k norms, head_dim 32, its chat template in tokenizer_config.json) as the base.
    let qwen3 = root().join("crates/sft-model/tests/fixtures/qwen3-micro");
    let model_name = format!("model_name={}", qwen3.display());
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("qwen3-run");

    let inspect = sft(&[
        "inspect",
        "--config",
        "configs/legal_clauses.json",
        "--set",
        &model_name,
        "--set",
        "dataset_config.sample_size=40",
        "--examples",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{stdout}{}", String::from_utf8_lossy(&inspect.stderr));
    assert!(stdout.contains('⟦'), "the supervised text is marked: {stdout}");

    let args = short_train_args(&output_dir, &[&model_name]);
    let result = sft(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&result.stderr));
    assert!(stdout.contains("Completed after 2 steps"), "{stdout}");
    // The deployment checks run after training: this run trains lm_head (modules_to_save), which vLLM refuses.
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("runtime=Vllm rule=\"modules_to_save\""), "{stderr}");
    let adapter: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output_dir.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(adapter["base_model_name_or_path"], qwen3.display().to_string());
    // The adapter directory carries the base's stop ids for runtimes.
    let generation: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output_dir.join("generation_config.json")).unwrap()).unwrap();
    assert_eq!(generation["eos_token_id"], 1);

    let merged = out.path().join("merged");
    merge_verified(&output_dir, &merged);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "Qwen3ForCausalLM");
    assert!(merged.join("tokenizer_config.json").is_file());
    let generation: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("generation_config.json")).unwrap()).unwrap();
    assert_eq!((generation["eos_token_id"].as_u64(), generation["pad_token_id"].as_u64()), (Some(1), Some(2)));
    let diff = max_logit_diff(&merged, &qwen3, Some(&output_dir));
    assert!(diff <= 1e-4, "merged logits differ by {diff}");

    // The same merge as GGUF: llama.cpp's qwen3 names, the merged weights (f32: bit for bit), the tokenizer.
    let gguf = out.path().join("merged.gguf");
    let export = |ty: &str, path: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["export", "gguf", "--adapter", output_dir.to_str().unwrap(), "--type", ty, "--out"];
        args.push(path.to_str().unwrap());
        args.extend(extra);
        sft(&args)
    };
    let modelfile = out.path().join("Modelfile");
    let result = export("f32", &gguf, &["--modelfile", modelfile.to_str().unwrap()]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    // The Modelfile: FROM the file beside it, Qwen's ChatML as Ollama writes it, the base's stop token.
    let text = std::fs::read_to_string(&modelfile).unwrap();
    assert!(text.starts_with("FROM ./merged.gguf\nTEMPLATE \"\"\"{{- if .System }}<|im_start|>system"), "{text}");
    assert!(text.ends_with("PARAMETER stop \"<|end_of_text|>\"\n"), "{text}");
    let file = sft_gguf::GgufFile::open(&gguf).unwrap();
    assert_eq!(file.get("general.architecture").and_then(sft_gguf::Value::as_str), Some("qwen3"));
    let weights = sft_testkit::Tensors::open(&merged.join("model.safetensors"));
    assert_eq!(
        file.tensor_f32("blk.1.attn_v.weight").unwrap(),
        weights.f32("model.layers.1.self_attn.v_proj.weight").0
    );
    assert_eq!(
        file.get("general.name").and_then(sft_gguf::Value::as_str),
        Some(output_dir.file_name().unwrap().to_str().unwrap())
    );
    // --name sets general.name; a Phi-3-like name on a vocabulary without Phi-3's `</s>` (which llama.cpp would
    // then fail to load) is refused before the weights are loaded, nothing written.
    let named = out.path().join("named.gguf");
    let result = export("f16", &named, &["--name", "legal-qwen3"]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let file = sft_gguf::GgufFile::open(&named).unwrap();
    assert_eq!(file.get("general.name").and_then(sft_gguf::Value::as_str), Some("legal-qwen3"));
    let phi = out.path().join("phi.gguf");
    let result = export("f16", &phi, &["--name", "My-Phi3-tune"]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("general.name: \"My-Phi3-tune\": llama.cpp treats a model named like Phi-3"), "{stderr}");
    assert!(!phi.exists());
    // An existing output and a type that is not written: one-line errors, the file untouched.
    let again = export("f32", &gguf, &[]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let q2 = export("q2_k", &out.path().join("q2.gguf"), &[]);
    let stderr = String::from_utf8_lossy(&q2.stderr);
    assert!(
        stderr.contains("--type: `q2_k` is not a GGUF type written here (f32, f16, bf16, q8_0, q4_0, q4_k_m)"),
        "{stderr}"
    );
    assert!(!out.path().join("q2.gguf").exists());
    // Q4_K_M: the micro model's rows of 64 take llama.cpp's fallbacks (Q5_0, and Q8_0 for the tied head).
    let q4 = out.path().join("q4.gguf");
    let result = export("Q4_K_M", &q4, &[]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let file = sft_gguf::GgufFile::open(&q4).unwrap();
    assert_eq!(file.get("general.file_type").and_then(sft_gguf::Value::as_u64), Some(15));
    assert_eq!(file.info("blk.0.attn_q.weight").unwrap().ty, sft_gguf::GgmlType::Q5_0);

    // The adapter alone as a llama.cpp LoRA. This run trained lm_head in full (modules_to_save), which a llama.cpp
    // LoRA cannot carry: refused, saying what to do.
    let lora = out.path().join("adapter.gguf");
    let adapter_only = |adapter: &std::path::Path, extra: &[&str], to: &std::path::Path| {
        let mut args = vec!["export", "gguf", "--adapter-only", "--adapter", adapter.to_str().unwrap()];
        args.extend(extra);
        args.extend(["--out", to.to_str().unwrap()]);
        sft(&args)
    };
    let refused = adapter_only(&output_dir, &[], &lora);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("modules_to_save [\"lm_head\"]: a llama.cpp LoRA carries only lora_A / lora_B"),
        "{stderr}"
    );
    // Trained without it: lora_a / lora_b under the base tensors' names.
    let plain_run = out.path().join("qwen3-lora-only");
    let args = short_train_args(&plain_run, &[&model_name, "lora_config.modules_to_save=null"]);
    let result = sft(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let q4 = adapter_only(&plain_run, &["--type", "q4_0"], &out.path().join("q4-lora.gguf"));
    let stderr = String::from_utf8_lossy(&q4.stderr);
    assert!(stderr.contains("--type q4_0: a LoRA's factors are small and sensitive"), "{stderr}");
    assert!(!out.path().join("q4-lora.gguf").exists());
    let result = adapter_only(&plain_run, &[], &lora);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let file = sft_gguf::GgufFile::open(&lora).unwrap();
    assert_eq!(file.get("general.type").and_then(sft_gguf::Value::as_str), Some("adapter"));
    assert!(file.info("blk.0.attn_q.weight.lora_a").is_some(), "{:?}", file.tensors);
    // The same adapter against another base (llama-micro: head_dim 16, not 32) is refused, naming the tensor.
    let llama = root().join("crates/sft-model/tests/fixtures/llama-micro");
    let other = adapter_only(&plain_run, &["--base", llama.to_str().unwrap()], &out.path().join("other.gguf"));
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && stderr.contains("an adapter for another base model?"), "{stderr}");

    // Deployment checks: the lm_head run breaks vLLM's rule (and fails), the plain one passes llama.cpp's.
    let check = |adapter: &std::path::Path, target: &str| {
        sft(&["export", "check", "--adapter", adapter.to_str().unwrap(), "--target", target])
    };
    let vllm = check(&output_dir, "vllm");
    let stdout = String::from_utf8_lossy(&vllm.stdout);
    assert!(!vllm.status.success() && stdout.contains("warning [modules_to_save]"), "{stdout}");
    let ok = check(&plain_run, "llamacpp");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
}

#[test]
fn gemma3_needs_bos_first_and_a_tokenizer_that_does_not_add_it_is_refused() {
    // The gemma3-micro fixture's tokenizer adds BOS (its post-processor) and has a pad token apart from EOS: the
    // data inspects with BOS first. The same model with the post-processor removed is refused before any weight is
    // read, naming the config key and the first example without BOS.
    let gemma = root().join("crates/sft-model/tests/fixtures/gemma3-micro");
    let inspect = |model: &std::path::Path| {
        sft(&[
            "inspect",
            "--config",
            "configs/legal_clauses.json",
            "--set",
            &format!("model_name={}", model.display()),
            "--set",
            "dataset_config.sample_size=20",
            "--examples",
            "1",
        ])
    };
    let ok = inspect(&gemma);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("<|begin_of_text|>"), "BOS first");

    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&gemma).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut tokenizer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(gemma.join("tokenizer.json")).unwrap()).unwrap();
    tokenizer["post_processor"] = serde_json::Value::Null;
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let refused = inspect(dir.path());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("model_name: Gemma 3 needs BOS (`<|begin_of_text|>`, id 0) first in every sequence"),
        "{stderr}"
    );
}

#[test]
fn sigint_saves_a_checkpoint_and_says_how_to_continue() {
    // A long run interrupted (Ctrl-C) once its first checkpoint exists: it stops after the current step with a
    // checkpoint, exits 0 and says how to continue; no final adapter is written and nothing fails after it.
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("run");
    let args =
        short_train_args(&output_dir, &["training_args.max_steps=400", "early_stopping.early_stopping_patience=1000"]);
    let child = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(&args)
        .current_dir(root())
        .env("HF_HUB_OFFLINE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = output_dir.join("checkpoint-2");
    for _ in 0..1200 {
        if first.is_dir() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(first.is_dir(), "no first checkpoint");
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let result = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&result.stderr));
    assert!(stdout.contains("Interrupted after"), "{stdout}");
    assert!(stdout.contains("(continue with --set training_args.resume_from_checkpoint=true)"), "{stdout}");
    assert!(!output_dir.join("adapter_model.safetensors").exists(), "no final adapter for an interrupted run");
}

#[test]
fn a_torchrun_launch_and_an_mpi_launch_without_the_feature_say_how_to_launch() {
    let out = tempfile::tempdir().unwrap();
    let args = short_train_args(&out.path().join("run"), &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let launched = |vars: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sft"));
        command.args(&args).current_dir(root()).env("HF_HUB_OFFLINE", "1");
        for (k, v) in vars {
            command.env(k, v);
        }
        let result = command.output().unwrap();
        assert!(!result.status.success());
        String::from_utf8_lossy(&result.stderr).into_owned()
    };
    let torchrun = launched(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")]);
    assert!(
        torchrun.contains(
            "WORLD_SIZE=2 (a torchrun-style launch): sft trains on several processes through MPI; launch \
                           with `mpirun -n 2 sft train --config …`"
        ),
        "{torchrun}"
    );
    if !cfg!(feature = "mpi") {
        let mpi = launched(&[("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "1")]);
        assert!(mpi.contains("started by Open MPI as rank 1 of 2, but this binary was built without MPI"), "{mpi}");
    }
    assert!(!out.path().join("run").exists(), "refused before any work");
}
