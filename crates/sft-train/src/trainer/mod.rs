//! The training loop: micro-batches, gradient accumulation normalised over the window's supervised tokens, AdamW
//! with clipping and a schedule, evaluation, callbacks, checkpoints and exact resume.
//!
//! [`Trainer`] and its builders are here; its work is split by concern: `run` (the loop over optimizer steps,
//! logging), `step` (one optimizer step on the device and reading its sums back), `eval` (evaluation and the best
//! metric), `persist` (checkpoints and resume).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::{ModuleMapper, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::DType;
use sft_collate::{Batch, BatchSource};
use sft_model::fused::has_cpu_kernels;
use sft_model::{LlamaForCausalLM, LossOptions, ModelInput, chunked_causal_lm_loss};
use sft_peft::{BaseLinear, LoraConfig, LoraLinear, PeftError, load_adapter, save_adapter};
use sft_rand::mix;

use crate::args::{IntervalStrategy, ResumeFrom, TrainingArguments};
use crate::callback::{Callback, Metrics, TrainerControl};
use crate::checkpoint::{
    latest_checkpoint, remove_partial_checkpoints, rotate_checkpoints, verify_checkpoint, write_checkpoint,
};
use crate::collective::{Collective, SingleProcess, Trainable, trainable};
use crate::error::{Result, TrainError};
use crate::keys;
use crate::optimizer::{AdamW, device_clip_coefficient, grad_norm_squared, grad_norm_squared_scaled};
use crate::report::{LossCurve, MetricsLog};
use crate::scaler::{GradScaler, GradScalerConfig, LossScaledSteps, SCALER_FILE};
use crate::schedule::LrSchedule;
use crate::state::{LogEntry, LoggingWindow, TrainerState};

mod eval;
mod persist;
mod run;
mod step;

use persist::*;
use run::*;
pub(crate) use step::reenter_autodiff;
pub use step::supervised_targets;
use step::*;

/// The optimizer state's file in a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The training arguments' file in a checkpoint.
pub const TRAINING_ARGS_FILE: &str = "training_args.json";
/// The whole run config's file in a checkpoint (when the trainer was given one).
pub const RUN_CONFIG_FILE: &str = "run_config.json";

/// Why [`Trainer::train`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All `max_steps` optimizer steps ran.
    Completed,
    /// A callback (early stopping) stopped the run.
    Stopped,
    /// The stop flag was raised (SIGINT): a checkpoint was saved, and the run can be resumed from it.
    Interrupted,
}

impl std::fmt::Display for StopReason {
    /// For summaries: `Completed`, `Stopped early`, `Interrupted`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Completed => "Completed",
            Self::Stopped => "Stopped early",
            Self::Interrupted => "Interrupted",
        })
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct TrainOutput {
    /// The trained model (the best checkpoint's adapters with `load_best_model_at_end`).
    pub model: LlamaForCausalLM<LoraLinear>,
    /// The final state.
    pub state: TrainerState,
    /// Why the run ended.
    pub stop: StopReason,
    /// The last checkpoint written, if any.
    pub last_checkpoint: Option<PathBuf>,
}

/// A supervised fine-tuning run of a LoRA model (transformers' `Trainer` with TRL's `SFTTrainer` metrics).
///
/// - Each optimizer step consumes up to `gradient_accumulation_steps` micro-batches (the last window of an epoch
///   may be shorter). The loss is the sum of token losses over the window divided by the window's supervised
///   tokens, so batch 4 × accumulation 1 and batch 1 × accumulation 4 give the same update.
/// - Step `k` (0-based) uses `LrSchedule::lr(k)`; gradients are clipped to `max_grad_norm` (global L2 norm).
/// - Dropout of micro-batch `i` at step `k` draws from a generator seeded by (`seed`, `k`, `i`), and each epoch's
///   order from (`seed`, epoch): a resumed run repeats exactly what the uninterrupted run would have done, and
///   `micro_batch_workers` (micro-batches in parallel threads) does not change the result.
#[allow(missing_debug_implementations)]
pub struct Trainer<'a> {
    args: TrainingArguments,
    lora_config: LoraConfig,
    base_model_name: String,
    train: BatchSource<'a>,
    eval: Option<BatchSource<'a>>,
    callbacks: Vec<Box<dyn Callback + 'a>>,
    stop: Arc<AtomicBool>,
    run_config: Option<serde_json::Value>,
    scaler_config: GradScalerConfig,
    /// The checkpoint [`check_resume`](Self::check_resume) verified, so `train` does not hash it again.
    verified: Option<PathBuf>,
    /// The processes training together ([`SingleProcess`] unless [`with_collective`](Self::with_collective)).
    collective: Box<dyn Collective + 'a>,
    /// How many of the first `callbacks` are the reporting ones `new` registers (they write files: rank 0 only).
    reporting: usize,
}

