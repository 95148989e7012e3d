//! QLoRA on llama-micro: the projections quantized to NF4 while loading, LoRA on top; the loss stays within 2% of
//! the f32 model's and training lowers it.

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use sft_model::{Checkpoint, LlamaConfig, LlamaForCausalLM, causal_lm_loss};
use sft_peft::nf4::Nf4Linear;
use sft_peft::{LoraConfig, TargetModules, inject, merge_and_unload};
use sft_testkit::{Steps, adamw_steps};

use crate::{batch, micro, values};

fn quantized(device: &Device, double: bool) -> LlamaForCausalLM<Nf4Linear> {
    let config = LlamaConfig::from_file(&micro().join("config.json")).unwrap();
    let mut checkpoint = Checkpoint::open_dir(&micro()).unwrap();
    let model = LlamaForCausalLM::load_with(&config, &mut checkpoint, device, FloatDType::F32, |_, w| {
        Nf4Linear::quantize(w, double, DType::F32)
    })
    .unwrap();
    checkpoint.finish().unwrap();
    model
}

#[test]
fn the_nf4_micro_model_is_within_two_percent_and_qlora_trains() {
    let reference = crate::reference();
    let f32_loss = reference.f32("loss").0[0];
    let device = Device::flex().autodiff();
    let (input, _, labels) = batch(&device);
    for double in [false, true] {
        let model = quantized(&device, double);
        let loss = values(causal_lm_loss(model.forward(&input), &labels).unwrap().mean().inner())[0];
        let rel = ((loss - f32_loss) / f32_loss).abs();
        eprintln!("NF4 (double quant {double}) loss {loss}, f32 {f32_loss}, relative {rel:.2e}");
        assert!(rel < 0.02, "{loss} vs {f32_loss}");
    }
    let config = LoraConfig {
        r: 8,
        lora_alpha: 16.0,
        target_modules: Some(TargetModules::Pattern("all-linear".into())),
        ..Default::default()
    };
    let model = inject(quantized(&device, true), &config, 0).unwrap().train();
    let Steps { model, losses, gradients } = adamw_steps(model, &input, &labels, 1e-2, 5);
    assert!(
        gradients.iter().all(|&n| n == 28),
        "only the adapters get gradients (NF4 weights are constants): {gradients:?}"
    );
    eprintln!("QLoRA losses over 5 AdamW steps: {losses:?}");
    assert!(losses[4] < losses[0] - 0.05, "{losses:?}");
    // Merging into a 4-bit base gives a dense f32 model (dequantized, never re-quantized) with the same function.
    let eval = model.valid();
    let plain_device = Device::flex();
    let (input, mask, _) = batch(&plain_device);
    let merged = merge_and_unload(eval.clone());
    assert_eq!(merged.projections()[0].1.weight.val().dtype(), DType::F32);
    let d = crate::max_abs_diff_real(&values(merged.forward(&input)), &values(eval.forward(&input)), &mask, 4096);
    assert!(d <= 1e-4, "{d}");
}
