//! # sft-train
//!
//! The sixth stage of sft-rs: the supervised fine-tuning loop for a LoRA model, with transformers'
//! `TrainingArguments` names and semantics.
//!
//! ```text
//! sft_collate::BatchSource (tokenized examples → padded / packed micro-batches, seeded per epoch)
//!     └─► Trainer::train: per optimizer step, up to gradient_accumulation_steps micro-batches
//!           forward → chunked loss scaled by 1 / (window's supervised tokens) → backward → accumulate
//!           → global-norm clip → AdamW (PyTorch's arithmetic) at LrSchedule::lr(step)
//!             (fp16: the loss gradient scaled by GradScaler, unscaled before the norm, overflowing steps skipped)
//!           → log → evaluate → callbacks → checkpoint-<step>/
//!
//! Callbacks (the `Callback` seam): early stopping, and the reporting layer — `metrics.jsonl` and the loss curve
//! (registered by `Trainer::new`), TensorBoard event files (added by the caller).
//! ```
//!
//! Checkpoints hold the PEFT adapter files, the optimizer moments, `trainer_state.json` (log history, best metric,
//! data position, the partial logging window, callback state), the loss scale with fp16 and the arguments; each is written into a temporary
//! directory and renamed. Resuming from one continues bit for bit (see the crate README).
#![deny(missing_docs)]

mod args;
mod callback;
mod checkpoint;
pub mod collective;
mod early_stopping;
mod error;
pub mod keys;
mod optimizer;
mod report;
mod scaler;
mod schedule;
mod state;
mod trainer;

pub use args::{IntervalStrategy, ReportTo, ResumeFrom, SchedulerType, TrainingArguments};
pub use callback::{Callback, Metrics, TrainerControl};
pub use checkpoint::{
    CHECKPOINT_PREFIX, CHECKSUMS_FILE, checkpoint_dir, latest_checkpoint, list_checkpoints, remove_partial_checkpoints,
    rotate_checkpoints, verify_checkpoint, write_checkpoint,
};
pub use collective::{Collective, Launch, SingleProcess, launch_from_env};
pub use early_stopping::{EarlyStopping, EarlyStoppingConfig};
pub use error::{Result, TrainError};
pub use optimizer::{
    AdamW, DeviceStep, clip_coefficient, device_clip_coefficient, grad_norm, grad_norm_squared,
    grad_norm_squared_scaled,
};
pub use report::{
    EVAL_METRICS, LOSS_CURVE_FILE, LossCurve, METRICS_FILE, MetricsFile, MetricsLog, TensorBoardCallback,
    TensorBoardWriter, write_loss_curve,
};
pub use scaler::{GradScaler, GradScalerConfig, SCALER_FILE};
pub use schedule::LrSchedule;
pub use state::{DataPosition, LogEntry, LoggingWindow, TRAINER_STATE, TrainerState};
pub use trainer::{
    OPTIMIZER_FILE, RUN_CONFIG_FILE, StopReason, TRAINING_ARGS_FILE, TrainOutput, Trainer, supervised_targets,
};
