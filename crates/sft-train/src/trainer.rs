//! The training loop: micro-batches, gradient accumulation normalised over the window's supervised tokens, AdamW
//! with clipping and a schedule, evaluation, callbacks, checkpoints and exact resume.

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
use sft_model::{LlamaForCausalLM, ModelInput, chunked_causal_lm_loss, chunked_causal_lm_loss_scaled};
use sft_peft::{BaseLinear, LoraConfig, LoraLinear, PeftError, load_adapter, save_adapter};
use sft_rand::mix;

use crate::args::{IntervalStrategy, ResumeFrom, TrainingArguments};
use crate::callback::{Callback, Metrics, TrainerControl};
use crate::checkpoint::{
    latest_checkpoint, remove_partial_checkpoints, rotate_checkpoints, verify_checkpoint, write_checkpoint,
};
use crate::error::{Result, TrainError};
use crate::metrics::{EVAL_METRICS, MetricsFile};
use crate::optimizer::{AdamW, device_clip_coefficient, grad_norm_squared, grad_norm_squared_scaled};
use crate::scaler::{GradScaler, GradScalerConfig, LossScaledSteps, SCALER_FILE};
use crate::schedule::LrSchedule;
use crate::state::{LogEntry, LoggingWindow, TrainerState};

/// The optimizer state's file in a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The training arguments' file in a checkpoint.
pub const TRAINING_ARGS_FILE: &str = "training_args.json";
/// The whole run config's file in a checkpoint (when the trainer was given one).
pub const RUN_CONFIG_FILE: &str = "run_config.json";

/// Logits held at once by the chunked loss: a chunk's f32 logits stay near 16 MiB (the softmax and its gradient
/// hold a few more of the same size), with at least 256 rows per chunk so the head's matmul stays efficient for
/// large vocabularies.
const CHUNK_LOGITS: usize = 4 << 20;

/// Rows per chunk of the chunked loss for a vocabulary of `vocab` entries.
fn chunk_rows(vocab: usize) -> usize {
    (CHUNK_LOGITS / vocab.max(1)).max(256)
}

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
}

/// What an optimizer step needs besides the data: its learning rate, 1-based number and seed.
struct StepPlan {
    lr: f64,
    number: u64,
    seed: u64,
}

/// What an optimizer step leaves on the device until the next read ([`Trainer::flush`]): its loss sum, correct
/// predictions and squared gradient norm, `[3]`, with fp16 loss scaling also whether it was skipped (0 or 1) and
/// the loss scale after it, `[5]`; and its supervised target count (known on the host).
struct PendingStep {
    number: u64,
    supervised: u64,
    sums: Tensor<1>,
    loss_scaled: bool,
}

/// What [`Trainer::flush`] learned about the last step it read: its gradient norm (before clipping; `None` when
/// it was skipped) and the 0-based schedule step its learning rate came from.
#[derive(Debug, Clone, Copy)]
struct LastStep {
    norm: Option<f64>,
    schedule_step: u64,
}

/// Below this loss scale an overflow stops the run (DeepSpeed's `min_loss_scale`): gradients that overflow fp16
/// unscaled cannot be trained in fp16 at all.
const MIN_LOSS_SCALE: f64 = 1.0;

impl<'a> Trainer<'a> {
    /// A run of `args` over `train` (and `eval`, needed unless `eval_strategy` is `no`), saving adapters made with
    /// `lora_config` for the base model `base_model_name` (written into `adapter_config.json`).
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
        Ok(Self {
            args,
            lora_config,
            base_model_name: base_model_name.into(),
            train,
            eval,
            callbacks: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            run_config: None,
            scaler_config: GradScalerConfig::default(),
            verified: None,
        })
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
    /// `ceil(micro-batches per epoch / gradient_accumulation_steps)` steps per epoch.
    pub fn total_steps(&self) -> u64 {
        if self.args.max_steps > 0 {
            return self.args.max_steps as u64;
        }
        (self.args.num_train_epochs * self.steps_per_epoch() as f64).ceil().max(1.0) as u64
    }

    fn steps_per_epoch(&self) -> u64 {
        self.train.batches_per_epoch().div_ceil(self.args.gradient_accumulation_steps) as u64
    }

    fn output_dir(&self) -> PathBuf {
        PathBuf::from(&self.args.output_dir)
    }

