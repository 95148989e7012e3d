//! The causal-LM loss: masked cross-entropy with the shift by one.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::error::{ModelError, Result};

/// The summed negative log-likelihood of the supervised tokens and how many there were.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Σ −log p(label) over supervised positions, shape `[1]`.
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

/// transformers' causal-LM loss: logits at position `t` predict `labels[t + 1]`; positions whose next label is
/// `-100` are ignored. `labels` is row-major `[batch, seq]` like the logits' first two dims. Returns the sum and
/// the count, so a trainer can normalise over a whole gradient-accumulation window.
pub fn causal_lm_loss(logits: Tensor<3>, labels: &[i64]) -> Result<LossOutput> {
    let [batch, seq, vocab] = logits.dims();
    if labels.len() != batch * seq {
        return Err(ModelError::Input(format!("labels have {} entries, expected {batch} × {seq}", labels.len())));
    }
    if seq < 2 {
        return Ok(LossOutput { sum: Tensor::zeros([1], &logits.device()), count: 0 });
    }
    let device = logits.device();
    let n = batch * (seq - 1);
    let mut targets = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for b in 0..batch {
        for t in 1..seq {
            let label = labels[b * seq + t];
            if label >= 0 {
                if label as usize >= vocab {
                    return Err(ModelError::Input(format!("label {label} is outside the vocabulary of {vocab}")));
                }
                targets.push(label);
                weights.push(1.0f32);
            } else {
                targets.push(0);
                weights.push(0.0);
            }
        }
    }
    let count = weights.iter().filter(|&&w| w > 0.0).count();
    let shifted = logits.narrow(1, 0, seq - 1).reshape([n, vocab]);
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [n, 1]), &device);
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [n, 1]), &device);
    let picked = log_softmax(shifted, 1).gather(1, targets);
    let sum = (picked * weights).sum().neg();
    Ok(LossOutput { sum, count })
}
