//! Early stopping on a constructed metric sequence, and `load_best_model_at_end` restoring the best checkpoint.

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::LlamaForCausalLM;
use sft_train::{
    Callback, EarlyStopping, EarlyStoppingConfig, IntervalStrategy, Metrics, StopReason, TrainerControl, TrainerState,
    TrainingArguments,
};

use crate::{adapters, args, examples, lora, micro, model, trainer};

/// Replaces `eval_loss` with the next value of a constructed sequence.
struct Scripted(Vec<f64>);

impl Callback for Scripted {
    fn name(&self) -> &str {
        "Scripted"
    }

    fn on_evaluate(&mut self, _state: &TrainerState, metrics: &mut Metrics, _control: &mut TrainerControl) {
        metrics.insert("eval_loss".into(), self.0.remove(0));
    }
}

#[test]
fn early_stopping_fires_at_the_right_evaluation_and_the_best_checkpoint_is_restored() {
    let config = lora();
    let (train, eval) = (examples(16, 8), examples(4, 9));
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        per_device_train_batch_size: 2,
        max_steps: 20,
        eval_strategy: IntervalStrategy::Steps,
        eval_steps: Some(1),
        save_strategy: IntervalStrategy::Steps,
        save_steps: 1,
        save_total_limit: Some(2),
        load_best_model_at_end: true,
        ..args(dir.path())
    };
    // Best at evaluation 2; 3, 4, 5 do not improve by more than 0.01 → stop at 5 with patience 3.
    let sequence = vec![3.0, 2.0, 2.5, 1.995, 2.0, 1.0, 0.5];
    let stopping = EarlyStopping::new(
        EarlyStoppingConfig { early_stopping_patience: 3, early_stopping_threshold: 0.01 },
        "eval_loss",
        false,
    );
    let mut trainer = trainer(args, config.clone(), &train, Some(&eval[..]), 2)
        .with_callback(Scripted(sequence))
        .with_callback(stopping);
    let out = trainer.train(model(&config)).unwrap();
    assert_eq!(out.stop, StopReason::Stopped);
    assert_eq!(out.state.global_step, 5, "stopped at the fifth evaluation");
    // 1.995 beat 2.0 (the best is any improvement) but not by the threshold: it became the best at step 4.
    assert_eq!(out.state.best_metric, Some(1.995));
    assert_eq!(out.state.best_global_step, Some(4));
    let best = dir.path().join("checkpoint-4");
    assert_eq!(out.state.best_model_checkpoint.as_deref(), Some(best.to_str().unwrap()));
    let evals: Vec<f64> = out.state.log_history.iter().filter_map(|e| e.get("eval_loss").copied()).collect();
    assert_eq!(evals, [3.0, 2.0, 2.5, 1.995, 2.0]);
    // save_total_limit 2 keeps the newest and the best.
    let kept: Vec<u64> = sft_train::list_checkpoints(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [4, 5]);

    // The returned model and the final adapter in output_dir are the best checkpoint's.
    let load = |d: &std::path::Path| {
        let base = LlamaForCausalLM::from_pretrained(&micro(), &Device::flex(), FloatDType::F32).unwrap().1;
        adapters(&sft_peft::load_adapter(base, d).unwrap().0)
    };
    let best_adapters = load(&best);
    assert_eq!(adapters(&out.model), best_adapters);
    assert_eq!(load(dir.path()), best_adapters);
    assert_ne!(load(&dir.path().join("checkpoint-5")), best_adapters, "the last step differs from the best");
    let state: BTreeMap<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("checkpoint-5").join(sft_train::TRAINER_STATE)).unwrap(),
    )
    .unwrap();
    assert_eq!(state["stateful_callbacks"]["EarlyStoppingCallback"]["early_stopping_patience_counter"], 3);
}

#[test]
fn a_misspelled_metric_for_best_model_stops_at_the_first_evaluation() {
    let config = lora();
    let (train, eval) = (examples(8, 8), examples(2, 9));
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        per_device_train_batch_size: 2,
        max_steps: 4,
        eval_strategy: IntervalStrategy::Steps,
        eval_steps: Some(2),
        metric_for_best_model: Some("eval_los".into()),
        ..args(dir.path())
    };
    let mut trainer = trainer(args, config.clone(), &train, Some(&eval[..]), 2);
    let message = trainer.train(model(&config)).unwrap_err().to_string();
    assert!(
        message.starts_with("training_args.metric_for_best_model: `eval_los` is not among the evaluation metrics (")
            && message.contains("eval_loss"),
        "{message}"
    );
}
