//! `trainer_state.json`: where a run is and what it has logged (transformers' `TrainerState`, plus the data
//! position and the partial logging window that exact resume needs).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError, io};

/// One entry of the log history: metric name → value, with `step` and `epoch` (JSON numbers).
pub type LogEntry = BTreeMap<String, f64>;

/// Where the next micro-batch comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPosition {
    /// 0-based epoch.
    pub epoch: u64,
    /// Index of the next micro-batch in that epoch's plan.
    pub micro_batch: usize,
}

/// Sums over the optimizer steps since the last log, carried across a checkpoint so a resumed run logs the same
/// averages as an uninterrupted one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoggingWindow {
    /// Optimizer steps in the window.
    pub steps: u64,
    /// Σ of the steps' mean losses.
    pub loss_sum: f64,
    /// Supervised tokens (loss-carrying labels).
    pub supervised_tokens: u64,
    /// Tokens whose arg-max prediction was the label.
    pub correct_tokens: u64,
    /// Non-pad tokens.
    pub tokens: u64,
    /// Seconds spent in training steps (evaluation and saving excluded).
    pub seconds: f64,
}

/// The state of a run, saved in every checkpoint and in `output_dir` at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken.
    pub global_step: u64,
    /// Optimizer steps the run will take.
    pub max_steps: u64,
    /// Fractional epochs completed.
    pub epoch: f64,
    /// Epochs the run spans (rounded up).
    pub num_train_epochs: u64,
    /// Micro-batches per epoch.
    pub batches_per_epoch: usize,
    /// Every log and evaluation, in order.
    pub log_history: Vec<LogEntry>,
    /// The best value of the metric for the best model (`training_args.metric_for_best_model`).
    pub best_metric: Option<f64>,
    /// The step of that evaluation.
    pub best_global_step: Option<u64>,
    /// The checkpoint holding the best model.
    pub best_model_checkpoint: Option<String>,
    /// Non-pad tokens trained on (TRL's `num_tokens`).
    pub num_input_tokens_seen: u64,
    /// Micro-batches skipped because no label carried loss (they contribute nothing).
    pub skipped_batches: u64,
    /// fp16 optimizer steps skipped because the scaled gradients overflowed (no update; the learning-rate
    /// schedule does not advance on them). Always 0 without `fp16`.
    #[serde(default)]
    pub skipped_steps: u64,
    /// Where the data continues.
    pub position: DataPosition,
    /// The logging window in progress.
    pub logging_window: LoggingWindow,
    /// The seed of the run (`training_args.seed`); dropout at step `k` draws from generators seeded by it, `k` and
    /// the micro-batch.
    pub seed: u64,
    /// State of callbacks that have one (early stopping's patience counter), by callback name.
    pub stateful_callbacks: BTreeMap<String, serde_json::Value>,
    /// Processes the run trained with (data parallel; 1 alone). A run resumes with the same number.
    #[serde(default = "one")]
    pub world_size: usize,
}

fn one() -> usize {
    1
}

/// The file name of the state.
pub const TRAINER_STATE: &str = "trainer_state.json";

impl TrainerState {
    /// A fresh state for a run of `max_steps` steps.
    pub fn new(max_steps: u64, num_train_epochs: u64, batches_per_epoch: usize, seed: u64) -> Self {
        Self {
            global_step: 0,
            max_steps,
            epoch: 0.0,
            num_train_epochs,
            batches_per_epoch,
            log_history: Vec::new(),
            best_metric: None,
            best_global_step: None,
            best_model_checkpoint: None,
            num_input_tokens_seen: 0,
            skipped_batches: 0,
            skipped_steps: 0,
            position: DataPosition::default(),
            logging_window: LoggingWindow::default(),
            seed,
            stateful_callbacks: BTreeMap::new(),
            world_size: 1,
        }
    }

    /// Writes `dir/trainer_state.json` (atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(TRAINER_STATE);
        let json = serde_json::to_vec_pretty(self).map_err(|source| TrainError::Json { path: path.clone(), source })?;
        sft_model::write_atomic(&path, &json)?;
        Ok(())
    }

    /// Reads `dir/trainer_state.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(TRAINER_STATE);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|source| TrainError::Json { path, source })
    }
}
