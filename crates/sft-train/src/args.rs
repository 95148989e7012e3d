//! `training_args`: the keys of transformers' `TrainingArguments` (and TRL's `SFTConfig`) that the trainer reads.
//!
//! Names, defaults and meaning are transformers' unless a field's doc says otherwise. TRL's `SFTConfig` also keeps
//! tokenization (`truncation_mode`, `eos_token`, `pad_token`), batching (`packing`, `pad_to_multiple_of`,
//! `group_by_length`) and Hub (`push_to_hub`, `hub_model_id`, `hub_private_repo`) keys in `training_args`; those
//! belong to their stages (`sft_tokenize::TokenizeConfig`, `sft_collate::CollateConfig`, the facade's push), and the
//! facade's run config maps the one JSON object onto the sections.

use serde::{Deserialize, Serialize};

use crate::error::{Result, check};

/// Optimisation, schedule, logging, evaluation and checkpointing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingArguments {
    /// Directory for checkpoints, logs and the final adapter.
    #[serde(default = "default_output_dir")]
    pub output_dir: String,
    /// Examples per micro-batch.
    #[serde(default = "default_batch")]
    pub per_device_train_batch_size: usize,
    /// Examples per evaluation batch.
    #[serde(default = "default_batch")]
    pub per_device_eval_batch_size: usize,
    /// Micro-batches per optimizer step.
    #[serde(default = "one")]
    pub gradient_accumulation_steps: usize,
    /// Epochs (fractional allowed); ignored when `max_steps` > 0, as in transformers.
    #[serde(default = "default_epochs")]
    pub num_train_epochs: f64,
    /// Total optimizer steps; `-1` = from `num_train_epochs`.
    #[serde(default = "minus_one")]
    pub max_steps: i64,
    /// Peak learning rate (TRL's `SFTConfig` default 2e-5).
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// AdamW β1.
    #[serde(default = "default_beta1")]
    pub adam_beta1: f64,
    /// AdamW β2.
    #[serde(default = "default_beta2")]
    pub adam_beta2: f64,
    /// AdamW ε.
    #[serde(default = "default_eps")]
    pub adam_epsilon: f64,
    /// Global gradient-norm clipping threshold; 0 disables clipping.
    #[serde(default = "default_max_grad_norm")]
    pub max_grad_norm: f64,
    /// Learning-rate schedule after warmup.
    #[serde(default)]
    pub lr_scheduler_type: SchedulerType,
    /// Linear warmup steps; wins over `warmup_ratio` when > 0.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Warmup as a fraction of the total steps, in [0, 1].
    #[serde(default)]
    pub warmup_ratio: f64,
    /// When to log.
    #[serde(default = "steps")]
    pub logging_strategy: IntervalStrategy,
    /// Optimizer steps between logs (TRL's `SFTConfig` default 10).
    #[serde(default = "default_logging_steps")]
    pub logging_steps: usize,
    /// When to evaluate. `evaluation_strategy` (the older name) is accepted too.
    #[serde(default, alias = "evaluation_strategy")]
    pub eval_strategy: IntervalStrategy,
    /// Optimizer steps between evaluations; defaults to `logging_steps`.
    #[serde(default)]
    pub eval_steps: Option<usize>,
    /// When to save checkpoints.
    #[serde(default = "steps")]
    pub save_strategy: IntervalStrategy,
    /// Optimizer steps between checkpoints.
    #[serde(default = "default_save_steps")]
    pub save_steps: usize,
    /// Keep at most this many checkpoints (the best one is never deleted).
    #[serde(default)]
    pub save_total_limit: Option<usize>,
    /// Reload the best checkpoint's adapter when training ends.
    #[serde(default)]
    pub load_best_model_at_end: bool,
    /// Metric that decides the best checkpoint and early stopping; `loss` (= `eval_loss`) by default.
    #[serde(default)]
    pub metric_for_best_model: Option<String>,
    /// Whether a larger metric is better; by default `false` for metrics ending in `loss`, else `true`.
    #[serde(default)]
    pub greater_is_better: Option<bool>,
    /// Seed of initialisation, dropout and per-epoch shuffling.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// bf16 mixed precision (frozen base and activations in bf16; adapters and optimizer state in f32).
    #[serde(default)]
    pub bf16: bool,
    /// fp16 mixed precision, for devices without bf16: the frozen base and activations in fp16, adapters and
    /// optimizer state in f32, with dynamic loss scaling (PyTorch's `GradScaler`: steps whose gradients overflow
    /// are skipped and the scale halved). Cannot be combined with `bf16`.
    #[serde(default)]
    pub fp16: bool,
    /// Micro-batches of an accumulation window computed at once, each in its own thread (sft-rs; no transformers
    /// equivalent). More cores stay busy between the matmuls; memory grows by one micro-batch's activations per
    /// worker; the result is the same for any value.
    #[serde(default = "one")]
    pub micro_batch_workers: usize,
    /// Recompute activations in the backward pass to save memory.
    #[serde(default)]
    pub gradient_checkpointing: bool,
    /// Where metrics go besides the log: `"none"`, `"all"`, or a list such as `["tensorboard"]`.
    #[serde(default)]
    pub report_to: Option<ReportTo>,
    /// Continue from a checkpoint: a path, or `true` for the latest in `output_dir`.
    #[serde(default)]
    pub resume_from_checkpoint: Option<ResumeFrom>,
}

