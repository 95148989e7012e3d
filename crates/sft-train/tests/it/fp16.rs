//! fp16 mixed precision with dynamic loss scaling on flex: an fp16 base trains like f32; the loss scale is what
//! keeps fp16's small gradients; overflowing steps are skipped on the device (no update, the schedule waits) and
//! the scale backs off; a resumed fp16 run repeats the uninterrupted one bit for bit.

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use sft_model::{Checkpoint, LlamaForCausalLM};
use sft_peft::{LoraLinear, inject};
use sft_train::{
    GradScalerConfig, IntervalStrategy, LrSchedule, ResumeFrom, SCALER_FILE, StopReason, TrainOutput, TrainingArguments,
};

use crate::resume::{StopAt, without_runtimes};
use crate::{adapters, args, examples, lora, micro, trainer};

fn model_on(dtype: FloatDType) -> LlamaForCausalLM<LoraLinear> {
    let base = LlamaForCausalLM::from_pretrained(&micro(), &Device::flex().autodiff(), dtype).unwrap().1;
    inject(base, &lora(), 7).unwrap()
}

fn fp16_args(dir: &std::path::Path, max_steps: usize) -> TrainingArguments {
    TrainingArguments { per_device_train_batch_size: 4, max_steps: max_steps as i64, fp16: true, ..args(dir) }
}

/// The largest |Δ| between two adapter vectors, relative to the largest |value| of `reference`.
fn relative_gap(reference: &[f32], other: &[f32]) -> f32 {
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    reference.iter().zip(other).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / scale
}

fn first_eval(out: &TrainOutput) -> f64 {
    out.state.log_history.iter().find_map(|e| e.get("eval_loss").copied()).unwrap()
}

#[test]
fn an_fp16_base_evaluates_within_one_percent_of_f32_and_trains_like_it() {
    let (train, eval) = (examples(16, 8), examples(8, 9));
    let dir = tempfile::tempdir().unwrap();
    let args =
        TrainingArguments { eval_strategy: IntervalStrategy::Steps, eval_steps: Some(6), ..fp16_args(dir.path(), 6) };
    let mut fp16 = trainer(args.clone(), lora(), &train, Some(&eval[..]), 4);
    let model = model_on(FloatDType::F16);
    assert_eq!(model.model.embed_tokens.weight.val().dtype(), DType::F16);
    let f32_loss = fp16.evaluate(&model_on(FloatDType::F32)).unwrap()["eval_loss"];
    let fp16_loss = fp16.evaluate(&model).unwrap()["eval_loss"];
    let rel = (fp16_loss - f32_loss).abs() / f32_loss;
    eprintln!("eval_loss fp16 {fp16_loss} vs f32 {f32_loss} (relative {rel:.2e})");
    assert!(rel < 0.01, "fp16 {fp16_loss} vs f32 {f32_loss}");

    let out = fp16.train(model).unwrap();
    assert_eq!(out.state.skipped_steps, 0, "PyTorch's initial scale 2^16 does not overflow on this model");
    let f32_dir = tempfile::tempdir().unwrap();
    let f32_args = TrainingArguments { fp16: false, output_dir: f32_dir.path().display().to_string(), ..args };
    let f32_out = trainer(f32_args, lora(), &train, Some(&eval[..]), 4).train(model_on(FloatDType::F32)).unwrap();
    let (drop, f32_drop) = (fp16_loss - first_eval(&out), f32_loss - first_eval(&f32_out));
    eprintln!("six steps: eval_loss drop fp16 {drop} vs f32 {f32_drop}");
    assert!(drop > 0.0 && (drop - f32_drop).abs() < 0.05 * f32_drop, "fp16 drop {drop} vs f32 {f32_drop}");
    let adapter = out.model.projections().into_iter().find_map(|(_, p)| p.adapter.clone()).unwrap();
    assert_eq!(adapter.lora_b.val().dtype(), DType::F32, "adapters stay f32");
    let gap = relative_gap(&adapters(&f32_out.model), &adapters(&out.model));
    eprintln!("adapters after six steps, fp16 vs f32: max |Δ| / max |w| = {gap:.2e}");
    assert!(gap < 0.02, "{gap}");
}

#[test]
fn the_loss_scale_keeps_gradients_that_fp16_flushes_to_zero() {
    // The gradient norm of one step from the same start, in f32, in fp16 with PyTorch's scale 2^16, and in fp16
    // with the scale pinned at 1 (no loss scaling). The window holds 1024 examples, ~9k supervised tokens (a batch
    // of 4 × 2048 has as many): the loss gradient, divided by that count, lies below fp16's smallest normal
    // number (6.1e-5), so without scaling it loses its digits or flushes to zero in the fp16 layers. Measured:
    // f32 3.7310e-2, scale 2^16 3.7315e-2 (1.3e-4 off), scale 1 4.166e-2 (12% off).
    let train = examples(1024, 8);
    let norm = |dtype: FloatDType, scaler: Option<GradScalerConfig>| {
        let dir = tempfile::tempdir().unwrap();
        let args =
            TrainingArguments { fp16: scaler.is_some(), gradient_accumulation_steps: 16, ..fp16_args(dir.path(), 1) };
        let mut trainer = trainer(args, lora(), &train, None, 64);
        if let Some(config) = scaler {
            trainer = trainer.with_grad_scaler(config);
        }
        trainer.train(model_on(dtype)).unwrap().state.log_history[0]["grad_norm"]
    };
    let reference = norm(FloatDType::F32, None);
    let scaled = norm(FloatDType::F16, Some(GradScalerConfig::default()));
    let unscaled = norm(FloatDType::F16, Some(GradScalerConfig { init_scale: 1.0, ..Default::default() }));
    let gap = |n: f64| (n - reference).abs() / reference;
    eprintln!("first gradient norm: f32 {reference:.6e}, fp16 scale 2^16 {scaled:.6e}, fp16 scale 1 {unscaled:.6e}");
    assert!(gap(scaled) < 0.01, "{scaled} vs {reference}");
    assert!(gap(unscaled) > 10.0 * gap(scaled), "scale 1 {unscaled}, 2^16 {scaled}, f32 {reference}");
}

