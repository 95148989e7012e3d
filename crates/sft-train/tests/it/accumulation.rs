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
