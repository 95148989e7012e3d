//! The loop over optimizer steps: accumulation windows, logging, evaluation and checkpoint cadence, the stop
//! conditions.

use super::*;

impl Trainer<'_> {
    /// Trains `model` (on an autodiff device; its adapters and `modules_to_save` are what trains), resuming
    /// first when `resume_from_checkpoint` says so.
    pub fn train(&mut self, model: LlamaForCausalLM<LoraLinear>) -> Result<TrainOutput> {
        let _span = tracing::info_span!("train", output_dir = %self.args.output_dir).entered();
        let output_dir = self.output_dir();
        let total = self.total_steps();
        let schedule = LrSchedule::new(&self.args, total);
        let epochs = total.div_ceil(self.steps_per_epoch().max(1));
        let mut optimizer = AdamW::new(&self.args);
        let mut model = model.train();
        let device = model.model.embed_tokens.weight.device();
        let mut state = TrainerState::new(total, epochs, self.train.batches_per_epoch(), self.args.seed);
        state.world_size = self.collective.world_size();
        let mut resume_dir = None;
        if let Some((dir, saved)) = self.checked_resume()? {
            state = saved;
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
            resume_dir = Some(dir);
        }
        let mut fp16 = None;
        if self.args.fp16 {
            let inner = device.clone().inner();
            let mut scaler = GradScaler::new(self.scaler_config, &inner);
            if let Some(dir) = &resume_dir {
                let path = dir.join(SCALER_FILE);
                if path.exists() {
                    scaler.load(&path, &inner)?;
                } else {
                    tracing::warn!(checkpoint = %dir.display(), "no {SCALER_FILE} in the checkpoint: the loss scale starts afresh");
                }
            }
            fp16 = Some(LossScaledSteps::new(scaler, &schedule, state.skipped_steps, &inner));
        }
        // With several ranks: the trainable parameters (their gradients are all-reduced at every step), and every
        // rank starts from rank 0's values of them.
        let parallel = (self.collective.world_size() > 1).then(|| trainable(&model));
        if let Some(trainable) = &parallel {
            let mut values = trainable.params_to_host(&model)?;
            self.collective.broadcast(&mut values)?;
            model = trainable.host_to_params(model, &values);
        }
        if self.collective.is_main() {
            remove_partial_checkpoints(&output_dir)?;
        }
        self.collective.barrier()?;
        for callback in &mut self.callbacks {
            callback.on_train_begin(&state);
        }
        let window = self.window();
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
            let end = (start + window).min(plan.1.len());
            let batches: Vec<Batch> = plan.1[start..end].iter().map(|units| self.train.collate(units)).collect();
            let step = state.global_step;
            let lr = schedule.lr(step);
            let mut lr_logged = lr;
            let began = Instant::now();
            let seed = mix(self.args.seed, step);
            device.seed(seed);
            let plan_now = StepPlan { lr, number: step + 1, seed, parallel: parallel.as_ref() };
            let tokens: u64 = batches.iter().map(|b| b.num_tokens as u64).sum();
            let (updated, step_sums, stop_agreed) =
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
                self.record(&mut state, entry);
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
                entry.insert(keys::EPOCH.into(), state.epoch);
                entry.insert(keys::STEP.into(), state.global_step as f64);
                self.record(&mut state, entry);
            }
            // Ranks stop together: on the flags every rank sent with this step's all-reduce.
            let interrupted = stop_agreed.unwrap_or_else(|| self.stop.load(Ordering::SeqCst));
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
        if self.collective.is_main() {
            save_adapter(&model, &self.lora_config, &self.base_model_name, &output_dir)?;
            state.save(&output_dir)?;
            self.save_arguments(&output_dir)?;
        }
        self.collective.barrier()?;
        for callback in &mut self.callbacks {
            callback.on_train_end(&state);
        }
        Ok(TrainOutput { model, state, stop, last_checkpoint })
    }

    /// Appends `entry` to the history and tells the callbacks (the metrics file is one).
    pub(super) fn record(&mut self, state: &mut TrainerState, entry: LogEntry) {
        state.log_history.push(entry);
        if let Some(entry) = state.log_history.last() {
            for callback in &mut self.callbacks {
                callback.on_log(state, entry);
            }
        }
    }
}

/// The log entry of the window that just closed: `loss` (mean of the steps' token-mean losses), `grad_norm` and
/// `learning_rate` of the last step, `mean_token_accuracy`, `num_tokens` (non-pad tokens seen so far),
/// `train_tokens_per_second` (non-pad tokens over the window's step time), `epoch`, `step`.
fn log_entry(state: &TrainerState, lr: f64, norm: f64) -> LogEntry {
    let w = &state.logging_window;
    let mut entry = LogEntry::new();
    entry.insert(keys::LOSS.into(), w.loss_sum / w.steps as f64);
    entry.insert(keys::GRAD_NORM.into(), norm);
    entry.insert(keys::LEARNING_RATE.into(), lr);
    entry.insert(keys::MEAN_TOKEN_ACCURACY.into(), w.correct_tokens as f64 / w.supervised_tokens.max(1) as f64);
    entry.insert(keys::NUM_TOKENS.into(), state.num_input_tokens_seen as f64);
    entry.insert(keys::NUM_SUPERVISED_TOKENS.into(), w.supervised_tokens as f64);
    entry.insert(keys::TRAIN_TOKENS_PER_SECOND.into(), w.tokens as f64 / w.seconds.max(1e-9));
    entry.insert(keys::EPOCH.into(), state.epoch);
    entry.insert(keys::STEP.into(), state.global_step as f64);
    tracing::info!(
        step = state.global_step,
        loss = entry[keys::LOSS],
        learning_rate = lr,
        grad_norm = norm,
        epoch = state.epoch,
        tokens_per_second = entry[keys::TRAIN_TOKENS_PER_SECOND],
        "train"
    );
    entry
}

/// `model` with every trainable parameter replaced by a new autodiff leaf holding the same values under the same
/// `ParamId` (so its gradients accumulate into the original's), detached from any graph the original is in.
pub(super) fn fresh_leaves(model: LlamaForCausalLM<LoraLinear>) -> LlamaForCausalLM<LoraLinear> {
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
