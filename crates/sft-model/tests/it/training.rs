//! Gradients flow through every parameter: a few AdamW steps on one batch lower the loss.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::LlamaForCausalLM;
use sft_testkit::{Steps, adamw_steps};

use crate::{fixture, reference, reference_batch};

#[test]
fn training_all_parameters_lowers_the_loss() {
    let device = Device::flex().autodiff();
    let (config, model) = LlamaForCausalLM::from_pretrained(&fixture("llama-micro"), &device, FloatDType::F32).unwrap();
    // 9 tensors per layer (4 attention, 3 MLP, 2 norms), embeddings, final norm, untied head.
    let tensors = 9 * config.num_hidden_layers + 3;
    let reference = reference("llama-micro");
    let (input, _, labels) = reference_batch(&reference, &device);
    let Steps { losses, gradients, .. } = adamw_steps(model.train(), &input, &labels, 1e-3, 5);
    assert!(gradients.iter().all(|&n| n == tensors), "every parameter has a gradient: {gradients:?}");
    eprintln!("losses over 5 AdamW steps: {losses:?}");
    assert!(losses[4] < losses[0] - 0.5, "loss falls: {losses:?}");
}

#[test]
fn training_every_family_lowers_the_loss() {
    let device = Device::flex().autodiff();
    // Per layer: 4 attention and 3 MLP weights and 2 norms, plus the family's biases (Qwen2: q/k/v) or q/k norms
    // (Qwen3); Phi-3: 2 + 2 fused weights and 2 norms; Gemma 3: 7 weights, q/k norms and 4 norms. Embeddings and
    // the final norm; an untied head (Qwen3, Mistral, Phi-3).
    let families = [
        ("qwen2-micro", 12, 0),
        ("qwen3-micro", 11, 1),
        ("mistral-micro", 9, 1),
        ("phi3-micro", 6, 1),
        ("gemma3-micro", 13, 0),
    ];
    for (folder, per_layer, head) in families {
        let (config, model) = LlamaForCausalLM::from_pretrained(&fixture(folder), &device, FloatDType::F32).unwrap();
        let reference = reference(folder);
        let (input, _, labels) = reference_batch(&reference, &device);
        let Steps { losses, gradients, .. } = adamw_steps(model.train(), &input, &labels, 1e-3, 5);
        let tensors = per_layer * config.num_hidden_layers + 2 + head;
        assert!(gradients.iter().all(|&n| n == tensors), "{folder}: every parameter has a gradient: {gradients:?}");
        assert!(losses[4] < losses[0] - 0.5, "{folder}: loss falls: {losses:?}");
    }
}
