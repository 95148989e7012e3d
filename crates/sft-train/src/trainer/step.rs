//! One optimizer step on the device (micro-batches forward and backward, clipping, AdamW) and reading the steps'
//! sums back in one transfer.

use super::*;

/// What an optimizer step needs besides the data: its learning rate, 1-based number and seed, and with several
/// ranks the trainable parameters whose gradients the all-reduce carries (found once per run).
pub(super) struct StepPlan<'t> {
    pub(super) lr: f64,
    pub(super) number: u64,
    pub(super) seed: u64,
    pub(super) parallel: Option<&'t Trainable>,
}

/// What an optimizer step leaves until the next read ([`Trainer::flush`]): its sums on the device, and its
/// supervised target count (known on the host).
pub(super) struct PendingStep {
    pub(super) number: u64,
    pub(super) supervised: u64,
    pub(super) sums: DeviceSums,
}

/// The values of one optimizer step kept on the device, so no step waits for the host, until a flush reads many
/// steps in one transfer. They are one f32 tensor in the order of [`HostSums`]'s fields.
pub(super) struct DeviceSums {
    values: Tensor<1>,
    loss_scaled: bool,
}

/// One step's sums as read back on the host.
struct HostSums {
    /// Σ −log p(label) over the step's supervised tokens.
    loss_sum: f64,
    /// Supervised tokens predicted exactly.
    correct: f64,
    /// The squared global gradient norm before clipping (unscaled with fp16).
    norm_squared: f64,
    /// With fp16 loss scaling: whether the gradients overflowed (the update was skipped), and the loss scale after
    /// the step.
    overflow: Option<(bool, f64)>,
}

impl DeviceSums {
    /// `[loss_sum, correct, norm_squared]`, then `[overflowed (0 or 1), loss_scale]` with fp16 loss scaling; each a
    /// `[1]` f32 tensor.
    fn new(loss_sum: Tensor<1>, correct: Tensor<1>, norm_squared: Tensor<1>, fp16: Option<[Tensor<1>; 2]>) -> Self {
        let loss_scaled = fp16.is_some();
        let values =
            Tensor::cat([loss_sum, correct, norm_squared].into_iter().chain(fp16.into_iter().flatten()).collect(), 0);
        Self { values, loss_scaled }
    }

    /// How many values the step keeps.
    fn len(&self) -> usize {
        if self.loss_scaled { 5 } else { 3 }
    }
}

impl HostSums {
    /// The first [`DeviceSums::len`] of `values`, named.
    fn read(values: &[f32], sums: &DeviceSums) -> Self {
        let v = |i: usize| f64::from(values[i]);
        Self {
            loss_sum: v(0),
            correct: v(1),
            norm_squared: v(2),
            overflow: sums.loss_scaled.then(|| (v(3) > 0.5, v(4))),
        }
    }
}

/// What [`Trainer::flush`] learned about the last step it read: its gradient norm (before clipping; `None` when
/// it was skipped) and the 0-based schedule step its learning rate came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct LastStep {
    pub(super) norm: Option<f64>,
    pub(super) schedule_step: u64,
}

/// Below this loss scale an overflow stops the run (DeepSpeed's `min_loss_scale`): gradients that overflow fp16
/// unscaled cannot be trained in fp16 at all.
pub(super) const MIN_LOSS_SCALE: f64 = 1.0;

/// Logits held at once by the chunked loss: a chunk's f32 logits stay near 16 MiB (the softmax and its gradient
/// hold a few more of the same size), with at least 256 rows per chunk so the head's matmul stays efficient for
/// large vocabularies.
pub(super) const CHUNK_LOGITS: usize = 4 << 20;

/// Rows per chunk of the chunked loss for a vocabulary of `vocab` entries.
pub(super) fn chunk_rows(vocab: usize) -> usize {
    (CHUNK_LOGITS / vocab.max(1)).max(256)
}

