//! Only adapters (and modules_to_save) train: gradients exist for them alone, the base stays bit-identical, and
//! a few AdamW steps lower the loss.

use burn::prelude::*;
use sft_model::LlamaForCausalLM;
use sft_peft::{InitLoraWeights, LoraConfig, LoraLinear, TargetModules, inject, merge_and_unload};
use sft_testkit::{Steps, adamw_steps};

use crate::{base, batch, values};

fn base_weights(model: &LlamaForCausalLM<LoraLinear>) -> Vec<Vec<f32>> {
    let mut out: Vec<Vec<f32>> =
        model.projections().iter().map(|(_, p)| values(p.base.clone().into_dense().weight.val())).collect();
    out.push(values(model.model.embed_tokens.weight.val()));
    out
}

#[test]
fn lora_training_updates_only_adapters_and_lowers_the_loss() {
    let device = Device::flex().autodiff();
    let config = LoraConfig {
        r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.05,
        target_modules: Some(TargetModules::Pattern("all-linear".into())),
        modules_to_save: Some(vec!["lm_head".into()]),
        init_lora_weights: InitLoraWeights::Bool(true),
        ..Default::default()
    };
    let model = inject(base(&device), &config, 0).unwrap().train();
    let frozen = base_weights(&model);
    let head_before = values(model.lm_head.as_ref().unwrap().weight.val());
    let (input, _, labels) = batch(&device);
    let Steps { model, losses, gradients } = adamw_steps(model, &input, &labels, 5e-3, 6);
    // 14 adapters × (A, B) + lm_head.
    assert!(gradients.iter().all(|&n| n == 29), "gradients for adapters and modules_to_save only: {gradients:?}");
    eprintln!("LoRA + lm_head losses over 6 AdamW steps: {losses:?}");
    assert!(losses[5] < losses[0] - 0.3, "{losses:?}");
    assert_eq!(base_weights(&model), frozen, "the base is untouched");
    assert_ne!(values(model.lm_head.as_ref().unwrap().weight.val()), head_before, "lm_head trains");
    // Merging keeps the function (dropout is off outside autodiff training).
    let eval = model.valid();
    let (input, mask, _) = batch(&Device::flex());
    let merged = merge_and_unload(eval.clone());
    let d = crate::max_abs_diff_real(&values(merged.forward(&input)), &values(eval.forward(&input)), &mask, 4096);
    assert!(d <= 1e-4, "merged model differs by {d}");
}
