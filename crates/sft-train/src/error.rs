//! The error type of training: configuration, data, numerics, checkpoints.

use std::path::PathBuf;

/// What can go wrong configuring, running, checkpointing or resuming a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A config value is out of range; `key` is the full key path (`training_args.learning_rate`).
    #[error("{key}: {message}")]
    InvalidConfig {
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Evaluation was asked for, but the run has no validation split.
    #[error("data: there is no validation split to evaluate on")]
    NoValidationSplit,
    /// No label of the validation split carries loss, so there is nothing to evaluate.
    #[error("data: no label of the validation split carries loss")]
    NothingToEvaluate,
    /// A collective operation of data-parallel training failed.
    #[error("{operation}: {message}")]
    Collective {
        /// The operation (`MPI_Init`, `all-reduce`, …).
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A micro-batch worker thread panicked (a bug; the step is lost and the run stops).
    #[error("a micro-batch worker thread panicked")]
    WorkerPanicked,
    /// Values could not be read back from the device.
    #[error("reading {what} from the device: {source}")]
    DeviceRead {
        /// What was read (`the loss`, `the loss scale`).
        what: &'static str,
        /// Burn's error.
        #[source]
        source: burn::tensor::DataError,
    },
    /// The loss or the gradient norm of an optimizer step is NaN or infinite. Steps are read back from the device
    /// only at logging, evaluation and save steps, so the run stops at the next of those; no checkpoint is written
    /// after the bad step, and the last checkpoint in `output_dir` is the last good state.
    #[error("step {step}: {what} is not finite ({value}); stopping (the last checkpoint is the last good state)")]
    NonFinite {
        /// The optimizer step (1-based) that failed.
        step: u64,
        /// `loss` or `grad_norm`.
        what: &'static str,
        /// The value.
        value: f64,
    },
    /// A JSON file does not parse, or a value cannot be written as JSON.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error (with the line and column when parsing).
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint directory is incomplete, from another run, or unreadable.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing `checkpoint-<step>` failed part-way (a full disk, a permission): nothing of it was kept, and the
    /// checkpoints written before are intact.
    #[error(
        "could not write checkpoint-{step} in {}: {source}; the checkpoints written before it are intact",
        output_dir.display()
    )]
    CheckpointWrite {
        /// The optimizer step of the checkpoint.
        step: u64,
        /// Where the checkpoints are.
        output_dir: PathBuf,
        /// What failed.
        #[source]
        source: Box<TrainError>,
    },
    /// A callback's state saved in a checkpoint cannot be restored (it does not parse as the callback's state).
    #[error("{}: stateful_callbacks.{callback}: {source}", path.display())]
    CallbackState {
        /// The checkpoint's `trainer_state.json`.
        path: PathBuf,
        /// The callback's name.
        callback: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The model failed (shapes, labels).
    #[error(transparent)]
    Model(#[from] sft_model::ModelError),
    /// Saving or loading the adapter failed.
    #[error(transparent)]
    Peft(#[from] sft_peft::PeftError),
    /// Building a batch failed (packing).
    #[error(transparent)]
    Collate(#[from] sft_collate::CollateError),
}

/// The result type of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// `Ok` if `ok`, else [`TrainError::InvalidConfig`] for `section.key`.
pub(crate) fn check(ok: bool, section: &str, key: &str, message: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(TrainError::InvalidConfig { key: format!("{section}.{key}"), message: message.to_owned() })
    }
}

/// An I/O error at `path`.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