/// `lr_scheduler_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerType {
    /// Linear decay to 0 after warmup.
    #[default]
    Linear,
    /// Half-cosine decay to 0 after warmup.
    Cosine,
    /// Constant (no warmup).
    Constant,
    /// Constant after warmup.
    ConstantWithWarmup,
}

/// `logging_strategy`, `eval_strategy`, `save_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalStrategy {
    /// Never.
    #[default]
    No,
    /// Every N optimizer steps.
    Steps,
    /// At the end of every epoch.
    Epoch,
}

/// `report_to`: one name (`"none"`, `"all"`, `"tensorboard"`) or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportTo {
    /// One integration name.
    One(String),
    /// Several integration names.
    Many(Vec<String>),
}

/// `resume_from_checkpoint`: `true`/`false` or a checkpoint path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResumeFrom {
    /// `true` = the latest checkpoint in `output_dir`.
    Latest(bool),
    /// A checkpoint directory.
    Path(String),
}

fn default_output_dir() -> String {
    "outputs".into()
}
fn default_batch() -> usize {
    8
}
fn one() -> usize {
    1
}
fn default_epochs() -> f64 {
    3.0
}
fn minus_one() -> i64 {
    -1
}
fn default_lr() -> f64 {
    2e-5
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_max_grad_norm() -> f64 {
    1.0
}
fn steps() -> IntervalStrategy {
    IntervalStrategy::Steps
}
fn default_logging_steps() -> usize {
    10
}
fn default_save_steps() -> usize {
    500
}
fn default_seed() -> u64 {
    42
}

impl Default for TrainingArguments {
    fn default() -> Self {
        // Deserialising an empty object applies every `#[serde(default)]`, so the defaults live in one place.
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

const REPORTERS: &[&str] = &["none", "all", "tensorboard"];

impl TrainingArguments {
    /// Whether `report_to` names the integration `name` (directly or through `"all"`; `"none"` names nothing).
    pub fn reports_to(&self, name: &str) -> bool {
        let names: &[String] = match &self.report_to {
            Some(ReportTo::One(n)) => std::slice::from_ref(n),
            Some(ReportTo::Many(ns)) => ns,
            None => &[],
        };
        names.iter().any(|n| n == name || n == "all")
    }

    /// `eval_steps`, or `logging_steps` when unset (transformers' rule).
    pub fn eval_steps(&self) -> usize {
        self.eval_steps.unwrap_or(self.logging_steps)
    }

    /// The metric deciding the best checkpoint: `metric_for_best_model` with an `eval_` prefix added if missing.
    pub fn best_metric(&self) -> String {
        let m = self.metric_for_best_model.as_deref().unwrap_or(crate::keys::LOSS);
        if m.starts_with("eval_") { m.to_owned() } else { format!("eval_{m}") }
    }

    /// Whether a larger [`best_metric`](Self::best_metric) is better.
    pub fn greater_is_better(&self) -> bool {
        self.greater_is_better.unwrap_or_else(|| !self.best_metric().ends_with("loss"))
    }

    /// Checks ranges and the cross-key rules transformers enforces; errors name `training_args.<key>`.
    pub fn validate(&self) -> Result<()> {
        const K: &str = "training_args";
        let positive = |v: f64| v.is_finite() && v > 0.0;
        check(!self.output_dir.is_empty(), K, "output_dir", "expected a directory path")?;
        check(self.per_device_train_batch_size >= 1, K, "per_device_train_batch_size", "expected a whole number >= 1")?;
        check(self.per_device_eval_batch_size >= 1, K, "per_device_eval_batch_size", "expected a whole number >= 1")?;
        check(self.gradient_accumulation_steps >= 1, K, "gradient_accumulation_steps", "expected a whole number >= 1")?;
        check(self.micro_batch_workers >= 1, K, "micro_batch_workers", "expected a whole number >= 1")?;
        check(self.max_steps == -1 || self.max_steps > 0, K, "max_steps", "expected -1 or a whole number > 0")?;
        if self.max_steps <= 0 {
            check(positive(self.num_train_epochs), K, "num_train_epochs", "expected a number > 0")?;
        }
        check(positive(self.learning_rate), K, "learning_rate", "expected a number > 0")?;
        check(self.weight_decay.is_finite() && self.weight_decay >= 0.0, K, "weight_decay", "expected a number >= 0")?;
        check((0.0..1.0).contains(&self.adam_beta1), K, "adam_beta1", "expected a number in [0, 1)")?;
        check((0.0..1.0).contains(&self.adam_beta2), K, "adam_beta2", "expected a number in [0, 1)")?;
        check(positive(self.adam_epsilon), K, "adam_epsilon", "expected a number > 0")?;
        let clip = self.max_grad_norm;
        check(clip.is_finite() && clip >= 0.0, K, "max_grad_norm", "expected a number >= 0 (0 disables clipping)")?;
        check((0.0..=1.0).contains(&self.warmup_ratio), K, "warmup_ratio", "expected a number in [0, 1]")?;
        check(self.logging_steps >= 1, K, "logging_steps", "expected a whole number >= 1")?;
        if self.eval_strategy == IntervalStrategy::Steps {
            check(self.eval_steps() >= 1, K, "eval_steps", "expected a whole number >= 1")?;
        }
        if self.save_strategy == IntervalStrategy::Steps {
            check(self.save_steps >= 1, K, "save_steps", "expected a whole number >= 1")?;
        }
        if let Some(limit) = self.save_total_limit {
            check(limit >= 1, K, "save_total_limit", "expected a whole number >= 1")?;
        }
        check(!(self.bf16 && self.fp16), K, "fp16", "cannot be combined with bf16")?;
        if self.load_best_model_at_end {
            check(
                self.eval_strategy != IntervalStrategy::No,
                K,
                "load_best_model_at_end",
                "needs eval_strategy \"steps\" or \"epoch\"",
            )?;
            check(
                self.save_strategy == self.eval_strategy,
                K,
                "save_strategy",
                "must equal eval_strategy when load_best_model_at_end is true",
            )?;
            if self.save_strategy == IntervalStrategy::Steps {
                check(
                    self.save_steps.is_multiple_of(self.eval_steps()),
                    K,
                    "save_steps",
                    "must be a multiple of eval_steps when load_best_model_at_end is true",
                )?;
            }
        }
        if let Some(metric) = &self.metric_for_best_model {
            check(!metric.is_empty(), K, "metric_for_best_model", "expected a metric name such as \"eval_loss\"")?;
        }
        let names: Vec<&String> = match &self.report_to {
            Some(ReportTo::One(n)) => vec![n],
            Some(ReportTo::Many(ns)) => ns.iter().collect(),
            None => vec![],
        };
        for name in names {
            check(
                REPORTERS.contains(&name.as_str()),
                K,
                "report_to",
                &format!("unknown integration `{name}`; expected one of {}", REPORTERS.join(", ")),
            )?;
        }
        if let Some(ResumeFrom::Path(p)) = &self.resume_from_checkpoint {
            check(!p.is_empty(), K, "resume_from_checkpoint", "expected true, false or a checkpoint path")?;
        }
        Ok(())
    }
}
