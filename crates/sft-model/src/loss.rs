//! The causal-LM loss: masked cross-entropy with the shift by one, computed in f32.
//!
//! Two forms compute the same numbers:
//! - [`causal_lm_loss`] takes full logits `[batch, seq, vocab]` (transformers' `ForCausalLMLoss`);
//! - [`chunked_causal_lm_loss`] takes the final hidden states and the LM-head weight, computes logits only for the
//!   supervised positions, a chunk of rows at a time, and returns a *surrogate* scalar whose gradient is the loss
//!   gradient. Neither the full logits nor their log-softmax are ever materialised, and the autodiff graph keeps
//!   only `[rows, hidden]`-sized tensors (the fused linear cross-entropy of Liger / Unsloth).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, IndexingUpdateOp};

use crate::error::{ModelError, Result};
use crate::fused::{cross_entropy_chunk, has_cpu_kernels, head_cross_entropy};

/// The summed negative log-likelihood of the supervised tokens and how many there were.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Σ −log p(label) over supervised positions, f32, shape `[1]`.
    pub sum: Tensor<1>,
    /// Number of supervised positions.
    pub count: usize,
}

impl LossOutput {
    /// The mean over supervised tokens (`sum / count`; 0 when there are none).
    pub fn mean(&self) -> Tensor<1> {
        self.sum.clone().div_scalar(self.count.max(1) as f64)
    }
}

/// The supervised positions of a `[batch, seq]` label grid after the shift: for each position `t < seq - 1` whose
/// next label is not `-100`, its flat row `b × (seq − 1) + t` and the label. Errors on labels outside the vocabulary.
fn supervised(labels: &[i64], [batch, seq, vocab]: [usize; 3]) -> Result<(Vec<i64>, Vec<i64>)> {
    if labels.len() != batch * seq {
        return Err(ModelError::Input(format!("labels have {} entries, expected {batch} × {seq}", labels.len())));
    }
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    for b in 0..batch {
        for t in 1..seq {
            let label = labels[b * seq + t];
            if label < 0 {
                continue;
            }
            if label as usize >= vocab {
                return Err(ModelError::Input(format!("label {label} is outside the vocabulary of {vocab}")));
            }
            rows.push((b * (seq - 1) + t - 1) as i64);
            targets.push(label);
        }
    }
    Ok((rows, targets))
}

/// transformers' causal-LM loss: logits at position `t` predict `labels[t + 1]`; positions whose next label is
/// `-100` are ignored. `labels` is row-major `[batch, seq]` like the logits' first two dims. Logits of any float
/// dtype are upcast to f32 first. Returns the sum and the count, so a trainer can normalise over a whole
/// gradient-accumulation window.
pub fn causal_lm_loss(logits: Tensor<3>, labels: &[i64]) -> Result<LossOutput> {
    let [batch, seq, vocab] = logits.dims();
    let (rows, targets) = supervised(labels, [batch, seq, vocab])?;
    let device = logits.device();
    let count = rows.len();
    if count == 0 {
        return Ok(LossOutput { sum: Tensor::zeros([1], (&device, DType::F32)), count });
    }
    let flat = logits.narrow(1, 0, seq - 1).reshape([batch * (seq - 1), vocab]);
    let picked = flat.select(0, Tensor::from_data(TensorData::new(rows, [count]), &device)).cast(DType::F32);
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [count, 1]), &device);
    let sum = log_softmax(picked, 1).gather(1, targets).sum().neg();
    Ok(LossOutput { sum, count })
}

/// How [`chunked_causal_lm_loss`] computes: the chunk size, and the gradient it attaches.
#[derive(Debug, Clone, Default)]
pub struct LossOptions {
    /// Rows of logits computed at once (at least 1): a chunk's f32 logits are `[chunk_rows, vocab]`.
    pub chunk_rows: usize,
    /// `Some(s)`: attach the gradient of `s × sum` ([`ChunkedLoss::surrogate`], training); `None`: no gradient
    /// (evaluation).
    pub grad_scale: Option<f64>,
    /// fp16 training's dynamic loss scale, a `[1]` f32 tensor on the hidden states' device (held there so no step
    /// waits for the host), multiplied into the gradient in f32 before it is cast to the hidden states' dtype, which
    /// keeps small fp16 gradients from flushing to zero; the caller divides the parameters' gradients by the same
    /// scale. `sum` and `correct` are not scaled. Ignored without a `grad_scale`.
    pub loss_scale: Option<Tensor<1>>,
}

impl LossOptions {
    /// Evaluation: no gradient, `chunk_rows` rows at a time.
    pub fn eval(chunk_rows: usize) -> Self {
        Self { chunk_rows, grad_scale: None, loss_scale: None }
    }

    /// Training: the gradient of `grad_scale × sum`, `chunk_rows` rows at a time.
    pub fn train(chunk_rows: usize, grad_scale: f64) -> Self {
        Self { chunk_rows, grad_scale: Some(grad_scale), loss_scale: None }
    }
}

/// The result of [`chunked_causal_lm_loss`].
#[derive(Debug, Clone)]
pub struct ChunkedLoss {
    /// Σ −log p(label) over supervised positions, f32, `[1]`, detached from the autodiff graph.
    pub sum: Tensor<1>,
    /// Number of supervised positions.
    pub count: usize,
    /// Supervised positions whose arg-max logit is the label, f32 `[1]` (for `mean_token_accuracy`).
    pub correct: Tensor<1>,
    /// A scalar whose gradient with respect to the hidden states and the head weight equals
    /// `grad_scale × ∇ sum`; call `backward()` on it. Its value is meaningless. `None` without a `grad_scale`.
    pub surrogate: Option<Tensor<1>>,
}