impl Trainer<'_> {
    /// One optimizer step over `batches` (one accumulation window, of every rank): forward and backward of each
    /// micro-batch with the loss scaled by 1 / (the window's supervised tokens), then clipping and AdamW, all on the
    /// device: alone, nothing is read back (the clipping coefficient is computed on the device, as PyTorch's
    /// `clip_grad_norm_` does). Data parallel, this rank computes micro-batches `rank, rank + world, …` of the
    /// window and the ranks' gradients, loss sums and stop flags are summed by one all-reduce before clipping.
    /// Returns the model, the step's sums to read later (none for a window without supervised targets), and with
    /// several ranks whether any of them was asked to stop.
    #[allow(clippy::type_complexity)]
    pub(super) fn step(
        &self,
        model: LlamaForCausalLM<LoraLinear>,
        batches: &[Batch],
        optimizer: &mut AdamW,
        StepPlan { lr, number: step_number, seed, parallel }: StepPlan<'_>,
        state: &mut TrainerState,
        fp16: Option<&mut LossScaledSteps>,
    ) -> Result<(LlamaForCausalLM<LoraLinear>, Option<PendingStep>, Option<bool>)> {
        let (rank, world) = (self.collective.rank(), self.collective.world_size());
        let targets: Vec<usize> = batches.iter().map(supervised_targets).collect();
        let supervised: usize = targets.iter().sum();
        if supervised == 0 {
            state.skipped_batches += batches.len() as u64;
            tracing::warn!(step = step_number, "no label carries loss in this accumulation window; no update");
            let agreed = if world > 1 {
                let mut flag = [f32::from(u8::from(self.stop.load(Ordering::SeqCst)))];
                self.collective.all_reduce_sum(&mut flag)?;
                Some(flag[0] > 0.0)
            } else {
                None
            };
            return Ok((model, None, agreed));
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
        // This rank's share of the window: every `world`-th micro-batch from the `rank`-th (all of them alone);
        // a micro-batch's dropout seed is its index in the whole window, whichever rank computes it.
        let indexed: Vec<(usize, &Batch)> =
            batches.iter().enumerate().filter(|&(i, _)| i % world == rank && targets[i] > 0).collect();
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
        let mut grads = accumulator.grads();
        let sums_device = model.model.embed_tokens.weight.device().inner();
        let zero = || Tensor::zeros([1], (&sums_device, DType::F32));
        let total = |parts: Vec<Tensor<1>>| if parts.is_empty() { zero() } else { Tensor::cat(parts, 0).sum() };
        let (mut loss_sum, mut correct) = (total(sums), total(corrects));
        let mut agreed = None;
        if let Some(trainable) = parallel {
            // One all-reduce: every trainable gradient, then the loss sum, the correct count and the stop flag.
            let stop = Tensor::from_data(
                TensorData::new(vec![f32::from(u8::from(self.stop.load(Ordering::SeqCst)))], [1]),
                (&sums_device, DType::F32),
            );
            let mut buffer = trainable.grads_to_host(&grads, &sums_device, vec![loss_sum, correct, stop])?;
            self.collective.all_reduce_sum(&mut buffer)?;
            let n = trainable.len();
            grads = trainable.host_to_grads(&buffer[..n], &sums_device);
            let scalar = |v: f32| Tensor::from_data(TensorData::new(vec![v], [1]), (&sums_device, DType::F32));
            (loss_sum, correct) = (scalar(buffer[n]), scalar(buffer[n + 1]));
            agreed = Some(buffer[n + 2] > 0.0);
        }
        let (model, sums) = match fp16 {
            None => {
                let norm_sq = grad_norm_squared(&model, &grads).unwrap_or_else(zero);
                let sums = DeviceSums::new(loss_sum, correct, norm_sq.clone(), None);
                let model = match device_clip_coefficient(norm_sq, self.args.max_grad_norm) {
                    Some(coefficient) => optimizer.step_scaled(model, &grads, lr, coefficient),
                    None => optimizer.step(model, &grads, lr, 1.0),
                };
                (model, sums)
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
                let overflow = [found_inf.float().cast(DType::F32), fp16.scaler.scale()];
                (model, DeviceSums::new(loss_sum, correct, norm_sq, Some(overflow)))
            }
        };
        Ok((model, Some(PendingStep { number: step_number, supervised: supervised as u64, sums }), agreed))
    }

    /// Reads the sums of the `pending` steps in one transfer, checks that their losses and gradient norms are
    /// finite, and adds them to the logging window. An fp16 step whose gradients overflowed was skipped on the
    /// device: it is counted in `skipped_steps` (its loss still enters the window, as in transformers), unless the
    /// loss scale fell below [`MIN_LOSS_SCALE`], which stops the run. Returns what the last step read says.
    pub(super) fn flush(&self, pending: &mut Vec<PendingStep>, state: &mut TrainerState) -> Result<Option<LastStep>> {
        if pending.is_empty() {
            return Ok(None);
        }
        let steps = std::mem::take(pending);
        let values: Vec<f32> = Tensor::cat(steps.iter().map(|p| p.sums.values.clone()).collect(), 0)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|source| TrainError::DeviceRead { what: "the loss", source })?;
        let mut last = None;
        let mut rest = values.as_slice();
        for step in &steps {
            let (v, tail) = rest.split_at(step.sums.len());
            rest = tail;
            let HostSums { loss_sum, correct, norm_squared, overflow } = HostSums::read(v, &step.sums);
            let loss = loss_sum / step.supervised as f64;
            if !loss.is_finite() {
                return Err(TrainError::NonFinite { step: step.number, what: "loss", value: loss });
            }
            // Skipped steps hold the schedule back only in the run that skipped them (a run resumed without fp16
            // from an fp16 checkpoint follows the global step).
            let held_back = if overflow.is_some() { state.skipped_steps } else { 0 };
            let schedule_step = (step.number - 1).saturating_sub(held_back);
            let step_norm = norm_squared.sqrt();
            let skipped = overflow.is_some_and(|(overflowed, _)| overflowed);
            if let Some((true, loss_scale)) = overflow {
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
pub(super) fn computed<'a>(batch: &'a Batch, device: &Device, dtype: DType) -> Result<(Cow<'a, Batch>, ModelInput)> {
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
    let options = LossOptions { loss_scale: scale.loss_scale.clone(), ..LossOptions::train(chunk_rows, scale.scale) };
    let loss = chunked_causal_lm_loss(hidden, head, &batch.labels, &options)?;
    let grads = loss.surrogate.map(|s| GradientsParams::from_grads(s.backward(), model));
    Ok(MicroBatch { sum: loss.sum, correct: loss.correct, grads })
}
