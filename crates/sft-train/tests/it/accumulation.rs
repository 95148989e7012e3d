//! Gradient accumulation normalises by the supervised tokens of the whole window: batch 4 × accumulation 1 and
//! batch 1 × accumulation 4 over the same examples give the same adapters.

use sft_collate::Sampling;
use sft_train::Trainer;

use crate::{adapters, args, examples, lora, model, source};

#[test]
fn batch_4_by_1_equals_batch_1_by_4() {
    // Without dropout (the two runs draw different masks per micro-batch) and in order, so both runs see the
    // same 4 examples per step: unequal lengths and supervised counts (2..=14 supervised tokens).
    let config = sft_peft::LoraConfig { lora_dropout: 0.0, ..lora() };
    let data = examples(12, 1);
    let run = |batch: usize, accumulation: usize| {
        let dir = tempfile::tempdir().unwrap();
        let args = sft_train::TrainingArguments {
            per_device_train_batch_size: batch,
            gradient_accumulation_steps: accumulation,
            micro_batch_workers: 1,
            max_steps: 3,
            ..args(dir.path())
        };
        let mut trainer =
            Trainer::new(args, config.clone(), "micro", source(&data, batch, Sampling::Sequential), None).unwrap();
        let out = trainer.train(model(&config)).unwrap();
        let losses: Vec<f64> = out.state.log_history.iter().map(|e| e["loss"]).collect();
        (adapters(&out.model), losses)
    };
    let (wide, wide_losses) = run(4, 1);
    let (deep, deep_losses) = run(1, 4);
    let scale = wide.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = wide.iter().zip(&deep).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("4×1 vs 1×4: adapters max |Δ| {diff:.2e} (max {scale:.2e}); losses {wide_losses:?} vs {deep_losses:?}");
    assert!(diff <= 1e-5 * scale, "adapters differ by {diff}");
    for (a, b) in wide_losses.iter().zip(&deep_losses) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "{wide_losses:?} vs {deep_losses:?}");
    }
    // The naive normalisation (mean of per-micro-batch means) would differ: the examples' supervised counts
    // are unequal, so this comparison can fail.
    let counts: Vec<usize> = data[..4].iter().map(|e| e.num_supervised()).collect();
    assert!(counts.iter().any(|&c| c != counts[0]), "{counts:?}");
}

/// A micro-batch without supervised labels contributes nothing and is counted; the step still updates from the
/// other micro-batches of its window.
#[test]
fn a_batch_without_labels_is_skipped_and_counted() {
    let config = sft_peft::LoraConfig { lora_dropout: 0.0, ..lora() };
    let mut data = examples(4, 3);
    data[1].loss_mask.iter_mut().for_each(|m| *m = false);
    let dir = tempfile::tempdir().unwrap();
    let args = sft_train::TrainingArguments {
        per_device_train_batch_size: 1,
        gradient_accumulation_steps: 2,
        max_steps: 2,
        ..args(dir.path())
    };
    let before = adapters(&model(&config));
    let mut trainer =
        Trainer::new(args, config.clone(), "micro", source(&data, 1, Sampling::Sequential), None).unwrap();
    let out = trainer.train(model(&config)).unwrap();
    assert_eq!(out.state.skipped_batches, 1);
    assert_eq!(out.state.global_step, 2);
    assert_ne!(adapters(&out.model), before);
    assert!(out.state.log_history.iter().all(|e| e["loss"].is_finite()));
}

/// A non-finite loss stops the run with an error naming the step; the checkpoints before it stay.
#[test]
fn a_non_finite_loss_stops_with_the_step() {
    let config = sft_peft::LoraConfig { lora_dropout: 0.0, ..lora() };
    let data = examples(8, 4);
    let dir = tempfile::tempdir().unwrap();
    // An absurd learning rate without clipping: step 1 is finite and blows the adapters up, step 2 overflows.
    let args = sft_train::TrainingArguments {
        per_device_train_batch_size: 2,
        max_steps: 4,
        learning_rate: 1e30,
        warmup_steps: 0,
        max_grad_norm: 0.0,
        save_strategy: sft_train::IntervalStrategy::Steps,
        save_steps: 1,
        ..args(dir.path())
    };
    let mut trainer =
        Trainer::new(args, config.clone(), "micro", source(&data, 2, Sampling::Sequential), None).unwrap();
    let err = trainer.train(model(&config)).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, sft_train::TrainError::NonFinite { step: 2, .. }), "{message}");
    assert!(message.starts_with("step 2: "), "{message}");
    let kept: Vec<u64> = sft_train::list_checkpoints(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [1]);

    // Steps are read back only at logging / evaluation / save steps: with logging every 4 steps and a save at 3,
    // the blow-up at step 2 is found when step 3's checkpoint is due, reported with its own step, and that
    // checkpoint is never written.
    let dir = tempfile::tempdir().unwrap();
    let deferred = sft_train::TrainingArguments {
        per_device_train_batch_size: 2,
        max_steps: 4,
        learning_rate: 1e30,
        warmup_steps: 0,
        max_grad_norm: 0.0,
        logging_steps: 4,
        save_strategy: sft_train::IntervalStrategy::Steps,
        save_steps: 3,
        ..crate::args(dir.path())
    };
    let mut trainer =
        Trainer::new(deferred, config.clone(), "micro", source(&data, 2, Sampling::Sequential), None).unwrap();
    let err = trainer.train(model(&config)).unwrap_err();
    assert!(matches!(err, sft_train::TrainError::NonFinite { step: 2, .. }), "{err}");
    assert!(sft_train::list_checkpoints(dir.path()).unwrap().is_empty());
}

/// Two micro-batches at a time (threads) give bit-identical adapters and losses to one at a time, with dropout.
#[test]
fn micro_batch_workers_do_not_change_the_result() {
    let config = lora();
    let data = examples(16, 12);
    let run = |workers: usize| {
        let dir = tempfile::tempdir().unwrap();
        let args = sft_train::TrainingArguments {
            per_device_train_batch_size: 2,
            gradient_accumulation_steps: 4,
            micro_batch_workers: workers,
            max_steps: 3,
            ..args(dir.path())
        };
        let sampling = Sampling::Shuffle { seed: 5 };
        let mut trainer = Trainer::new(args, config.clone(), "micro", source(&data, 2, sampling), None).unwrap();
        let out = trainer.train(model(&config)).unwrap();
        (adapters(&out.model), out.state.log_history.iter().map(|e| e["loss"]).collect::<Vec<f64>>())
    };
    let (one, one_losses) = run(1);
    let (two, two_losses) = run(2);
    let (three, _) = run(3);
    assert_eq!(one, two);
    assert_eq!(one, three);
    assert_eq!(one_losses, two_losses);
}
