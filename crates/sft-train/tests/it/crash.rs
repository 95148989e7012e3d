//! Crash safety in a child process (this test binary re-run with `SFT_TRAIN_CHILD` set): SIGKILL while
//! checkpoints are being written leaves every `checkpoint-*` complete and loadable, and SIGINT saves a checkpoint
//! and exits cleanly.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sft_collate::Sampling;
use sft_train::{IntervalStrategy, StopReason, Trainer, TrainerState, TrainingArguments};

use crate::{examples, lora, model, source};

const CHILD_DIR: &str = "SFT_TRAIN_CHILD";

/// The child: trains into `$SFT_TRAIN_CHILD` with a checkpoint every step, stopping on SIGINT. Does nothing when
/// run without the variable (it is `#[ignore]`d so plain runs skip it).
#[test]
#[ignore = "run as a child process by the crash tests"]
fn child_trains_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let config = lora();
    let data = examples(16, 2);
    let args = TrainingArguments {
        per_device_train_batch_size: 2,
        max_steps: 100_000,
        save_strategy: IntervalStrategy::Steps,
        save_steps: 1,
        save_total_limit: Some(3),
        ..crate::args(Path::new(&dir))
    };
    let mut trainer =
        Trainer::new(args, config.clone(), "micro", source(&data, 2, Sampling::Shuffle { seed: 4 }), None).unwrap();
    trainer.stop_on_sigint().unwrap();
    let out = trainer.train(model(&config)).unwrap();
    assert_eq!(out.stop, StopReason::Interrupted);
    std::fs::write(Path::new(&dir).join("child-exited-cleanly"), out.state.global_step.to_string()).unwrap();
}

fn spawn(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["crash::child_trains_until_killed", "--exact", "--ignored", "--test-threads", "1"])
        .env(CHILD_DIR, dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `dir` has a checkpoint at or past `step`.
fn wait_for_checkpoint(dir: &Path, step: u64, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let steps: Vec<u64> =
            sft_train::list_checkpoints(dir).unwrap_or_default().into_iter().map(|(s, _)| s).collect();
        if steps.iter().any(|&s| s >= step) {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the child exited early");
        assert!(Instant::now() < deadline, "no checkpoint {step} after 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every checkpoint directory is complete: its state, adapter and optimizer state load.
fn assert_loadable(dir: &Path) -> u64 {
    let checkpoints = sft_train::list_checkpoints(dir).unwrap();
    assert!(!checkpoints.is_empty());
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(step) = name.strip_prefix("checkpoint-") {
            assert!(checkpoints.iter().any(|(s, _)| s.to_string() == step), "{name} is incomplete");
        }
    }
    for (step, path) in &checkpoints {
        let state = TrainerState::load(path).unwrap();
        assert_eq!(state.global_step, *step);
        let base = sft_model::LlamaForCausalLM::from_pretrained(
            &crate::micro(),
            &burn::prelude::Device::flex(),
            burn::tensor::FloatDType::F32,
        )
        .unwrap()
        .1;
        sft_peft::load_adapter(base, path).unwrap();
        let mut optimizer = sft_train::AdamW::new(&TrainingArguments::default());
        optimizer.load(&path.join(sft_train::OPTIMIZER_FILE), &burn::prelude::Device::flex()).unwrap();
        assert_eq!(optimizer.steps, *step);
    }
    checkpoints.last().unwrap().0
}

#[test]
fn sigkill_while_checkpointing_leaves_loadable_checkpoints() {
    // Kill at a spread of moments after the third checkpoint: with a checkpoint every step (a few ms each), some
    // kills land inside a write.
    for delay_ms in [0, 3, 7, 13, 29] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn(dir.path());
        wait_for_checkpoint(dir.path(), 3, &mut child);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let last = assert_loadable(dir.path());
        eprintln!("killed after {delay_ms} ms: the latest complete checkpoint is step {last}");
    }
}

#[test]
fn sigint_saves_a_checkpoint_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path());
    wait_for_checkpoint(dir.path(), 2, &mut child);
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let step: u64 = std::fs::read_to_string(dir.path().join("child-exited-cleanly")).unwrap().parse().unwrap();
    assert_eq!(assert_loadable(dir.path()), step, "the last checkpoint is the interrupted step");
}