impl<'a> Trainer<'a> {
    /// A run of `args` over `train` (and `eval`, needed unless `eval_strategy` is `no`), saving adapters made with
    /// `lora_config` for the base model `base_model_name` (written into `adapter_config.json`). The reporting
    /// callbacks [`MetricsLog`] (`metrics.jsonl`) and [`LossCurve`] (`loss_curve.svg`) are registered first.
    pub fn new(
        args: TrainingArguments,
        lora_config: LoraConfig,
        base_model_name: impl Into<String>,
        train: BatchSource<'a>,
        eval: Option<BatchSource<'a>>,
    ) -> Result<Self> {
        args.validate()?;
        if args.eval_strategy != IntervalStrategy::No && eval.is_none() {
            return Err(TrainError::InvalidConfig {
                key: "training_args.eval_strategy".into(),
                message: "evaluation is on, but there is no validation split".into(),
            });
        }
        let reporting: Vec<Box<dyn Callback + 'a>> =
            vec![Box::new(MetricsLog::new(&args.output_dir)), Box::new(LossCurve::new(&args.output_dir))];
        Ok(Self {
            args,
            lora_config,
            base_model_name: base_model_name.into(),
            train,
            eval,
            callbacks: reporting,
            stop: Arc::new(AtomicBool::new(false)),
            run_config: None,
            scaler_config: GradScalerConfig::default(),
            verified: None,
            collective: Box::new(SingleProcess),
            reporting: 2,
        })
    }

    /// Trains data-parallel with the other processes of `collective` (PyTorch DDP's semantics): an optimizer step
    /// takes a window of `world × gradient_accumulation_steps` micro-batches of the epoch plan, rank `r` computing
    /// every `world`-th one from the `r`-th; the loss is normalised by the supervised tokens of the whole window (each
    /// rank knows them from the plan); the gradients, loss sums and stop flags of the ranks are summed by one
    /// all-reduce per step, before clipping, so every rank takes the same AdamW step. Trainable parameters are
    /// broadcast from rank 0 when training starts, evaluation is sharded and its sums all-reduced, and only rank 0
    /// writes files (checkpoints, the adapter, the reporting callbacks registered by [`new`](Self::new); callers
    /// add theirs on rank 0 only). `world_size` is recorded in the trainer state; resuming takes the same world
    /// size and a checkpoint every rank can read.
    pub fn with_collective(mut self, collective: impl Collective + 'a) -> Self {
        if !collective.is_main() {
            self.callbacks.drain(..self.reporting.min(self.callbacks.len()));
            self.reporting = 0;
        }
        self.collective = Box::new(collective);
        self
    }

    /// The processes this trainer trains with.
    pub fn collective(&self) -> &dyn Collective {
        self.collective.as_ref()
    }

    /// The constants of fp16's dynamic loss scaling (accelerate's `GradScalerKwargs`); PyTorch's defaults unless
    /// set. Used only with `fp16: true`.
    pub fn with_grad_scaler(mut self, config: GradScalerConfig) -> Self {
        self.scaler_config = config;
        self
    }

    /// Adds a callback (called after those added before it).
    pub fn with_callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// The whole run config, saved in every checkpoint as `run_config.json`.
    pub fn with_run_config(mut self, config: serde_json::Value) -> Self {
        self.run_config = Some(config);
        self
    }

    /// The stop flag: raising it ends the run after the current optimizer step, with a checkpoint
    /// ([`StopReason::Interrupted`]).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Raises the stop flag on SIGINT (Ctrl-C), so an interrupted run saves a checkpoint and returns cleanly.
    pub fn stop_on_sigint(&self) -> Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGINT, self.stop.clone())
            .map(|_| ())
            .map_err(|source| TrainError::Io { path: "SIGINT handler".into(), source })
    }

    /// The training arguments.
    pub fn args(&self) -> &TrainingArguments {
        &self.args
    }

    /// Optimizer steps the run takes: `max_steps` when > 0, else `ceil(num_train_epochs × steps per epoch)` with
    /// `ceil(micro-batches per epoch / (gradient_accumulation_steps × world size))` steps per epoch.
    pub fn total_steps(&self) -> u64 {
        if self.args.max_steps > 0 {
            return self.args.max_steps as u64;
        }
        (self.args.num_train_epochs * self.steps_per_epoch() as f64).ceil().max(1.0) as u64
    }

    fn steps_per_epoch(&self) -> u64 {
        self.train.batches_per_epoch().div_ceil(self.window()) as u64
    }

    /// Micro-batches per optimizer step over all ranks: `world × gradient_accumulation_steps`.
    fn window(&self) -> usize {
        self.args.gradient_accumulation_steps * self.collective.world_size()
    }

    fn output_dir(&self) -> PathBuf {
        PathBuf::from(&self.args.output_dir)
    }
}
