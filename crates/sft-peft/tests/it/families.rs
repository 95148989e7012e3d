//! The families' PEFT adapters (`target_modules="all-linear"`, written as full module paths for qwen2, qwen3,
//! mistral and phi3, as the minimal suffix set for gemma3) give PEFT's LoRA hidden states, loss and gradients,
//! merge into PEFT's merged weights, and are written back with the same keys. Qwen2's q/k/v biases sit outside the
//! LoRA projections, as in PEFT; Phi-3's adapters sit on the fused `qkv_proj` / `gate_up_proj`.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaForCausalLM, ModelInput, causal_lm_loss};
use sft_peft::{load_adapter, merge_and_unload, save_adapter};
use sft_testkit::{Tensors, model_fixture};

use crate::{check_lora_gradients, max_abs_diff, max_abs_diff_real, transpose, values};

fn batch(reference: &Tensors, device: &Device) -> (ModelInput, Vec<u8>, Vec<i64>) {
    let ids: Vec<u32> = reference.i64("input_ids").iter().map(|&t| t as u32).collect();
    let mask: Vec<u8> = reference.i64("attention_mask").iter().map(|&m| m as u8).collect();
    let input = ModelInput::new(&ids, [2, 152], Some(&mask), None, None, device).unwrap();
    (input, mask, reference.i64("labels"))
}

/// `tensors`: the adapter's lora_A / lora_B count (FAMILIES.md); `hidden_tol`: its final_hidden tolerance.
fn check(folder: &str, merged: [&str; 2], tensors: usize, hidden_tol: f32) {
    let dir = model_fixture(folder);
    let reference = Tensors::open(&dir.join("reference.safetensors"));
    let device = Device::flex().autodiff();
    let base = LlamaForCausalLM::from_pretrained(&dir, &device, FloatDType::F32).unwrap().1;
    let (model, config) = load_adapter(base, &dir.join("peft_adapter")).unwrap();
    let model = model.train();
    let (input, mask, labels) = batch(&reference, &device);

    let hidden = model.hidden_states(&input);
    let (expected_hidden, _) = reference.f32("lora.final_hidden");
    let d_hidden = max_abs_diff_real(&values(hidden.clone().inner()), &expected_hidden, &mask, 64);
    assert!(d_hidden <= hidden_tol, "{folder}: LoRA final_hidden differs by {d_hidden}");
    let loss = causal_lm_loss(model.logits(hidden), &labels).unwrap();
    assert_eq!(loss.count, 60);
    let mean = loss.mean();
    let value = values(mean.clone().inner())[0];
    let expected_loss = reference.f32("lora.loss").0[0];
    assert!((value - expected_loss).abs() <= 1e-5, "{folder}: LoRA loss {value} vs {expected_loss}");

    let grads = mean.backward();
    let (worst, checked) = check_lora_gradients(&model, &grads, &reference, folder);
    eprintln!(
        "{folder}: Δhidden {d_hidden:.2e}, loss {value} vs {expected_loss}, {checked} gradients, worst {worst:.2e}"
    );
    assert_eq!(checked, tensors);

    // Written back with PEFT's keys and config.
    let out = tempfile::tempdir().unwrap();
    save_adapter(&model, &config, folder, out.path()).unwrap();
    let keys = |d: &std::path::Path| {
        let mut k = Tensors::open(&d.join("adapter_model.safetensors")).names();
        k.sort();
        k
    };
    assert_eq!(keys(out.path()), keys(&dir.join("peft_adapter")), "{folder}: adapter keys");

    // merge_and_unload: W + (B @ A) · scaling; the biases stay.
    let plain = merge_and_unload(model.valid());
    for name in merged {
        let (expected, shape) = reference.f32(&format!("merged.{name}.weight"));
        let layer = plain.projections().into_iter().find(|(n, _)| n == name).unwrap().1.clone();
        let ours = transpose(&values(layer.weight.val()), shape[1], shape[0]);
        let d = max_abs_diff(&ours, &expected);
        assert!(d <= 1e-6, "{folder} merged {name}: {d}");
    }
}

#[test]
fn qwen2_adapter_over_biased_projections_matches_peft() {
    check("qwen2-micro", ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"], 28, 1e-5);
}

#[test]
fn mistral_adapter_with_a_sliding_window_matches_peft() {
    check("mistral-micro", ["model.layers.0.self_attn.k_proj", "model.layers.1.mlp.up_proj"], 28, 1e-5);
}

#[test]
fn qwen3_adapter_with_qk_norms_matches_peft() {
    check("qwen3-micro", ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"], 28, 1e-5);
}

#[test]
fn phi3_adapter_on_the_fused_projections_matches_peft() {
    // lora_B of qkv_proj is [128, r]: one adapter over q, k and v together, as PEFT trains it.
    check("phi3-micro", ["model.layers.0.self_attn.qkv_proj", "model.layers.1.mlp.gate_up_proj"], 16, 1e-5);
}

#[test]
fn gemma3_adapter_matches_peft() {
    // target_modules written as the minimal suffix set (28 modules ≥ PEFT's threshold of 20); final_hidden within
    // FAMILIES.md's 5e-5 for gemma3.
    check("gemma3-micro", ["model.layers.0.self_attn.o_proj", "model.layers.2.mlp.gate_proj"], 56, 5e-5);
}

#[test]
fn lora_training_lowers_the_loss_for_every_family() {
    // Fresh adapters (lora_B = 0) on every linear projection of each micro model, a few AdamW steps on the
    // reference batch: only the adapters get gradients, and the loss falls.
    let device = Device::flex().autodiff();
    let config = sft_peft::LoraConfig {
        r: 8,
        lora_alpha: 16.0,
        target_modules: Some(sft_peft::TargetModules::Pattern("all-linear".into())),
        ..Default::default()
    };
    for (folder, adapters) in
        [("qwen2-micro", 14), ("qwen3-micro", 14), ("mistral-micro", 14), ("phi3-micro", 8), ("gemma3-micro", 28)]
    {
        let dir = model_fixture(folder);
        let reference = Tensors::open(&dir.join("reference.safetensors"));
        let base = LlamaForCausalLM::from_pretrained(&dir, &device, FloatDType::F32).unwrap().1;
        let model = sft_peft::inject(base, &config, 0).unwrap().train();
        let (input, _, labels) = batch(&reference, &device);
        let sft_testkit::Steps { losses, gradients, .. } = sft_testkit::adamw_steps(model, &input, &labels, 5e-3, 5);
        eprintln!("{folder}: LoRA losses over 5 AdamW steps {losses:?}");
        assert!(gradients.iter().all(|&n| n == 2 * adapters), "{folder}: adapters only: {gradients:?}");
        assert!(losses[4] < losses[0] - 0.1, "{folder}: the loss falls: {losses:?}");
    }
}
