//! The keys of log entries (`trainer_state.json`'s `log_history`, `metrics.jsonl`), named once: transformers' and
//! TRL's names, which the model card, TensorBoard tags, progress bars and plots read back.

/// Mean token loss of the optimizer steps of a logging window.
pub const LOSS: &str = "loss";
/// Gradient norm of the window's last step, before clipping.
pub const GRAD_NORM: &str = "grad_norm";
/// Learning rate of the window's last step.
pub const LEARNING_RATE: &str = "learning_rate";
/// Share of the window's supervised tokens predicted exactly (TRL's `mean_token_accuracy`).
pub const MEAN_TOKEN_ACCURACY: &str = "mean_token_accuracy";
/// Non-pad tokens seen so far in the run (TRL's `num_tokens`).
pub const NUM_TOKENS: &str = "num_tokens";
/// Supervised tokens of the window.
pub const NUM_SUPERVISED_TOKENS: &str = "num_supervised_tokens";
/// Non-pad tokens per second of the window's step time.
pub const TRAIN_TOKENS_PER_SECOND: &str = "train_tokens_per_second";
/// Fractional epoch at the entry.
pub const EPOCH: &str = "epoch";
/// Optimizer step of the entry (the x axis; not a TensorBoard scalar).
pub const STEP: &str = "step";
/// Mean token loss over the validation split.
pub const EVAL_LOSS: &str = "eval_loss";
/// Share of the validation split's supervised tokens predicted exactly.
pub const EVAL_MEAN_TOKEN_ACCURACY: &str = "eval_mean_token_accuracy";
/// Supervised tokens of the validation split.
pub const EVAL_TOKENS: &str = "eval_tokens";
/// Wall time of the evaluation, seconds.
pub const EVAL_RUNTIME: &str = "eval_runtime";
