//! Gradients flow through every parameter: a few AdamW steps on one batch lower the loss.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaForCausalLM, causal_lm_loss};

use crate::{fixture, reference, reference_batch, values};

#[test]
fn training_all_parameters_lowers_the_loss() {
    let device = Device::flex().autodiff();
    let (config, model) = LlamaForCausalLM::from_pretrained(&fixture("llama-micro"), &device, FloatDType::F32).unwrap();
    // 9 tensors per layer (4 attention, 3 MLP, 2 norms), embeddings, final norm, untied head.
    let tensors = 9 * config.num_hidden_layers + 3;
    let mut model = model.train();
    let reference = reference("llama-micro");
    let (input, _, labels) = reference_batch(&reference, &device);
    let mut optimizer = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0).init();
    let mut losses = Vec::new();
    for _ in 0..5 {
        let loss = causal_lm_loss(model.forward(&input), &labels).unwrap().mean();
        losses.push(values(loss.clone().inner())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        assert_eq!(grads.len(), tensors, "every parameter has a gradient");
        model = optimizer.step(1e-3, model, grads);
    }
    eprintln!("losses over 5 AdamW steps: {losses:?}");
    assert!(losses[4] < losses[0] - 0.5, "loss falls: {losses:?}");
}