/// The causal-LM loss of `hidden` `[batch, seq, hidden]` (final-norm output) under an LM head `head`
/// `[hidden, vocab]` (Burn's orientation: `lm_head.weight`, or the transposed tied embeddings), without building
/// the full logits: only supervised rows are projected, `options.chunk_rows` rows at a time (logits and softmax of
/// a chunk in f32, `[chunk_rows, vocab]`).
///
/// With `options.grad_scale = Some(s)`, the gradient of `s × sum` is computed chunk by chunk outside the autodiff graph
/// (`∂/∂logits = softmax − one_hot(label)`, then through the head by hand) and returned as
/// [`ChunkedLoss::surrogate`] = `Σ hidden ⊙ G_h + Σ head ⊙ G_W` with the two gradients detached; back-propagating it
/// gives autodiff exactly `G_h` and `G_W`. `G_W` is only formed when `head` is part of the autodiff graph (a
/// trainable or tied head). A trainer passes `s = 1 / supervised tokens of the accumulation window`, and with fp16
/// the loss scale (`options.loss_scale`).
pub fn chunked_causal_lm_loss(
    hidden: Tensor<3>,
    head: Tensor<2>,
    labels: &[i64],
    options: &LossOptions,
) -> Result<ChunkedLoss> {
    let LossOptions { chunk_rows, grad_scale, loss_scale } = options.clone();
    let [batch, seq, width] = hidden.dims();
    let [head_in, vocab] = head.dims();
    if head_in != width {
        return Err(ModelError::Input(format!("head weight is [{head_in}, {vocab}], hidden states are {width} wide")));
    }
    if chunk_rows == 0 {
        return Err(ModelError::Input("chunk_rows must be at least 1".into()));
    }
    let (rows, targets) = supervised(labels, [batch, seq, vocab])?;
    let device = hidden.device();
    let count = rows.len();
    let zero = || Tensor::<1>::zeros([1], (&device, DType::F32));
    if count == 0 {
        return Ok(ChunkedLoss { sum: zero(), count, correct: zero(), surrogate: None });
    }
    let dtype = hidden.dtype();
    let flat = hidden.narrow(1, 0, seq - 1).reshape([batch * (seq - 1), width]);
    let selected = flat.select(0, Tensor::from_data(TensorData::new(rows, [count]), &device));
    let weight = head.clone().detach();
    let head_grad = grad_scale.is_some() && head.is_tracked();
    let fused = has_cpu_kernels(&device, DType::F32);
    let (mut sum, mut correct) = (zero(), zero());
    let mut hidden_grads = Vec::new();
    let mut weight_grad: Option<Tensor<2>> = None;
    for start in (0..count).step_by(chunk_rows) {
        let n = chunk_rows.min(count - start);
        let h = selected.clone().detach().narrow(0, start, n);
        if fused && dtype == DType::F32 && !head_grad && loss_scale.is_none() {
            // The logits, the cross-entropy and the hidden states' gradient in one operation.
            let labels = targets[start..start + n].iter().map(|&t| t as u32).collect();
            let (dh, totals) = head_cross_entropy(h, weight.clone(), labels, grad_scale.map(|s| s as f32));
            sum = sum + totals.clone().narrow(0, 0, 1);
            correct = correct + totals.narrow(0, 1, 1);
            if grad_scale.is_some() {
                hidden_grads.push(dh);
            }
            continue;
        }
        let logits = h.clone().matmul(weight.clone()).cast(DType::F32);
        let grad = if fused {
            // One pass of the CPU kernel for the loss, the accuracy and the gradient.
            let labels = targets[start..start + n].iter().map(|&t| t as u32).collect();
            let (grad, totals) = cross_entropy_chunk(logits, labels, grad_scale.map(|s| s as f32));
            sum = sum + totals.clone().narrow(0, 0, 1);
            correct = correct + totals.narrow(0, 1, 1);
            grad_scale.map(|_| grad)
        } else {
            let target =
                Tensor::<2, Int>::from_data(TensorData::new(targets[start..start + n].to_vec(), [n, 1]), &device);
            let max = logits.clone().max_dim(1);
            let shifted = logits.clone() - max.clone();
            let exp = shifted.exp();
            let total = exp.clone().sum_dim(1);
            let lse = total.clone().log() + max;
            let picked = logits.clone().gather(1, target.clone());
            sum = sum + (lse - picked).sum();
            let argmax = logits.clone().argmax(1);
            correct = correct + argmax.equal(target.clone()).float().cast(DType::F32).sum();
            grad_scale.map(|scale| {
                // softmax = exp(logits − max) / Σ exp(logits − max): the exponentials of the loss, reused.
                let probs = exp / total;
                let minus_one = Tensor::<2>::full([n, 1], -1.0, (&device, DType::F32));
                probs.scatter(1, target, minus_one, IndexingUpdateOp::Add).mul_scalar(scale)
            })
        };
        if let Some(mut grad) = grad {
            if let Some(loss_scale) = &loss_scale {
                grad = grad * loss_scale.clone().reshape([1, 1]);
            }
            let grad = grad.cast(dtype);
            hidden_grads.push(grad.clone().matmul(weight.clone().transpose()));
            if head_grad {
                let g = h.transpose().matmul(grad);
                weight_grad = Some(match weight_grad {
                    Some(acc) => acc + g,
                    None => g,
                });
            }
        }
    }
    let surrogate = grad_scale.map(|_| {
        let mut s = (selected * Tensor::cat(hidden_grads, 0).detach()).sum().cast(DType::F32);
        if let Some(g) = weight_grad {
            s = s + (head * g.detach()).sum().cast(DType::F32);
        }
        s
    });
    Ok(ChunkedLoss { sum, count, correct, surrogate })
}