    /// Trains `model` (on an autodiff device; its adapters and `modules_to_save` are what trains), resuming
    /// first when `resume_from_checkpoint` says so.
    pub fn train(&mut self, model: LlamaForCausalLM<LoraLinear>) -> Result<TrainOutput> {
        let output_dir = self.output_dir();
        let total = self.total_steps();
        let schedule = LrSchedule::new(&self.args, total);
        let epochs = total.div_ceil(self.steps_per_epoch().max(1));
        let mut optimizer = AdamW::new(&self.args);
        let mut model = model.train();
        let device = model.model.embed_tokens.weight.device();
        let mut state = TrainerState::new(total, epochs, self.train.batches_per_epoch(), self.args.seed);
        if let Some(dir) = self.resume_dir()? {
            if self.verified.as_ref() != Some(&dir) {
                verify_checkpoint(&dir)?;
            }
            state = TrainerState::load(&dir)?;
            self.check_resumable(&state, &dir, total)?;
            model = reload_adapter(model, &dir)?.train();
            optimizer.load(&dir.join(OPTIMIZER_FILE), &device.clone().inner())?;
            for callback in &mut self.callbacks {
                if let Some(saved) = state.stateful_callbacks.get(callback.name()) {
                    callback.restore(saved).map_err(|source| TrainError::CallbackState {
                        path: dir.join(crate::state::TRAINER_STATE),
                        callback: callback.name().to_owned(),
                        source,
                    })?;
                }
            }
            tracing::info!(checkpoint = %dir.display(), step = state.global_step, "resuming");
        }
        let mut fp16 = None;
        if self.args.fp16 {
            let inner = device.clone().inner();
            let mut scaler = GradScaler::new(self.scaler_config, &inner);
            if let Some(dir) = self.resume_dir()? {
                let path = dir.join(SCALER_FILE);
                if path.exists() {
                    scaler.load(&path, &inner)?;
                } else {
                    tracing::warn!(checkpoint = %dir.display(), "no {SCALER_FILE} in the checkpoint: the loss scale starts afresh");
                }
            }
            fp16 = Some(LossScaledSteps::new(scaler, &schedule, state.skipped_steps, &inner));
        }
        remove_partial_checkpoints(&output_dir)?;
        let metrics = MetricsFile::create(&output_dir, &state.log_history)?;
        for callback in &mut self.callbacks {
            callback.on_train_begin(&state);
        }
        let ga = self.args.gradient_accumulation_steps;
        let mut plan = (state.position.epoch, self.train.plan(state.position.epoch));
        let mut last_checkpoint = None;
        let mut stop = StopReason::Completed;
        let mut saved_at = None;
        let mut pending: Vec<PendingStep> = Vec::new();
        let mut last_norm: Option<f64> = None;
        while state.global_step < total {
            if state.position.micro_batch >= plan.1.len() {
                state.position.epoch += 1;
                state.position.micro_batch = 0;
            }
            if plan.0 != state.position.epoch {
                plan = (state.position.epoch, self.train.plan(state.position.epoch));
            }
            let start = state.position.micro_batch;
            let end = (start + ga).min(plan.1.len());
            let batches: Vec<Batch> = plan.1[start..end].iter().map(|units| self.train.collate(units)).collect();
            let step = state.global_step;
            let lr = schedule.lr(step);
            let mut lr_logged = lr;
            let began = Instant::now();
            let seed = mix(self.args.seed, step);
            device.seed(seed);
            let plan_now = StepPlan { lr, number: step + 1, seed };
            let tokens: u64 = batches.iter().map(|b| b.num_tokens as u64).sum();
            let (updated, step_sums) =
                self.step(model, &batches, &mut optimizer, plan_now, &mut state, fp16.as_mut())?;
            model = updated;
            pending.extend(step_sums);

            state.global_step += 1;
            state.position.micro_batch = end;
            let epoch_done = end >= plan.1.len();
            state.epoch = state.position.epoch as f64 + end as f64 / plan.1.len() as f64;
            state.num_input_tokens_seen += tokens;
            state.logging_window.tokens += tokens;

            let at = |strategy: IntervalStrategy, every: usize| match strategy {
                IntervalStrategy::No => false,
                IntervalStrategy::Steps => state.global_step.is_multiple_of(every as u64),
                IntervalStrategy::Epoch => epoch_done,
            };
            let should_log = at(self.args.logging_strategy, self.args.logging_steps) || state.global_step == total;
            let should_eval = at(self.args.eval_strategy, self.args.eval_steps());
            let mut control =
                TrainerControl { should_save: at(self.args.save_strategy, self.args.save_steps), ..Default::default() };
            // The device's queue is read only here: at logging, evaluation and save steps, and at the end. Until
            // then the steps run without a host round trip (their time is counted when read).
            let read = should_log || should_eval || control.should_save || state.global_step == total;
            if read && let Some(last) = self.flush(&mut pending, &mut state)? {
                last_norm = last.norm.or(last_norm);
                lr_logged = schedule.lr(last.schedule_step);
            }
            state.logging_window.seconds += began.elapsed().as_secs_f64();
            if should_log && state.logging_window.steps > 0 {
                let entry = log_entry(&state, lr_logged, last_norm.unwrap_or(0.0));
                state.logging_window = LoggingWindow::default();
                self.record(&mut state, entry, &metrics)?;
            }
            for callback in &mut self.callbacks {
                callback.on_step_end(&state, &mut control);
            }
            if should_eval {
                let mut callbacks = std::mem::take(&mut self.callbacks);
                let evaluated = self.evaluate_observed(&model, &mut |done, total| {
                    for callback in &mut callbacks {
                        callback.on_prediction_step(&state, done, total);
                    }
                });
                self.callbacks = callbacks;
                let mut metrics_now = evaluated?;
                for callback in &mut self.callbacks {
                    callback.on_evaluate(&state, &mut metrics_now, &mut control);
                }
                let best = self.update_best(&mut state, &metrics_now)?;
                if best && self.args.load_best_model_at_end && self.args.save_strategy != IntervalStrategy::No {
                    // The best model is always restorable: a new best is saved even between save steps.
                    control.should_save = true;
                }
                let mut entry: LogEntry = metrics_now;
                entry.insert("epoch".into(), state.epoch);
                entry.insert("step".into(), state.global_step as f64);
                self.record(&mut state, entry, &metrics)?;
            }
            let interrupted = self.stop.load(Ordering::SeqCst);
            if interrupted || control.should_training_stop {
                stop = if interrupted { StopReason::Interrupted } else { StopReason::Stopped };
                control.should_save |= self.args.save_strategy != IntervalStrategy::No || interrupted;
            }
            if control.should_save {
                // A checkpoint is written only after its steps were read and found finite.
                if let Some(last) = self.flush(&mut pending, &mut state)? {
                    last_norm = last.norm.or(last_norm);
                }
                let scaler = fp16.as_ref().map(|f| &f.scaler);
                last_checkpoint = Some(self.save_checkpoint(&model, &optimizer, scaler, &mut state)?);
                saved_at = Some(state.global_step);
            }
            if stop != StopReason::Completed {
                tracing::info!(step = state.global_step, reason = ?stop, "training stops");
                break;
            }
        }
        self.flush(&mut pending, &mut state)?;
        if stop == StopReason::Interrupted {
            return Ok(TrainOutput { model, state, stop, last_checkpoint });
        }
        debug_assert!(saved_at.is_none_or(|s| s <= state.global_step));
        if self.args.load_best_model_at_end
            && let Some(best) = state.best_model_checkpoint.clone()
        {
            tracing::info!(checkpoint = %best, metric = ?state.best_metric, "loading the best model");
            model = reload_adapter(model, Path::new(&best))?;
        }
        save_adapter(&model, &self.lora_config, &self.base_model_name, &output_dir)?;
        state.save(&output_dir)?;
        self.save_arguments(&output_dir)?;
        let curve = output_dir.join(crate::plot::LOSS_CURVE_FILE);
        if let Err(error) = crate::plot::write_loss_curve(&curve, &state.log_history) {
            // The adapter is saved; a missing picture is not worth failing the run for.
            tracing::warn!(%error, "the loss curve was not written");
        }
        for callback in &mut self.callbacks {
            callback.on_train_end(&state);
        }
        Ok(TrainOutput { model, state, stop, last_checkpoint })
    }

