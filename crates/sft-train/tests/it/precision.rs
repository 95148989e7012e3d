//! Mixed precision and gradient checkpointing on flex: a bf16 base (weights and activations) under f32 adapters
//! evaluates within 1% of f32 and trains; recomputing activations in the backward pass changes no update.

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use sft_model::LlamaForCausalLM;
use sft_peft::{LoraLinear, inject};
use sft_train::{IntervalStrategy, TrainingArguments};

use crate::{adapters, args, examples, lora, micro, trainer};

fn model_on(device: &Device, dtype: FloatDType) -> LlamaForCausalLM<LoraLinear> {
    let base = LlamaForCausalLM::from_pretrained(&micro(), device, dtype).unwrap().1;
    inject(base, &lora(), 7).unwrap()
}

#[test]
fn a_bf16_base_evaluates_within_one_percent_of_f32_and_trains() {
    let (train, eval) = (examples(16, 8), examples(8, 9));
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        per_device_train_batch_size: 4,
        max_steps: 6,
        eval_strategy: IntervalStrategy::Steps,
        eval_steps: Some(6),
        ..args(dir.path())
    };
    let device = Device::flex().autodiff();
    let mut trainer = trainer(args, lora(), &train, Some(&eval[..]), 4);
    let f32_loss = trainer.evaluate(&model_on(&device, FloatDType::F32)).unwrap()["eval_loss"];
    let model = model_on(&device, FloatDType::BF16);
    let adapter = model.projections().into_iter().find_map(|(_, p)| p.adapter.clone()).unwrap();
    assert_eq!(adapter.lora_a.val().dtype(), DType::F32, "adapters stay f32");
    assert_eq!(model.model.embed_tokens.weight.val().dtype(), DType::BF16);
    let bf16_loss = trainer.evaluate(&model).unwrap()["eval_loss"];
    let rel = (bf16_loss - f32_loss).abs() / f32_loss;
    eprintln!("eval_loss bf16 {bf16_loss} vs f32 {f32_loss} (relative {rel:.2e})");
    assert!(rel < 0.01, "bf16 {bf16_loss} vs f32 {f32_loss}");

    // Six steps lower the loss as much as in f32, give or take bf16's rounding.
    let eval_after =
        |out: &sft_train::TrainOutput| out.state.log_history.iter().find_map(|e| e.get("eval_loss").copied()).unwrap();
    let out = trainer.train(model).unwrap();
    let after = eval_after(&out);
    let f32_after = eval_after(&trainer.train(model_on(&device, FloatDType::F32)).unwrap());
    let (drop, f32_drop) = (bf16_loss - after, f32_loss - f32_after);
    eprintln!("training: eval_loss bf16 {bf16_loss} → {after}, f32 {f32_loss} → {f32_after}");
    assert!(drop > 0.0 && (drop - f32_drop).abs() < 0.05 * f32_drop, "bf16 drop {drop} vs f32 {f32_drop}");
    let adapter = out.model.projections().into_iter().find_map(|(_, p)| p.adapter.clone()).unwrap();
    assert_eq!(adapter.lora_b.val().dtype(), DType::F32, "and stay f32 through AdamW");
}

#[test]
fn gradient_checkpointing_gives_the_same_updates() {
    let train = examples(12, 8);
    let run = |device: Device| {
        let dir = tempfile::tempdir().unwrap();
        let args = TrainingArguments { per_device_train_batch_size: 4, max_steps: 3, ..args(dir.path()) };
        let mut trainer = trainer(args, lora(), &train, None, 4);
        adapters(&trainer.train(model_on(&device, FloatDType::F32)).unwrap().model)
    };
    let plain = run(Device::flex().autodiff());
    let checkpointed = run(Device::flex().autodiff().gradient_checkpointing());
    let diff = plain.iter().zip(&checkpointed).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("gradient checkpointing vs plain: adapters max |Δ| {diff:.2e}");
    assert!(diff <= 1e-6, "{diff}");
}
