//! The trainer on the fixture data set: the embedded legal-clause rows, tokenized with the bundled tokenizer,
//! train the llama-micro fixture (same 4096 vocabulary) with the embedded config's LoRA settings; the evaluation
//! loss falls.

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft::collate::{BatchSource, Collator, Rows, Sampling};
use sft::config::RunConfig;
use sft::hub::HubSettings;
use sft::model_stage::LlamaForCausalLM;
use sft::tokenize::Encoder;
use sft::train::{IntervalStrategy, StopReason, Trainer, TrainingArguments};
use sft::{load_dataset, load_tokenizer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn loss_falls_on_the_fixture_data_with_the_micro_model() {
    let cache = tempfile::tempdir().unwrap();
    let hub = HubSettings {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: cache.path().into(),
        offline: true,
        max_retries: 0,
        download_timeout: std::time::Duration::from_secs(10),
        username: None,
    };
    let mut config = RunConfig::from_file(root().join("configs/legal_clauses.json")).unwrap();
    config.dataset_config.dataset_name = root().join("data/legal_clauses").display().to_string();
    let tokenizer =
        load_tokenizer(root().join(&config.model_name).to_str().unwrap(), &hub, &config.special_token_overrides())
            .unwrap();
    let splits = load_dataset(&config.dataset_config, &hub).unwrap();
    let options = config.encode_options();
    let encoder = Encoder::new(&tokenizer, &options);
    let train = encoder.encode_all(&splits.train[..64]).unwrap().examples;
    let eval = encoder.encode_all(&splits.validation[..16]).unwrap().examples;
    let collator = Collator { pad_id: tokenizer.special().pad.id, pad_to_multiple_of: Some(8) };

    let device = Device::flex().autodiff();
    let micro = root().join("crates/sft-model/tests/fixtures/llama-micro");
    let base = LlamaForCausalLM::from_pretrained(&micro, &device, FloatDType::F32).unwrap().1;
    let model = sft::peft::inject(base, &config.lora_config, 42).unwrap();
    let output = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        output_dir: output.path().display().to_string(),
        per_device_train_batch_size: 4,
        max_steps: 24,
        eval_steps: Some(8),
        save_steps: 8,
        eval_strategy: IntervalStrategy::Steps,
        ..config.training_args.clone()
    };
    let mut trainer = Trainer::new(
        args,
        config.lora_config.clone(),
        "llama-micro",
        BatchSource::new(&train, collator, 4, Sampling::Shuffle { seed: 42 }, Rows::OnePerExample).unwrap(),
        Some(BatchSource::new(&eval, collator, 8, Sampling::Sequential, Rows::OnePerExample).unwrap()),
    )
    .unwrap();
    let before = trainer.evaluate(&model).unwrap()["eval_loss"];
    let out = trainer.train(model).unwrap();
    assert_eq!(out.stop, StopReason::Completed);
    let evals: Vec<f64> = out.state.log_history.iter().filter_map(|e| e.get("eval_loss").copied()).collect();
    let losses: Vec<f64> = out.state.log_history.iter().filter_map(|e| e.get("loss").copied()).collect();
    eprintln!("eval_loss before {before:.4}, during {evals:?}; train losses {losses:?}");
    assert_eq!(evals.len(), 3);
    assert!(evals[2] < before - 0.5, "eval loss {before} → {evals:?}");
    assert!(losses.last().unwrap() < losses.first().unwrap());
    // The adapter, the state and the metrics file are in output_dir.
    for file in ["adapter_config.json", "adapter_model.safetensors", "trainer_state.json", "metrics.jsonl"] {
        assert!(output.path().join(file).is_file(), "{file}");
    }
}
