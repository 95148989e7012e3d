//! bf16 compute: weights and activations in bf16, attention softmax and the loss in f32.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use sft_model::{LlamaForCausalLM, causal_lm_loss};

use crate::{fixture, reference, reference_batch, values};

#[test]
fn bf16_loss_is_within_one_percent_of_f32_and_training_lowers_it() {
    let reference = reference("llama-micro");
    let (expected, _) = reference.f32("loss");
    let device = Device::flex().autodiff();
    let (_, model) = LlamaForCausalLM::from_pretrained(&fixture("llama-micro"), &device, FloatDType::BF16).unwrap();
    assert_eq!(model.dtype(), DType::BF16);
    let mut model = model.train();
    let (input, _, labels) = reference_batch(&reference, &device);
    let logits = model.forward(&input);
    assert_eq!(logits.dtype(), DType::BF16, "activations stay in bf16");
    let loss = values(causal_lm_loss(logits, &labels).unwrap().mean().inner())[0];
    let rel = ((loss - expected[0]) / expected[0]).abs();
    eprintln!("bf16 loss {loss}, transformers f32 {}, relative difference {rel:.2e}", expected[0]);
    assert!(rel < 0.01, "bf16 loss {loss} vs f32 {}", expected[0]);

    let mut optimizer = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0).init();
    let mut losses = Vec::new();
    for _ in 0..4 {
        let loss = causal_lm_loss(model.forward(&input), &labels).unwrap().mean();
        losses.push(values(loss.clone().inner())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
    }
    eprintln!("bf16 losses over 4 AdamW steps: {losses:?}");
    assert!(losses[3] < losses[0] - 0.3, "bf16 training lowers the loss: {losses:?}");
}