#[test]
fn overflowing_steps_are_skipped_and_the_scale_backs_off() {
    let (train, eval) = (examples(32, 8), examples(8, 9));
    let init_scale = 2f64.powi(24); // the loss gradient alone overflows fp16 (65504) at this scale
    let config = GradScalerConfig { init_scale, ..Default::default() };
    let steps = 16;
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        eval_strategy: IntervalStrategy::Steps,
        eval_steps: Some(steps),
        save_strategy: IntervalStrategy::Steps,
        save_steps: steps,
        ..fp16_args(dir.path(), steps)
    };
    let mut fp16 = trainer(args.clone(), lora(), &train, Some(&eval[..]), 4).with_grad_scaler(config);
    let start = model_on(FloatDType::F16);
    let (initial, start_loss) = (adapters(&start), fp16.evaluate(&start).unwrap()["eval_loss"]);
    let out = fp16.train(start).unwrap();
    let skipped = out.state.skipped_steps;
    eprintln!("{skipped} of {steps} steps skipped; eval_loss {start_loss} → {}", first_eval(&out));
    assert!((1..steps as u64 / 2).contains(&skipped), "{skipped}");
    assert!(first_eval(&out) < start_loss, "the steps after the back-off train");

    // Each overflow halved the scale (no growth within 2000 steps): the checkpoint holds 2^24 / 2^skipped.
    let mut scaler = Checkpoint::open(&[dir.path().join(format!("checkpoint-{steps}")).join(SCALER_FILE)]).unwrap();
    let scale: Vec<f32> =
        scaler.tensor::<1>("scale", [1], &Device::flex(), FloatDType::F32).unwrap().into_data().try_to_vec().unwrap();
    assert_eq!(f64::from(scale[0]), init_scale / 2f64.powi(skipped as i32));

    // Skipped steps come first and do not advance the schedule: step k logs the rate of schedule step
    // k − 1 − (steps skipped before it), and its grad_norm is only logged once steps are taken.
    let schedule = LrSchedule::new(&args, steps as u64);
    let logged: Vec<_> = out.state.log_history.iter().filter(|e| e.contains_key("loss")).collect();
    assert_eq!(logged.len(), steps);
    for (k, entry) in (1..).zip(&logged) {
        let schedule_step = k - 1 - (k - 1).min(skipped);
        assert_eq!(entry["learning_rate"], schedule.lr(schedule_step), "step {k}");
        assert!(entry["loss"].is_finite() && entry["grad_norm"].is_finite(), "step {k}: {entry:?}");
    }

    // The skipped steps change nothing: a run of exactly those steps ends where it began.
    let only_skips_dir = tempfile::tempdir().unwrap();
    let only_skips = fp16_args(only_skips_dir.path(), skipped as usize);
    let out =
        trainer(only_skips, lora(), &train, None, 4).with_grad_scaler(config).train(model_on(FloatDType::F16)).unwrap();
    assert_eq!(out.state.skipped_steps, skipped);
    assert_eq!(adapters(&out.model), initial, "no update from a skipped step");
}

#[test]
fn a_resumed_fp16_run_with_skipped_steps_equals_the_uninterrupted_one() {
    let train = examples(24, 8);
    // Overflows for the first few steps; the stop at step 3 falls among them, so the resumed run must restore the
    // scale and the count of skipped steps to continue identically.
    let config = GradScalerConfig { init_scale: 2f64.powi(24), growth_interval: 4, ..Default::default() };
    let steps = 10;
    let resume_args = |dir: &std::path::Path| TrainingArguments {
        save_strategy: IntervalStrategy::Steps,
        save_steps: 1000,
        logging_steps: 2,
        ..fp16_args(dir, steps)
    };
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = trainer(resume_args(straight_dir.path()), lora(), &train, None, 4)
        .with_grad_scaler(config)
        .train(model_on(FloatDType::F16))
        .unwrap();
    assert!(straight.state.skipped_steps > 3, "{}", straight.state.skipped_steps);

    let dir = tempfile::tempdir().unwrap();
    let first = trainer(resume_args(dir.path()), lora(), &train, None, 4)
        .with_grad_scaler(config)
        .with_callback(StopAt(3))
        .train(model_on(FloatDType::F16))
        .unwrap();
    assert_eq!(first.stop, StopReason::Stopped);
    assert!(dir.path().join("checkpoint-3").join(SCALER_FILE).is_file());
    let args = TrainingArguments { resume_from_checkpoint: Some(ResumeFrom::Latest(true)), ..resume_args(dir.path()) };
    let resumed =
        trainer(args, lora(), &train, None, 4).with_grad_scaler(config).train(model_on(FloatDType::F16)).unwrap();
    assert_eq!(resumed.state.skipped_steps, straight.state.skipped_steps);
    assert_eq!(resumed.state.log_history, without_runtimes(&straight.state.log_history, &resumed.state.log_history));
    assert_eq!(adapters(&resumed.model), adapters(&straight.model));
}
