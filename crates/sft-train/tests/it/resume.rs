//! Exact resume: 2N steps straight equal N steps, a stop with a checkpoint, and N more steps resumed in a fresh
//! trainer (adapters, logged losses and evaluations bit for bit on flex).

use sft_collate::Sampling;
use sft_train::{
    Callback, IntervalStrategy, ResumeFrom, StopReason, Trainer, TrainerControl, TrainerState, TrainingArguments,
};

use crate::{adapters, args, examples, lora, model, source};

/// Stops the run after optimizer step `n`.
pub(crate) struct StopAt(pub(crate) u64);

impl Callback for StopAt {
    fn name(&self) -> &str {
        "StopAt"
    }

    fn on_step_end(&mut self, state: &TrainerState, control: &mut TrainerControl) {
        if state.global_step == self.0 {
            control.should_training_stop = true;
        }
    }
}

fn resume_args(dir: &std::path::Path) -> TrainingArguments {
    TrainingArguments {
        per_device_train_batch_size: 3,
        gradient_accumulation_steps: 2,
        max_steps: 8,
        logging_steps: 3, // a logging window straddles the stop at step 4
        eval_strategy: IntervalStrategy::Steps,
        eval_steps: Some(2),
        save_strategy: IntervalStrategy::Steps,
        save_steps: 1000,
        ..args(dir)
    }
}

#[test]
fn a_resumed_run_equals_the_uninterrupted_one() {
    let config = lora(); // dropout 0.1: masks must repeat after the resume
    let (train, eval) = (examples(20, 5), examples(6, 6));
    let sampling = Sampling::Shuffle { seed: 11 };
    let straight_dir = tempfile::tempdir().unwrap();
    let mut straight = Trainer::new(
        resume_args(straight_dir.path()),
        config.clone(),
        "micro",
        source(&train, 3, sampling),
        Some(source(&eval, 4, Sampling::Sequential)),
    )
    .unwrap();
    let straight = straight.train(model(&config)).unwrap();
    assert_eq!(straight.state.global_step, 8);
    assert!(straight.state.position.epoch >= 1, "the run crosses an epoch boundary (reshuffle)");

    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(
        resume_args(dir.path()),
        config.clone(),
        "micro",
        source(&train, 3, sampling),
        Some(source(&eval, 4, Sampling::Sequential)),
    )
    .unwrap()
    .with_callback(StopAt(4));
    let first = first.train(model(&config)).unwrap();
    assert_eq!(first.stop, StopReason::Stopped);
    assert_eq!(first.last_checkpoint.as_deref(), Some(dir.path().join("checkpoint-4").as_path()));

    // A fresh trainer and a fresh model (new adapters from another seed would be overwritten by the checkpoint).
    let args = TrainingArguments { resume_from_checkpoint: Some(ResumeFrom::Latest(true)), ..resume_args(dir.path()) };
    let mut second = Trainer::new(
        args,
        config.clone(),
        "micro",
        source(&train, 3, sampling),
        Some(source(&eval, 4, Sampling::Sequential)),
    )
    .unwrap();
    let resumed = second.train(model(&config)).unwrap();
    assert_eq!(resumed.stop, StopReason::Completed);
    assert_eq!(adapters(&resumed.model), adapters(&straight.model), "adapters after 8 steps");
    assert_eq!(resumed.state.log_history, without_runtimes(&straight.state.log_history, &resumed.state.log_history));
    let losses: Vec<f64> = resumed.state.log_history.iter().filter_map(|e| e.get("loss").copied()).collect();
    eprintln!("losses {losses:?}");
    assert_eq!(losses.len(), 3, "logs at steps 3, 6 and the last step 8");
    // The metrics file holds the same history.
    let lines = std::fs::read_to_string(dir.path().join(sft_train::METRICS_FILE)).unwrap();
    assert_eq!(lines.lines().count(), resumed.state.log_history.len());
}

