//! The callback seam: code that observes a run and can stop it or ask for a checkpoint (transformers'
//! `TrainerCallback`). Early stopping and progress bars are callbacks.

use std::collections::BTreeMap;
use std::path::Path;

use crate::state::{LogEntry, TrainerState};

/// Evaluation metrics by name (`eval_loss`, `eval_mean_token_accuracy`, …).
pub type Metrics = BTreeMap<String, f64>;

/// What callbacks ask of the trainer after an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrainerControl {
    /// Stop after this step (a checkpoint is saved first when `save_strategy` is not `no`).
    pub should_training_stop: bool,
    /// Save a checkpoint at this step.
    pub should_save: bool,
}

/// Hooks called by the trainer, in registration order. Every method has an empty default.
pub trait Callback {
    /// A name, unique among the run's callbacks: it keys the callback's saved [`state`](Callback::state).
    fn name(&self) -> &str;

    /// Once, before the first step (after a resume, with the restored state).
    fn on_train_begin(&mut self, _state: &TrainerState) {}

    /// After every optimizer step.
    fn on_step_end(&mut self, _state: &TrainerState, _control: &mut TrainerControl) {}

    /// After each log entry (training logs and evaluations).
    fn on_log(&mut self, _state: &TrainerState, _entry: &LogEntry) {}

    /// After an evaluation, before the best model is determined: a callback may add or change metrics (later
    /// callbacks and the best-model tracking see the change) and stop the run.
    fn on_evaluate(&mut self, _state: &TrainerState, _metrics: &mut Metrics, _control: &mut TrainerControl) {}

    /// During an evaluation, after each of its `total` batches (`done` counts from 1).
    fn on_prediction_step(&mut self, _state: &TrainerState, _done: usize, _total: usize) {}

    /// After a checkpoint is written to `dir`.
    fn on_save(&mut self, _state: &TrainerState, _dir: &Path) {}

    /// Once, when the run ends normally (not on error).
    fn on_train_end(&mut self, _state: &TrainerState) {}

    /// State to keep in checkpoints, restored by [`restore`](Callback::restore) on resume.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores what [`state`](Callback::state) returned. A state that does not parse is an error (the resume
    /// stops naming the checkpoint and the callback), never a silent fresh start.
    fn restore(&mut self, _state: &serde_json::Value) -> Result<(), serde_json::Error> {
        Ok(())
    }
}
