//! Evaluation on the validation split and the best-metric bookkeeping.

use super::*;

impl Trainer<'_> {
    /// `eval_loss` (mean token loss over the whole split: Σ token losses / supervised tokens) and
    /// `eval_mean_token_accuracy` on the validation split, in inference mode (no autodiff graph; one batch's
    /// logits at a time, in chunks), with `eval_runtime` (seconds) and `eval_tokens`. Data parallel, rank `r`
    /// evaluates batches `r, r + world, …` and the sums are all-reduced (in f64), so every rank gets the metrics of
    /// the whole split; every rank must call it.
    pub fn evaluate(&self, model: &LlamaForCausalLM<LoraLinear>) -> Result<Metrics> {
        self.evaluate_observed(model, &mut |_, _| {})
    }

    /// [`evaluate`](Self::evaluate), calling `on_batch(done, total)` after each batch, for progress displays.
    pub fn evaluate_observed(
        &self,
        model: &LlamaForCausalLM<LoraLinear>,
        on_batch: &mut dyn FnMut(usize, usize),
    ) -> Result<Metrics> {
        let _span = tracing::info_span!("evaluate").entered();
        let eval = self.eval.as_ref().ok_or_else(|| TrainError::NoValidationSplit)?;
        let began = Instant::now();
        let model = model.clone().valid();
        let device = model.model.embed_tokens.weight.device();
        let head = model.head_weight();
        let chunk_rows = chunk_rows(head.dims()[1]);
        let (mut sums, mut corrects, mut count) = (Vec::new(), Vec::new(), 0usize);
        let (rank, world) = (self.collective.rank(), self.collective.world_size());
        let plan = eval.plan(0);
        let total = plan.len();
        for (i, units) in plan.iter().enumerate() {
            if i % world != rank {
                continue;
            }
            let batch = eval.collate(units);
            if supervised_targets(&batch) == 0 {
                on_batch(i + 1, total);
                continue;
            }
            let (batch, input) = computed(&batch, &device, model.dtype())?;
            let hidden = model.hidden_states(&input);
            let loss = chunked_causal_lm_loss(hidden, head.clone(), &batch.labels, &LossOptions::eval(chunk_rows))?;
            count += loss.count;
            sums.push(loss.sum);
            corrects.push(loss.correct);
            on_batch(i + 1, total);
        }
        let (loss_sum, correct) = if sums.is_empty() { (0.0, 0.0) } else { read_totals(sums, corrects)? };
        let mut totals = [loss_sum, correct, count as f64];
        self.collective.all_reduce_sum_f64(&mut totals)?;
        let [loss_sum, correct, count] = totals;
        if count == 0.0 {
            return Err(TrainError::NothingToEvaluate);
        }
        let mut metrics = Metrics::new();
        metrics.insert(keys::EVAL_LOSS.into(), loss_sum / count);
        metrics.insert(keys::EVAL_MEAN_TOKEN_ACCURACY.into(), correct / count);
        metrics.insert(keys::EVAL_TOKENS.into(), count);
        metrics.insert(keys::EVAL_RUNTIME.into(), began.elapsed().as_secs_f64());
        tracing::info!(
            eval_loss = metrics[keys::EVAL_LOSS],
            accuracy = metrics[keys::EVAL_MEAN_TOKEN_ACCURACY],
            "evaluation"
        );
        Ok(metrics)
    }

    /// Updates the best metric (transformers' `_determine_best_metric`: any improvement, no threshold); true
    /// when this evaluation is the new best. An error (as transformers raises) when `metric_for_best_model` is not
    /// among the evaluation's metrics, so a misspelled name never silently disables best-model tracking and early
    /// stopping.
    pub(super) fn update_best(&self, state: &mut TrainerState, metrics: &Metrics) -> Result<bool> {
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
}

/// The totals of per-batch loss sums and correct counts (device scalars), read back from the device in one transfer.
fn read_totals(sums: Vec<Tensor<1>>, corrects: Vec<Tensor<1>>) -> Result<(f64, f64)> {
    let totals: Vec<f32> = Tensor::cat(vec![Tensor::cat(sums, 0).sum(), Tensor::cat(corrects, 0).sum()], 0)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|source| TrainError::DeviceRead { what: "the loss", source })?;
    Ok((f64::from(totals[0]), f64::from(totals[1])))
}