    /// One optimizer step over `batches` (one accumulation window): forward and backward of each micro-batch
    /// with the loss scaled by 1 / (the window's supervised tokens), then clipping and AdamW, all on the device:
    /// nothing is read back (the clipping coefficient is computed on the device, as PyTorch's
    /// `clip_grad_norm_` does). Returns the model and the step's sums to read later (none for a window without
    /// supervised targets).
    fn step(
        &self,
        model: LlamaForCausalLM<LoraLinear>,
        batches: &[Batch],
        optimizer: &mut AdamW,
        StepPlan { lr, number: step_number, seed }: StepPlan,
        state: &mut TrainerState,
        fp16: Option<&mut LossScaledSteps>,
    ) -> Result<(LlamaForCausalLM<LoraLinear>, Option<PendingStep>)> {
        let targets: Vec<usize> = batches.iter().map(supervised_targets).collect();
        let supervised: usize = targets.iter().sum();
        if supervised == 0 {
            state.skipped_batches += batches.len() as u64;
            tracing::warn!(step = step_number, "no label carries loss in this accumulation window; no update");
            return Ok((model, None));
        }
        let chunk_rows = chunk_rows(model.head_weight().dims()[1]);
        let scale = 1.0 / supervised as f64;
        // fp16: the loss gradient is multiplied by the loss scale on the autodiff device (in the model's
        // checkpointing strategy), the parameters' gradients divided by it below.
        let strategy = model.model.embed_tokens.weight.device().gradient_checkpointing_strategy();
        let loss_scale = fp16.as_ref().map(|f| reenter_autodiff(f.scaler.scale(), strategy));
        let scale = LossGrad { scale, loss_scale };
        let mut accumulator = GradientsAccumulator::<LlamaForCausalLM<LoraLinear>>::new();
        let (mut sums, mut corrects) = (Vec::new(), Vec::new());
        state.skipped_batches += targets.iter().filter(|&&t| t == 0).count() as u64;
        // Micro-batches run `micro_batch_workers` at a time, each in its own thread with its own autodiff graph and a dropout
        // stream seeded by (step seed, micro-batch index); gradients are summed in micro-batch order, so the result
        // does not depend on the number of workers.
        let indexed: Vec<(usize, &Batch)> = batches.iter().enumerate().filter(|&(i, _)| targets[i] > 0).collect();
        for group in indexed.chunks(self.args.micro_batch_workers.max(1)) {
            let results: Vec<Result<MicroBatch>> = if group.len() == 1 {
                group.iter().map(|&(i, b)| micro_batch(&model, b, mix(seed, i as u64), chunk_rows, &scale)).collect()
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = group
                        .iter()
                        .map(|&(i, b)| {
                            // Each thread's graph must be its own: Burn's autodiff merges graphs that share a node,
                            // and two threads building on the same parameter leaves deadlock in its graph locks.
                            let model = fresh_leaves(model.clone());
                            let scale = &scale;
                            scope.spawn(move || micro_batch(&model, b, mix(seed, i as u64), chunk_rows, scale))
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap_or(Err(TrainError::WorkerPanicked))).collect()
                })
            };
            for result in results {
                let micro = result?;
                sums.push(micro.sum);
                corrects.push(micro.correct);
                if let Some(grads) = micro.grads {
                    accumulator.accumulate(&model, grads);
                }
            }
        }
        let grads = accumulator.grads();
        let mut sums = vec![Tensor::cat(sums, 0).sum(), Tensor::cat(corrects, 0).sum()];
        let sums_device = sums[0].device();
        let zero = || Tensor::zeros([1], (&sums_device, DType::F32));
        let loss_scaled = fp16.is_some();
        let model = match fp16 {
            None => {
                let norm_sq = grad_norm_squared(&model, &grads).unwrap_or_else(zero);
                sums.push(norm_sq.clone());
                match device_clip_coefficient(norm_sq, self.args.max_grad_norm) {
                    Some(coefficient) => optimizer.step_scaled(model, &grads, lr, coefficient),
                    None => optimizer.step(model, &grads, lr, 1.0),
                }
            }
            Some(fp16) => {
                // GradScaler: unscale, find overflow, clip, step unless overflowed, update the scale; on the device.
                let unscale = fp16.scaler.scale().recip();
                let norm_sq = grad_norm_squared_scaled(&model, &grads, unscale.clone()).unwrap_or_else(zero);
                let found_inf = norm_sq.clone().is_finite().bool_not();
                let multiplier = match device_clip_coefficient(norm_sq.clone(), self.args.max_grad_norm) {
                    Some(coefficient) => coefficient * unscale,
                    None => unscale,
                };
                let step = fp16.device_step(step_number - 1, optimizer.steps + 1, multiplier, found_inf.clone());
                let model = optimizer.step_on_device(model, &grads, step);
                fp16.update(found_inf.clone());
                sums.extend([norm_sq, found_inf.float().cast(DType::F32), fp16.scaler.scale()]);
                model
            }
        };
        let sums = Tensor::cat(sums, 0);
        Ok((model, Some(PendingStep { number: step_number, supervised: supervised as u64, sums, loss_scaled })))
    }

    /// Reads the sums of the `pending` steps in one transfer, checks that their losses and gradient norms are
    /// finite, and adds them to the logging window. An fp16 step whose gradients overflowed was skipped on the
    /// device: it is counted in `skipped_steps` (its loss still enters the window, as in transformers), unless the
    /// loss scale fell below [`MIN_LOSS_SCALE`], which stops the run. Returns what the last step read says.
    fn flush(&self, pending: &mut Vec<PendingStep>, state: &mut TrainerState) -> Result<Option<LastStep>> {
        if pending.is_empty() {
            return Ok(None);
        }
        let steps = std::mem::take(pending);
        let values: Vec<f32> = Tensor::cat(steps.iter().map(|p| p.sums.clone()).collect(), 0)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|source| TrainError::DeviceRead { what: "the loss", source })?;
        let mut last = None;
        let mut rest = values.as_slice();
        for step in &steps {
            let (v, tail) = rest.split_at(if step.loss_scaled { 5 } else { 3 });
            rest = tail;
            let (loss_sum, correct, norm_sq) = (f64::from(v[0]), f64::from(v[1]), f64::from(v[2]));
            let loss = loss_sum / step.supervised as f64;
            if !loss.is_finite() {
                return Err(TrainError::NonFinite { step: step.number, what: "loss", value: loss });
            }
            // Skipped steps hold the schedule back only in the run that skipped them (a run resumed without fp16
            // from an fp16 checkpoint follows the global step).
            let held_back = if step.loss_scaled { state.skipped_steps } else { 0 };
            let schedule_step = (step.number - 1).saturating_sub(held_back);
            let step_norm = norm_sq.sqrt();
            let skipped = step.loss_scaled && v[3] > 0.5;
            if skipped {
                let loss_scale = f64::from(v[4]);
                if loss_scale < MIN_LOSS_SCALE {
                    tracing::error!(step = step.number, loss_scale, "fp16 gradients overflow even unscaled");
                    return Err(TrainError::NonFinite { step: step.number, what: "grad_norm", value: step_norm });
                }
                tracing::warn!(
                    step = step.number,
                    loss_scale,
                    "fp16 gradients overflowed: the update is skipped and the loss scale halved"
                );
                state.skipped_steps += 1;
            } else if !step_norm.is_finite() {
                return Err(TrainError::NonFinite { step: step.number, what: "grad_norm", value: step_norm });
            }
            let w = &mut state.logging_window;
            w.steps += 1;
            w.loss_sum += loss;
            w.supervised_tokens += step.supervised;
            w.correct_tokens += correct.round() as u64;
            last = Some(LastStep { norm: (!skipped).then_some(step_norm), schedule_step });
        }
        Ok(last)
    }

    /// `eval_loss` (mean token loss over the whole split: Σ token losses / supervised tokens) and
    /// `eval_mean_token_accuracy` on the validation split, in inference mode (no autodiff graph; one batch's
    /// logits at a time, in chunks), with `eval_runtime` (seconds) and `eval_tokens`.
    pub fn evaluate(&self, model: &LlamaForCausalLM<LoraLinear>) -> Result<Metrics> {
        self.evaluate_observed(model, &mut |_, _| {})
    }

    /// [`evaluate`](Self::evaluate), calling `on_batch(done, total)` after each batch, for progress displays.
    pub fn evaluate_observed(
        &self,
        model: &LlamaForCausalLM<LoraLinear>,
        on_batch: &mut dyn FnMut(usize, usize),
    ) -> Result<Metrics> {
        let eval = self.eval.as_ref().ok_or_else(|| TrainError::NoValidationSplit)?;
        let began = Instant::now();
        let model = model.clone().valid();
        let device = model.model.embed_tokens.weight.device();
        let head = model.head_weight();
        let chunk_rows = chunk_rows(head.dims()[1]);
        let (mut sums, mut corrects, mut count) = (Vec::new(), Vec::new(), 0usize);
        let plan = eval.plan(0);
        let total = plan.len();
        for (i, units) in plan.into_iter().enumerate() {
            let batch = eval.collate(&units);
            if supervised_targets(&batch) == 0 {
                on_batch(i + 1, total);
                continue;
            }
            let (batch, input) = computed(&batch, &device, model.dtype())?;
            let hidden = model.hidden_states(&input);
            let loss = chunked_causal_lm_loss(hidden, head.clone(), &batch.labels, chunk_rows, None)?;
            count += loss.count;
            sums.push(loss.sum);
            corrects.push(loss.correct);
            on_batch(i + 1, total);
        }
        if count == 0 {
            return Err(TrainError::NothingToEvaluate);
        }
        let (loss_sum, correct) = read_totals(sums, corrects)?;
        let mut metrics = Metrics::new();
        let [loss, accuracy, tokens, runtime] = EVAL_METRICS;
        metrics.insert(loss.into(), loss_sum / count as f64);
        metrics.insert(accuracy.into(), correct / count as f64);
        metrics.insert(tokens.into(), count as f64);
        metrics.insert(runtime.into(), began.elapsed().as_secs_f64());
        tracing::info!(eval_loss = metrics[loss], accuracy = metrics[accuracy], "evaluation");
        Ok(metrics)
    }

    /// Updates the best metric (transformers' `_determine_best_metric`: any improvement, no threshold); true
    /// when this evaluation is the new best. An error (as transformers raises) when `metric_for_best_model` is not
    /// among the evaluation's metrics, so a misspelled name never silently disables best-model tracking and early
    /// stopping.
    fn update_best(&self, state: &mut TrainerState, metrics: &Metrics) -> Result<bool> {
        let name = self.args.best_metric();
        let Some(&value) = metrics.get(&name) else {
            let known: Vec<&str> = metrics.keys().map(String::as_str).collect();
            return Err(TrainError::InvalidConfig {
                key: "training_args.metric_for_best_model".into(),
                message: format!("`{name}` is not among the evaluation metrics ({})", known.join(", ")),
            });
        };
        let better = match state.best_metric {
            None => true,
            Some(best) => {
                if self.args.greater_is_better() {
                    value > best
                } else {
                    value < best
                }
            }
        };
        if better {
            state.best_metric = Some(value);
            state.best_global_step = Some(state.global_step);
        }
        Ok(better)
    }

    /// Appends `entry` to the history and the metrics file, and tells the callbacks.
    fn record(&mut self, state: &mut TrainerState, entry: LogEntry, metrics: &MetricsFile) -> Result<()> {
        metrics.append(&entry)?;
        state.log_history.push(entry);
        if let Some(entry) = state.log_history.last() {
            for callback in &mut self.callbacks {
                callback.on_log(state, entry);
            }
        }
        Ok(())
    }

    /// Writes `checkpoint-<step>` (adapter, optimizer, state, arguments), then applies `save_total_limit`.
    fn save_checkpoint(
        &mut self,
        model: &LlamaForCausalLM<LoraLinear>,
        optimizer: &AdamW,
        scaler: Option<&GradScaler>,
        state: &mut TrainerState,
    ) -> Result<PathBuf> {
        let output_dir = self.output_dir();
        let step = state.global_step;
        let dir = crate::checkpoint::checkpoint_dir(&output_dir, step);
        if state.best_global_step == Some(step) {
            state.best_model_checkpoint = Some(dir.display().to_string());
        }
        state.stateful_callbacks =
            self.callbacks.iter().filter_map(|c| c.state().map(|s| (c.name().to_owned(), s))).collect();
        let written = write_checkpoint(&output_dir, step, |tmp| {
            save_adapter(model, &self.lora_config, &self.base_model_name, tmp)?;
            optimizer.save(&tmp.join(OPTIMIZER_FILE))?;
            if let Some(scaler) = scaler {
                scaler.save(&tmp.join(SCALER_FILE))?;
            }
            self.save_arguments(tmp)?;
            state.save(tmp)
        })?;
        tracing::info!(checkpoint = %written.display(), step, "checkpoint saved");
        if let Some(limit) = self.args.save_total_limit {
            let keep = state.best_model_checkpoint.as_deref().map(Path::new);
            rotate_checkpoints(&output_dir, limit, keep)?;
        }
        for callback in &mut self.callbacks {
            callback.on_save(state, &written);
        }
        Ok(written)
    }

    /// Writes `training_args.json` and (when set) `run_config.json` into `dir`, each atomically.
    fn save_arguments(&self, dir: &Path) -> Result<()> {
        let error = |e: serde_json::Error| TrainError::Checkpoint { path: dir.to_owned(), message: e.to_string() };
        let args = serde_json::to_vec_pretty(&self.args).map_err(error)?;
        sft_model::write_atomic(&dir.join(TRAINING_ARGS_FILE), &args)?;
        if let Some(config) = &self.run_config {
            let config = serde_json::to_vec_pretty(config).map_err(error)?;
            sft_model::write_atomic(&dir.join(RUN_CONFIG_FILE), &config)?;
        }
        Ok(())
    }

    /// With `resume_from_checkpoint`, checks the checkpoint before anything heavy happens (the CLI calls this
    /// before it loads the model): its files against their checksums, its `trainer_state.json`, and that this run
    /// (micro-batches per epoch, optimizer steps, seed) can continue it exactly. Returns the checkpoint, if any.
    /// [`train`](Self::train) makes the same checks itself when this was not called.
    pub fn check_resume(&mut self) -> Result<Option<PathBuf>> {
        let Some(dir) = self.resume_dir()? else { return Ok(None) };
        verify_checkpoint(&dir)?;
        let state = TrainerState::load(&dir)?;
        self.check_resumable(&state, &dir, self.total_steps())?;
        self.verified = Some(dir.clone());
        Ok(Some(dir))
    }

    fn resume_dir(&self) -> Result<Option<PathBuf>> {
        match &self.args.resume_from_checkpoint {
            None | Some(ResumeFrom::Latest(false)) => Ok(None),
            Some(ResumeFrom::Latest(true)) => latest_checkpoint(&self.output_dir()).map(Some),
            Some(ResumeFrom::Path(path)) => Ok(Some(PathBuf::from(path))),
        }
    }

    fn check_resumable(&self, state: &TrainerState, dir: &Path, total: u64) -> Result<()> {
        let differs = |what: &str, saved: String, now: String| TrainError::Checkpoint {
            path: dir.into(),
            message: format!("{what} was {saved} in this checkpoint's run and is {now} now; it cannot resume exactly"),
        };
        if state.batches_per_epoch != self.train.batches_per_epoch() {
            let (a, b) = (state.batches_per_epoch, self.train.batches_per_epoch());
            return Err(differs("the number of micro-batches per epoch", a.to_string(), b.to_string()));
        }
        if state.max_steps != total {
            return Err(differs("the number of optimizer steps", state.max_steps.to_string(), total.to_string()));
        }
        if state.seed != self.args.seed {
            return Err(differs("training_args.seed", state.seed.to_string(), self.args.seed.to_string()));
        }
        Ok(())
    }
}

