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
