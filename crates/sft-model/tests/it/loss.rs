//! The chunked, fused loss equals the plain one: same value, same gradients, same token accuracy.

use burn::module::Param;
use burn::prelude::*;
use sft_model::{LlamaForCausalLM, LossOptions, causal_lm_loss, chunked_causal_lm_loss};

use crate::{load, reference, reference_batch, values};

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Gradients of the embeddings, one attention projection and (when untied) the head, after `backward` of `loss`.
fn grads_of(model: &LlamaForCausalLM, grads: &burn::tensor::Gradients) -> Vec<Vec<f32>> {
    let grad = |p: &Param<Tensor<2>>| values(p.grad(grads).unwrap());
    let mut out = vec![
        grad(&model.model.embed_tokens.weight),
        grad(&model.model.layers[0].self_attn.q_proj.as_ref().unwrap().weight),
    ];
    if let Some(head) = &model.lm_head {
        out.push(grad(&head.weight));
    }
    out
}

fn check(fixture: &str) {
    let device = Device::flex().autodiff();
    let (_, model) = load(fixture, &device);
    let model = model.train();
    let reference = reference(fixture);
    let (input, _, labels) = reference_batch(&reference, &device);

    let plain = causal_lm_loss(model.forward(&input), &labels).unwrap();
    let count = plain.count;
    let scale = 1.0 / count as f64;
    let plain_sum = values(plain.sum.clone().inner())[0];
    let plain_grads = grads_of(&model, &plain.sum.mul_scalar(scale).backward());

    // Logits of the supervised rows, for the accuracy reference.
    let logits = values(model.forward(&input).inner());
    let vocab = logits.len() / labels.len();
    let seq = labels.len() / 2;
    let mut correct = 0;
    for b in 0..2 {
        for t in 0..seq - 1 {
            let label = labels[b * seq + t + 1];
            if label >= 0 {
                let row = &logits[(b * seq + t) * vocab..(b * seq + t + 1) * vocab];
                let best = (0..vocab).fold(0, |m, i| if row[i] > row[m] { i } else { m });
                correct += usize::from(best as i64 == label);
            }
        }
    }

    for chunk in [7, 64, 10_000] {
        let fused = chunked_causal_lm_loss(
            model.hidden_states(&input),
            model.head_weight(),
            &labels,
            &LossOptions::train(chunk, scale),
        )
        .unwrap();
        assert_eq!(fused.count, count);
        let sum = values(fused.sum.inner())[0];
        assert!((sum - plain_sum).abs() <= 1e-5 * plain_sum.abs(), "{fixture} chunk {chunk}: {sum} vs {plain_sum}");
        assert_eq!(values(fused.correct.inner())[0] as usize, correct, "{fixture} chunk {chunk}: accuracy");
        let fused_grads = grads_of(&model, &fused.surrogate.unwrap().backward());
        for (i, (a, b)) in fused_grads.iter().zip(&plain_grads).enumerate() {
            let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let diff = max_abs_diff(a, b);
            assert!(
                diff <= 1e-5 * scale.max(1e-3),
                "{fixture} chunk {chunk}: gradient {i} differs by {diff} (max {scale})"
            );
        }
    }
}

#[test]
fn chunked_loss_equals_the_plain_loss_with_an_untied_head() {
    check("llama-micro");
}

#[test]
fn chunked_loss_equals_the_plain_loss_with_tied_embeddings() {
    check("llama-micro-tied-scaled");
}

#[test]
fn without_a_grad_scale_there_is_no_surrogate_and_no_labels_means_zero() {
    let device = Device::flex();
    let (_, model) = load("llama-micro", &device);
    let reference = reference("llama-micro");
    let (input, _, labels) = reference_batch(&reference, &device);
    let eval =
        chunked_causal_lm_loss(model.hidden_states(&input), model.head_weight(), &labels, &LossOptions::eval(32))
            .unwrap();
    assert!(eval.surrogate.is_none());
    let expected = values(causal_lm_loss(model.forward(&input), &labels).unwrap().sum)[0];
    assert!((values(eval.sum)[0] - expected).abs() <= 1e-5 * expected);
    let none = vec![-100; labels.len()];
    let empty =
        chunked_causal_lm_loss(model.hidden_states(&input), model.head_weight(), &none, &LossOptions::train(32, 1.0))
            .unwrap();
    assert_eq!((empty.count, values(empty.sum)[0]), (0, 0.0));
    assert!(
        chunked_causal_lm_loss(model.hidden_states(&input), model.head_weight(), &labels[1..], &LossOptions::eval(32))
            .is_err()
    );
}