/// The log entry of the window that just closed: `loss` (mean of the steps' token-mean losses), `grad_norm` and
/// `learning_rate` of the last step, `mean_token_accuracy`, `num_tokens` (non-pad tokens seen so far),
/// `train_tokens_per_second` (non-pad tokens over the window's step time), `epoch`, `step`.
fn log_entry(state: &TrainerState, lr: f64, norm: f64) -> LogEntry {
    let w = &state.logging_window;
    let mut entry = LogEntry::new();
    entry.insert("loss".into(), w.loss_sum / w.steps as f64);
    entry.insert("grad_norm".into(), norm);
    entry.insert("learning_rate".into(), lr);
    entry.insert("mean_token_accuracy".into(), w.correct_tokens as f64 / w.supervised_tokens.max(1) as f64);
    entry.insert("num_tokens".into(), state.num_input_tokens_seen as f64);
    entry.insert("num_supervised_tokens".into(), w.supervised_tokens as f64);
    entry.insert("train_tokens_per_second".into(), w.tokens as f64 / w.seconds.max(1e-9));
    entry.insert("epoch".into(), state.epoch);
    entry.insert("step".into(), state.global_step as f64);
    tracing::info!(
        step = state.global_step,
        loss = entry["loss"],
        learning_rate = lr,
        grad_norm = norm,
        epoch = state.epoch,
        tokens_per_second = entry["train_tokens_per_second"],
        "train"
    );
    entry
}