/// `expected` with the wall-clock fields (`eval_runtime`, `train_tokens_per_second`) taken from `actual`, which
/// cannot repeat.
pub(crate) fn without_runtimes(
    expected: &[sft_train::LogEntry],
    actual: &[sft_train::LogEntry],
) -> Vec<sft_train::LogEntry> {
    assert_eq!(expected.len(), actual.len(), "{expected:?}\n{actual:?}");
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let mut e = e.clone();
            for key in ["eval_runtime", "train_tokens_per_second"] {
                if let Some(v) = a.get(key) {
                    e.insert(key.into(), *v);
                }
            }
            e
        })
        .collect()
}

/// A run stopped after step 2 with a checkpoint in `dir` (an early-stopping callback keeps state in it).
fn stopped_run(dir: &std::path::Path) -> std::path::PathBuf {
    let config = lora();
    let train = examples(12, 5);
    let stopping = sft_train::EarlyStopping::new(
        sft_train::EarlyStoppingConfig { early_stopping_patience: 5, early_stopping_threshold: 0.0 },
        "eval_loss",
        false,
    );
    let args = TrainingArguments { eval_strategy: IntervalStrategy::No, ..resume_args(dir) };
    let mut trainer = Trainer::new(args, config.clone(), "micro", source(&train, 3, Sampling::Sequential), None)
        .unwrap()
        .with_callback(stopping)
        .with_callback(StopAt(2));
    let out = trainer.train(model(&config)).unwrap();
    out.last_checkpoint.unwrap()
}

/// The error of resuming from the latest checkpoint in `dir`.
fn resume_error(dir: &std::path::Path) -> String {
    let config = lora();
    let args = TrainingArguments {
        resume_from_checkpoint: Some(ResumeFrom::Latest(true)),
        eval_strategy: IntervalStrategy::No,
        ..resume_args(dir)
    };
    let stopping = sft_train::EarlyStopping::new(
        sft_train::EarlyStoppingConfig { early_stopping_patience: 5, early_stopping_threshold: 0.0 },
        "eval_loss",
        false,
    );
    let train = examples(12, 5);
    let mut trainer = Trainer::new(args, config.clone(), "micro", source(&train, 3, Sampling::Sequential), None)
        .unwrap()
        .with_callback(stopping);
    match trainer.train(model(&config)) {
        Ok(_) => panic!("resumed from a damaged checkpoint"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_damaged_checkpoint_is_refused_naming_the_file() {
    // One byte flipped in the optimizer state (inside its tensor data, past the header).
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = stopped_run(dir.path());
    let optimizer = checkpoint.join("optimizer.safetensors");
    let mut bytes = std::fs::read(&optimizer).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x10;
    std::fs::write(&optimizer, &bytes).unwrap();
    let message = resume_error(dir.path());
    assert!(message.starts_with(&format!("{}: its SHA-256 differs", optimizer.display())), "{message}");

    // A file removed.
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = stopped_run(dir.path());
    let adapter = checkpoint.join(sft_peft::ADAPTER_WEIGHTS);
    std::fs::remove_file(&adapter).unwrap();
    let message = resume_error(dir.path());
    assert!(message.starts_with(&format!("{}: is missing", adapter.display())), "{message}");

    // trainer_state.json removed: the newest checkpoint is named, not skipped for an older one.
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = stopped_run(dir.path());
    std::fs::remove_file(checkpoint.join(sft_train::TRAINER_STATE)).unwrap();
    let message = resume_error(dir.path());
    assert!(message.starts_with(&checkpoint.join(sft_train::TRAINER_STATE).display().to_string()), "{message}");
}

#[test]
fn a_callback_state_that_does_not_parse_stops_the_resume() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = stopped_run(dir.path());
    // Edit the early-stopping state and the checksum list with it (as a hand edit that keeps the list valid).
    let state_path = checkpoint.join(sft_train::TRAINER_STATE);
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["stateful_callbacks"]["EarlyStoppingCallback"] =
        serde_json::json!({"early_stopping_patience_counter": "two"});
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    std::fs::remove_file(checkpoint.join(sft_train::CHECKSUMS_FILE)).unwrap();
    let message = resume_error(dir.path());
    assert!(
        message.starts_with(&format!(
            "{}: stateful_callbacks.EarlyStoppingCallback: invalid type: string \"two\"",
            state_path.display()
        )),
        "{message}"
    );
}
