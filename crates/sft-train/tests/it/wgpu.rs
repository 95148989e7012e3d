//! The trainer on wgpu (the GPU, or Mesa lavapipe on a machine without one) against flex: the same steps give
//! the same losses, gradient norms, evaluation and adapters (`--features wgpu`). Everything of a step stays on the
//! device until the logging step reads it. fp16 with dynamic loss scaling too: the overflowing steps are skipped
//! on the device, the same ones as on flex.

use burn::prelude::*;
use burn::tensor::{DeviceKind, FloatDType};
use sft_model::LlamaForCausalLM;
use sft_train::{GradScalerConfig, IntervalStrategy, TrainingArguments};

use crate::{adapters, args, examples, lora, micro, trainer};

#[test]
fn training_on_wgpu_matches_flex() {
    let config = sft_peft::LoraConfig { lora_dropout: 0.0, ..lora() };
    let (train, eval) = (examples(16, 8), examples(4, 9));
    let run = |device: Device| {
        let dir = tempfile::tempdir().unwrap();
        let args = TrainingArguments {
            per_device_train_batch_size: 2,
            gradient_accumulation_steps: 2,
            max_steps: 4,
            logging_steps: 2,
            max_grad_norm: 0.5,
            eval_strategy: IntervalStrategy::Steps,
            eval_steps: Some(4),
            ..args(dir.path())
        };
        let mut trainer = trainer(args, config.clone(), &train, Some(&eval[..]), 2);
        let base = LlamaForCausalLM::from_pretrained(&micro(), &device, FloatDType::F32).unwrap().1;
        let out = trainer.train(sft_peft::inject(base, &config, 7).unwrap()).unwrap();
        (out.state.log_history, adapters(&out.model))
    };
    let (gpu_log, gpu) = run(Device::wgpu(DeviceKind::DefaultDevice).autodiff());
    let (cpu_log, cpu) = run(Device::flex().autodiff());
    assert_eq!(gpu_log.len(), cpu_log.len());
    for (gpu_entry, cpu_entry) in gpu_log.iter().zip(&cpu_log) {
        for key in ["loss", "grad_norm", "eval_loss", "mean_token_accuracy"] {
            if let (Some(g), Some(c)) = (gpu_entry.get(key), cpu_entry.get(key)) {
                eprintln!("step {}: {key} wgpu {g} vs flex {c}", cpu_entry["step"]);
                assert!((g - c).abs() <= 1e-4 * c.abs().max(1.0), "{key}: wgpu {g} vs flex {c}");
            }
        }
    }
    let scale = cpu.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = gpu.iter().zip(&cpu).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("adapters after 4 clipped steps: max |Δ| {diff:.2e} (max {scale:.2e})");
    assert!(diff <= 1e-4 * scale, "{diff} vs {scale}");
}

#[test]
fn fp16_training_with_overflowing_steps_on_wgpu_matches_flex() {
    let config = sft_peft::LoraConfig { lora_dropout: 0.0, ..lora() };
    let train = examples(16, 8);
    // 2^24 overflows fp16 at first: the first steps are skipped and the scale halved until it fits.
    let scaler = GradScalerConfig { init_scale: 2f64.powi(24), ..Default::default() };
    let run = |device: Device| {
        let dir = tempfile::tempdir().unwrap();
        let args = TrainingArguments { per_device_train_batch_size: 4, max_steps: 12, fp16: true, ..args(dir.path()) };
        let mut trainer = trainer(args, config.clone(), &train, None, 4).with_grad_scaler(scaler);
        let base = LlamaForCausalLM::from_pretrained(&micro(), &device, FloatDType::F16).unwrap().1;
        let out = trainer.train(sft_peft::inject(base, &config, 7).unwrap()).unwrap();
        (out.state.skipped_steps, out.state.log_history, adapters(&out.model))
    };
    let (gpu_skipped, gpu_log, gpu) = run(Device::wgpu(DeviceKind::DefaultDevice).autodiff());
    let (cpu_skipped, cpu_log, cpu) = run(Device::flex().autodiff());
    eprintln!("skipped steps: wgpu {gpu_skipped}, flex {cpu_skipped}");
    assert!(cpu_skipped > 0 && gpu_skipped == cpu_skipped);
    assert_eq!(gpu_log.len(), cpu_log.len());
    let mut worst = 0.0f64;
    for (gpu_entry, cpu_entry) in gpu_log.iter().zip(&cpu_log) {
        let (g, c) = (gpu_entry["loss"], cpu_entry["loss"]);
        // fp16 matmuls accumulate differently on the two backends.
        assert!((g - c).abs() <= 1e-3 * c, "step {}: loss wgpu {g} vs flex {c}", cpu_entry["step"]);
        assert_eq!(gpu_entry["learning_rate"], cpu_entry["learning_rate"], "the schedule waits on the same steps");
        worst = worst.max((g - c).abs() / c);
    }
    let scale = cpu.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = gpu.iter().zip(&cpu).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("fp16 after 12 steps: losses within {worst:.2e} relative, adapters max |Δ| {diff:.2e} (max {scale:.2e})");
    assert!(diff <= 5e-3 * scale, "{diff} vs {scale}");
}