/// Labels that carry loss after the causal shift (positions 1.. of each row with a label ≥ 0): the count the
/// loss normalises by.
pub fn supervised_targets(batch: &Batch) -> usize {
    let seq = batch.seq_len;
    (0..batch.batch_size)
        .map(|b| batch.labels[b * seq + 1.min(seq)..(b + 1) * seq].iter().filter(|&&l| l >= 0).count())
        .sum()
}

/// The batch the model computes, and its input: without padding (one packed row of the real tokens,
/// [`Batch::padding_free`]) where the fused CPU attention runs and that leaves the supervised pairs as they are;
/// the batch as collated otherwise. The loss and its gradient are the same either way (padding carries no loss and
/// is never attended to), and so are the dropout masks (drawn per token, see [`micro_batch`]); only the padding's
/// work is saved.
fn computed<'a>(batch: &'a Batch, device: &Device, dtype: DType) -> Result<(Cow<'a, Batch>, ModelInput)> {
    let padded = batch.batch_size > 1 || batch.num_tokens < batch.seq_len;
    if padded && has_cpu_kernels(device, dtype) {
        let flat = batch.padding_free();
        if let Some(packing) = &flat.packing
            && supervised_targets(&flat) == supervised_targets(batch)
        {
            let input =
                ModelInput::padding_free(&flat.input_ids, &packing.position_ids, &packing.sequence_ids, device)?;
            return Ok((Cow::Owned(flat), input));
        }
    }
    Ok((Cow::Borrowed(batch), model_input(batch, device)?))
}

