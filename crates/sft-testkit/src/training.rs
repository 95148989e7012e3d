//! A few optimizer steps on one batch, the check that gradients flow where they should: the loop the model and
//! adapter tests share.
#![allow(clippy::unwrap_used)]

use burn::optim::{AdamWConfig, GradientsParams};
use sft_model::{LlamaForCausalLM, ModelInput, Projection, causal_lm_loss};

/// What [`adamw_steps`] saw.
#[derive(Debug)]
pub struct Steps<M> {
    /// The model after the last step.
    pub model: M,
    /// The mean token loss before each step.
    pub losses: Vec<f32>,
    /// How many parameters had a gradient at each step.
    pub gradients: Vec<usize>,
}

/// `steps` AdamW steps (ε 1e-8, no weight decay) at learning rate `lr` of `model` (on an autodiff device, in
/// training mode) on the batch `input` / `labels`, with the full-logits causal-LM loss.
pub fn adamw_steps<P>(
    mut model: LlamaForCausalLM<P>,
    input: &ModelInput,
    labels: &[i64],
    lr: f64,
    steps: usize,
) -> Steps<LlamaForCausalLM<P>>
where
    P: Projection,
{
    let mut optimizer = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0).init();
    let (mut losses, mut gradients) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let loss = causal_lm_loss(model.forward(input), labels).unwrap().mean();
        losses.push(loss.clone().inner().into_data().try_to_vec::<f32>().unwrap()[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        gradients.push(grads.len());
        model = optimizer.step(lr, model, grads);
    }
    Steps { model, losses, gradients }
}
