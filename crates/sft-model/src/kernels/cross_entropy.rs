//! Cross-entropy of a chunk of logit rows against their labels, with the logits' gradient written in place: one
//! pass for the row maximum and arg-max, one for the exponentials' sum, one for the gradient.

use rayon::prelude::*;

use super::exp::exp;

/// What a chunk contributes to the loss.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Totals {
    /// Σ −log softmax(row)[label].
    pub sum: f64,
    /// Rows whose first maximal logit is the label.
    pub correct: u64,
}

/// For `logits` `[rows, vocab]` and one label per row (each `< vocab`): the totals, and with `grad_scale = Some(s)`
/// the rows overwritten by `s · (softmax(row) − one_hot(label))`.
pub(crate) fn cross_entropy(logits: &mut [f32], labels: &[u32], vocab: usize, grad_scale: Option<f32>) -> Totals {
    if vocab == 0 {
        return Totals::default();
    }
    let per = super::rows_per_task(vocab);
    logits
        .par_chunks_mut(vocab * per)
        .zip(labels.par_chunks(per))
        .map(|(rows, labels)| {
            super::vectorized(
                #[inline(always)]
                || {
                    let mut totals = Totals::default();
                    for (row, &label) in rows.chunks_exact_mut(vocab).zip(labels) {
                        let label = label as usize;
                        let (max, argmax) = max_and_argmax(row);
                        let mut acc = [0f32; 16];
                        let chunks = row.chunks_exact(16);
                        let rest = chunks.remainder();
                        for c in chunks {
                            for l in 0..16 {
                                acc[l] += exp(c[l] - max);
                            }
                        }
                        for (l, v) in rest.iter().enumerate() {
                            acc[l] += exp(v - max);
                        }
                        let total = super::sum16(acc);
                        let picked = row.get(label).copied().unwrap_or(f32::NAN);
                        totals.sum += f64::from(total.ln() + max - picked);
                        totals.correct += u64::from(argmax == label);
                        if let Some(scale) = grad_scale {
                            let factor = scale / total;
                            for v in row.iter_mut() {
                                *v = exp(*v - max) * factor;
                            }
                            if let Some(v) = row.get_mut(label) {
                                *v -= scale;
                            }
                        }
                    }
                    totals
                },
            )
        })
        .reduce(Totals::default, |a, b| Totals { sum: a.sum + b.sum, correct: a.correct + b.correct })
}

/// The row's maximum and the index of its first occurrence (as `torch.argmax`); NaN compares as smaller.
#[inline(always)]
fn max_and_argmax(row: &[f32]) -> (f32, usize) {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let chunks = row.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..16 {
            lanes[l] = lanes[l].max(c[l]);
        }
    }
    for (l, v) in rest.iter().enumerate() {
        lanes[l] = lanes[l].max(*v);
    }
    let max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (max, row.iter().position(|&v| v == max).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::data;

    #[test]
    fn loss_accuracy_and_gradient_equal_the_f64_formulas() {
        let (rows, vocab) = (70, 1000);
        let logits = data(rows * vocab, 1, 3.0);
        let labels: Vec<u32> = (0..rows as u32).map(|r| (r * 37) % vocab as u32).collect();
        let mut grad = logits.clone();
        let totals = cross_entropy(&mut grad, &labels, vocab, Some(0.25));
        let mut plain = logits.clone();
        assert_eq!(cross_entropy(&mut plain, &labels, vocab, None), totals);
        assert_eq!(plain, logits, "no gradient asked: the logits are left alone");
        let (mut sum, mut correct) = (0f64, 0u64);
        for r in 0..rows {
            let row: Vec<f64> = logits[r * vocab..(r + 1) * vocab].iter().map(|&v| f64::from(v)).collect();
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|v| (v - max).exp()).sum();
            let label = labels[r] as usize;
            sum += z.ln() + max - row[label];
            correct += u64::from(row.iter().position(|&v| v == max) == Some(label));
            for (j, v) in row.iter().enumerate() {
                let expected = 0.25 * ((v - max).exp() / z - if j == label { 1.0 } else { 0.0 });
                assert!((f64::from(grad[r * vocab + j]) - expected).abs() < 1e-7, "grad [{r}, {j}]");
            }
        }
        assert!((totals.sum - sum).abs() < 1e-4 * sum, "{} vs {sum}", totals.sum);
        assert_eq!(totals.correct, correct);
        // A row whose label holds its maximum is correct.
        let mut row = vec![0.0, 3.0, 3.0, 1.0];
        assert_eq!(cross_entropy(&mut row, &[1], 4, None).correct, 1);
        assert_eq!(cross_entropy(&mut row, &[2], 4, None).correct, 0, "the first maximum is the prediction");
    }
}