fn model_input(batch: &Batch, device: &Device) -> Result<ModelInput> {
    let packing = batch.packing.as_ref();
    Ok(ModelInput::new(
        &batch.input_ids,
        batch.shape(),
        Some(&batch.attention_mask),
        packing.map(|p| p.position_ids.as_slice()),
        packing.map(|p| p.sequence_ids.as_slice()),
        device,
    )?)
}

/// The totals of per-batch loss sums and correct counts (device scalars), read back from the device in one transfer.
fn read_totals(sums: Vec<Tensor<1>>, corrects: Vec<Tensor<1>>) -> Result<(f64, f64)> {
    let totals: Vec<f32> = Tensor::cat(vec![Tensor::cat(sums, 0).sum(), Tensor::cat(corrects, 0).sum()], 0)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|source| TrainError::DeviceRead { what: "the loss", source })?;
    Ok((f64::from(totals[0]), f64::from(totals[1])))
}

/// `model` with every trainable parameter replaced by a new autodiff leaf holding the same values under the same
/// `ParamId` (so its gradients accumulate into the original's), detached from any graph the original is in.
fn fresh_leaves(model: LlamaForCausalLM<LoraLinear>) -> LlamaForCausalLM<LoraLinear> {
    struct FreshLeaves;
    impl ModuleMapper for FreshLeaves {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let tensor = if tensor.is_require_grad() {
                let strategy = tensor.gradient_checkpointing_strategy();
                reenter_autodiff(tensor.inner(), strategy).require_grad()
            } else {
                tensor
            };
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    model.map(&mut FreshLeaves)
}

/// `tensor` (off the graph) back on the autodiff backend with the gradient-checkpointing `strategy` the model's
/// device carries: Burn refuses operations between tensors of different strategies, and `autodiff()` alone
/// gives the default one.
pub(crate) fn reenter_autodiff<const D: usize>(
    tensor: Tensor<D>,
    strategy: Option<burn::tensor::GradientCheckpointingStrategy>,
) -> Tensor<D> {
    let tensor = tensor.autodiff();
    match strategy {
        Some(strategy) => tensor.with_gradient_checkpointing_strategy(strategy),
        None => tensor,
    }
}

/// The multiplier of a micro-batch's loss gradient: `scale` = 1 / the window's supervised tokens, times fp16's
/// loss scale (a `[1]` tensor on the autodiff device) when there is one.
struct LossGrad {
    scale: f64,
    loss_scale: Option<Tensor<1>>,
}

/// What one micro-batch contributes: its loss sum and correct count (device scalars) and its gradients.
struct MicroBatch {
    sum: Tensor<1>,
    correct: Tensor<1>,
    grads: Option<GradientsParams>,
}

/// Forward and backward of one micro-batch with dropout seeded by `seed` (on the calling thread). Dropout masks are
/// drawn per token, keyed by (example, index in it), so the padded and the padding-free layout (see [`computed`])
/// of the same micro-batch draw the same masks.
fn micro_batch(
    model: &LlamaForCausalLM<LoraLinear>,
    batch: &Batch,
    seed: u64,
    chunk_rows: usize,
    scale: &LossGrad,
) -> Result<MicroBatch> {
    let device = model.model.embed_tokens.weight.device();
    let (batch, input) = computed(batch, &device, model.dtype())?;
    sft_peft::seed_dropout_tokens(seed, batch.token_keys());
    let hidden = model.hidden_states(&input);
    let head = model.head_weight();
    let loss_scale = scale.loss_scale.clone();
    let loss = chunked_causal_lm_loss_scaled(hidden, head, &batch.labels, chunk_rows, Some(scale.scale), loss_scale)?;
    let grads = loss.surrogate.map(|s| GradientsParams::from_grads(s.backward(), model));
    Ok(MicroBatch { sum: loss.sum, correct: loss.correct, grads })
}

/// The model with its adapters (and `modules_to_save`) replaced by those saved in `dir`.
fn reload_adapter(model: LlamaForCausalLM<LoraLinear>, dir: &Path) -> Result<LlamaForCausalLM<LoraLinear>> {
    let base =
        model.map_projections(|_, p: LoraLinear| -> std::result::Result<BaseLinear, PeftError> { Ok(p.base) })?;
    let (model, _) = load_adapter(base, dir)?;
    Ok(model)
}
