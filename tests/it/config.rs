use std::path::Path;

use sft::SftError;
use sft::config::{DeviceKind, IntervalStrategy, RunConfig, TargetModules};

fn parse(text: &str) -> Result<RunConfig, SftError> {
    RunConfig::from_json(text, Path::new("run.json"))
}

/// The error message of a config that must fail.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("config accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The seed config with one edit (`(pointer, value)` replaces a JSON-pointer location; `None` removes it).
fn seed_with(edits: &[(&str, Option<serde_json::Value>)]) -> String {
    let mut value: serde_json::Value = serde_json::from_str(SEED).unwrap();
    for (pointer, new) in edits {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let object = value.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        match new {
            Some(v) => object.insert(key.to_owned(), v.clone()),
            None => object.remove(key),
        };
    }
    value.to_string()
}

const SEED: &str = include_str!("../../configs/llama-3.2-1b-legal-qlora.json");

#[test]
fn the_seed_config_parses_unchanged() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference-config.json");
    if let Ok(original) = std::fs::read_to_string(&shared) {
        assert_eq!(original, SEED, "configs/llama-3.2-1b-legal-qlora.json is the seed's config byte for byte");
    }
    let c = parse(SEED).unwrap();
    assert_eq!(c.model_name, "meta-llama/Llama-3.2-1B-Instruct");
    assert!(!c.assistant_only_masking && c.use_qlora);
    assert_eq!(c.dataset_config.dataset_name, "NebulaSense/Legal_Clause_Instructions");
    assert_eq!(c.dataset_config.input_column.as_deref(), Some("Input"));
    assert_eq!(c.dataset_config.max_length, 2048);
    assert_eq!(c.lora_config.r, 8);
    assert_eq!(c.lora_config.lora_alpha, 32.0);
    assert_eq!(
        c.lora_config.target_modules,
        Some(TargetModules::List(vec!["q_proj".into(), "k_proj".into(), "v_proj".into(), "o_proj".into()]))
    );
    let args = &c.training_args;
    assert_eq!((args.per_device_train_batch_size, args.gradient_accumulation_steps), (4, 4));
    assert_eq!(args.learning_rate, 2e-4);
    assert_eq!((args.eval_strategy, args.eval_steps()), (IntervalStrategy::Steps, 50));
    assert_eq!(args.best_metric(), "eval_loss");
    assert!(!args.greater_is_better());
    let es = c.early_stopping.as_ref().unwrap();
    assert_eq!((es.early_stopping_patience, es.early_stopping_threshold), (3, 0.01));
    let q = c.quantization().unwrap();
    assert!(q.load_in_4bit && !q.bnb_4bit_use_double_quant);
    // Defaults for what the seed's code implies but its config omits.
    assert_eq!(c.dataset_config.seed, 42);
    assert_eq!((c.dataset_config.sample_size, c.dataset_config.validation_size), (None, None));
    assert_eq!(c.device, DeviceKind::Auto);
    assert_eq!(args.adam_epsilon, 1e-8, "PyTorch's AdamW default, not Burn's");
}

#[test]
fn every_config_in_configs_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            RunConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2, "configs/ holds the seed and the offline default");
}

#[test]
fn unknown_keys_are_errors_naming_the_key_path() {
    let text = seed_with(&[("/training_args/learning_rte", Some(2e-4.into()))]);
    let message = error(&text);
    assert!(message.starts_with("run.json: training_args.learning_rte: unknown field `learning_rte`"), "{message}");

    let message = error(&seed_with(&[("/lora_config/rank", Some(8.into()))]));
    assert!(message.starts_with("run.json: lora_config.rank: unknown field `rank`"), "{message}");

    let message = error(&seed_with(&[("/dataset_config/split", Some("train".into()))]));
    assert!(message.starts_with("run.json: dataset_config.split: unknown field `split`"), "{message}");

    let message = error(&seed_with(&[("/use_4bit", Some(true.into()))]));
    assert!(message.starts_with("run.json: use_4bit: unknown field `use_4bit`"), "{message}");
}

#[test]
fn wrong_types_name_the_key_path() {
    let message = error(&seed_with(&[("/training_args/learning_rate", Some("fast".into()))]));
    assert!(message.starts_with("run.json: training_args.learning_rate: invalid type: string \"fast\""), "{message}");
    let message = error(&seed_with(&[("/lora_config/r", Some((-8).into()))]));
    assert!(message.starts_with("run.json: lora_config.r: invalid value: integer `-8`"), "{message}");
    let message = error(&seed_with(&[("/training_args/eval_strategy", Some("sometimes".into()))]));
    assert!(message.starts_with("run.json: training_args.eval_strategy: unknown variant `sometimes`"), "{message}");
    // Read from the file's own text, the message names the key's line too.
    let line = SEED.lines().position(|l| l.contains("\"learning_rate\"")).unwrap() + 1;
    let message = error(&SEED.replacen("\"learning_rate\": 2e-4", "\"learning_rate\": \"fast\"", 1));
    assert!(message.starts_with("run.json: training_args.learning_rate: invalid type: string \"fast\""), "{message}");
    assert!(message.ends_with(&format!(" at line {line}")), "{message}");
    let line = SEED.lines().position(|l| l.contains("\"lora_alpha\"")).unwrap() + 1;
    let message = error(&SEED.replacen("\"lora_alpha\"", "\"lora_alfa\"", 1));
    assert!(message.contains(&format!(" at line {line}; did you mean `lora_alpha`?")), "{message}");
    let message = error("{\"model_name\": \"m\"}");
    assert!(message.starts_with("run.json: (top level): missing field `dataset_config`"), "{message}");
    let message = error("{\"model_name\": ");
    assert!(message.starts_with("run.json: "), "{message}");
}

#[test]
fn out_of_range_values_are_errors() {
    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("/training_args/learning_rate", (-2e-4).into(), "training_args.learning_rate: expected a number > 0"),
        ("/training_args/learning_rate", 0.into(), "training_args.learning_rate: expected a number > 0"),
        (
            "/training_args/per_device_train_batch_size",
            0.into(),
            "training_args.per_device_train_batch_size: expected a whole number >= 1",
        ),
        (
            "/training_args/max_grad_norm",
            (-1.0).into(),
            "training_args.max_grad_norm: expected a number >= 0 (0 disables clipping)",
        ),
        ("/training_args/num_train_epochs", 0.into(), "training_args.num_train_epochs: expected a number > 0"),
        (
            "/training_args/save_steps",
            75.into(),
            "training_args.save_steps: must be a multiple of eval_steps when load_best_model_at_end is true",
        ),
        ("/lora_config/lora_dropout", 1.0.into(), "lora_config.lora_dropout: expected a number in [0, 1)"),
        ("/lora_config/r", 0.into(), "lora_config.r: expected a whole number >= 1"),
        (
            "/early_stopping/early_stopping_threshold",
            (-0.1).into(),
            "early_stopping.early_stopping_threshold: expected a number >= 0",
        ),
        ("/dataset_config/max_length", 0.into(), "dataset_config.max_length: expected a whole number > 0"),
        (
            "/quantization_config/load_in_8bit",
            true.into(),
            "quantization_config.load_in_8bit: cannot be combined with load_in_4bit",
        ),
        ("/use_qlora", false.into(), "quantization_config.load_in_4bit: is true but use_qlora is false"),
        (
            "/training_args/pad_to_multiple_of",
            0.into(),
            "training_args.pad_to_multiple_of: expected a whole number >= 1",
        ),
        ("/training_args/pad_token", "".into(), "training_args.pad_token: expected a token's text"),
        (
            "/dataset_config/response_template",
            "### Output\n".into(),
            "dataset_config.response_template: masks the prompt, but assistant_only_masking is false",
        ),
    ];
    for (pointer, value, expected) in cases {
        let message = error(&seed_with(&[(pointer, Some(value.clone()))]));
        assert!(message.starts_with(&format!("run.json: {expected}")), "{pointer}: {message}");
    }
    let both = [("/training_args/bf16", Some(true.into())), ("/training_args/fp16", Some(true.into()))];
    let message = error(&seed_with(&both));
    assert!(message.starts_with("run.json: training_args.fp16: cannot be combined with bf16"), "{message}");
}

#[test]
fn held_out_sizes_must_leave_training_data() {
    let text = seed_with(&[
        ("/dataset_config/validation_size", Some(0.6.into())),
        ("/dataset_config/test_size", Some(0.4.into())),
    ]);
    let message = error(&text);
    assert_eq!(
        message,
        "run.json: dataset_config.validation_size + dataset_config.test_size: 0.6 + 0.4 leaves nothing to train on; expected a sum < 1"
    );
    let message = error(&seed_with(&[("/dataset_config/test_size", Some(1.5.into()))]));
    assert!(message.starts_with("run.json: dataset_config.test_size: expected a fraction strictly between 0 and 1"));
}

#[test]
fn cross_section_rules() {
    let message = error(&seed_with(&[("/training_args/load_best_model_at_end", Some(false.into()))]));
    assert!(
        message.contains(
            "early_stopping.early_stopping_patience: early stopping needs training_args.load_best_model_at_end"
        )
    );
    let message = error(&seed_with(&[
        ("/training_args/eval_strategy", Some("no".into())),
        ("/training_args/load_best_model_at_end", Some(false.into())),
    ]));
    assert!(message.contains("early stopping needs training_args.eval_strategy"), "{message}");
    // `evaluation_strategy`, transformers' older name, is accepted.
    let text = seed_with(&[
        ("/training_args/eval_strategy", None),
        ("/training_args/evaluation_strategy", Some("steps".into())),
    ]);
    assert_eq!(parse(&text).unwrap().training_args.eval_strategy, IntervalStrategy::Steps);
}

#[test]
fn config_files_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, seed_with(&[("/training_args/learning_rate", Some((-1.0).into()))])).unwrap();
    let message = RunConfig::from_file(&path).unwrap_err().to_string();
    assert_eq!(message, format!("{}: training_args.learning_rate: expected a number > 0", path.display()));
    let message = RunConfig::from_file(dir.path().join("missing.json")).unwrap_err().to_string();
    assert!(message.starts_with(&dir.path().join("missing.json").display().to_string()), "{message}");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("windows.json");
    std::fs::write(&path, format!("\u{feff}{SEED}")).unwrap();
    let config = RunConfig::from_file(&path).unwrap();
    assert_eq!(config.training_args, parse(SEED).unwrap().training_args);
    assert_eq!(RunConfig::from_file_with_overrides(&path, &[]).unwrap().lora_config, config.lora_config);
}

#[test]
fn keys_given_twice_are_refused_with_both_lines() {
    // The seed config's `lora_config` opens on some line; `r` is given on the next two.
    let (head, tail) = SEED.split_once("\"lora_config\": {").unwrap();
    let text = format!("{head}\"lora_config\": {{\n    \"r\": 4,\n    \"r\": 16,{tail}");
    let line = head.lines().count() + 1;
    let message = error(&text);
    assert_eq!(message, format!("run.json: lora_config.r: given twice (lines {line} and {}); keep one", line + 1));
    // With `--set` overrides the file is checked before they apply (an override replacing a key is no duplicate).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.json");
    std::fs::write(&path, &text).unwrap();
    let message = RunConfig::from_file_with_overrides(&path, &["lora_config.r=8".into()]).unwrap_err().to_string();
    assert!(message.ends_with(&format!("lora_config.r: given twice (lines {line} and {}); keep one", line + 1)));
    let once = dir.path().join("once.json");
    std::fs::write(&once, SEED).unwrap();
    assert_eq!(RunConfig::from_file_with_overrides(&once, &["lora_config.r=8".into()]).unwrap().lora_config.r, 8);
}

#[test]
fn misspelled_keys_and_values_get_a_suggestion() {
    let message = error(&seed_with(&[("/training_args/learning_rte", Some(2e-4.into()))]));
    assert!(message.ends_with("did you mean `learning_rate`?"), "{message}");
    let message = error(&seed_with(&[("/training_args/eval_strategy", Some("step".into()))]));
    assert!(message.contains("unknown variant `step`") && message.ends_with("did you mean `steps`?"), "{message}");
    let message = error(&seed_with(&[("/lora_config/lora_alfa", Some(16.into()))]));
    assert!(message.ends_with("did you mean `lora_alpha`?"), "{message}");
    // A TRL key that another stage reads is suggested too.
    let message = error(&seed_with(&[("/training_args/packng", Some(true.into()))]));
    assert!(message.starts_with("run.json: training_args.packng: unknown field `packng`"), "{message}");
    assert!(message.ends_with("did you mean `packing`?"), "{message}");
    // Nothing close: no suggestion.
    let message = error(&seed_with(&[("/training_args/zzz", Some(1.into()))]));
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn metric_for_best_model_must_be_an_evaluation_metric() {
    for ok in ["eval_loss", "loss", "mean_token_accuracy", "eval_mean_token_accuracy", "eval_runtime"] {
        let text = seed_with(&[("/training_args/metric_for_best_model", Some(ok.into()))]);
        assert!(parse(&text).is_ok(), "{ok}");
    }
    let message = error(&seed_with(&[("/training_args/metric_for_best_model", Some("eval_los".into()))]));
    assert!(message.starts_with("run.json: training_args.metric_for_best_model: `eval_los` is not a metric"));
    assert!(message.ends_with("did you mean `eval_loss`?"), "{message}");
    let message = error(&seed_with(&[("/training_args/metric_for_best_model", Some("accuracy".into()))]));
    assert!(message.contains("eval_loss, eval_mean_token_accuracy, eval_tokens, eval_runtime"), "{message}");
}

#[test]
fn target_modules_a_llama_model_cannot_have_are_refused_at_load() {
    for ok in ["q_proj", "self_attn.o_proj", "model.layers.0.mlp.down_proj"] {
        let text = seed_with(&[("/lora_config/target_modules", Some(serde_json::json!([ok])))]);
        assert!(parse(&text).is_ok(), "{ok}");
    }
    let message = error(&seed_with(&[("/lora_config/target_modules", Some(serde_json::json!(["q_proj", "v_prj"])))]));
    assert!(message.starts_with("run.json: lora_config.target_modules: `v_prj` matches no projection"), "{message}");
    assert!(message.ends_with("did you mean `v_proj`?"), "{message}");
    let message = error(&seed_with(&[("/lora_config/target_modules", Some(serde_json::json!(["lm_head"])))]));
    assert!(message.contains("`lm_head` is not a projection") && message.contains("modules_to_save"), "{message}");
    // A regex is only matched once the model's names are known.
    let text = seed_with(&[("/lora_config/target_modules", Some(".*q_prj".into()))]);
    assert!(parse(&text).is_ok());
}

#[test]
fn modules_to_save_are_checked_at_load() {
    let text =
        seed_with(&[("/lora_config/modules_to_save", Some(serde_json::json!(["lm_head", "model.embed_tokens"])))]);
    assert!(parse(&text).is_ok());
    let message = error(&seed_with(&[("/lora_config/modules_to_save", Some(serde_json::json!(["score"])))]));
    assert!(
        message.starts_with(
            "run.json: lora_config.modules_to_save: `score` is not a module of the model that can be saved (lm_head, \
             embed_tokens)"
        ),
        "{message}"
    );
}

#[test]
fn trls_training_args_reach_the_stages_that_read_them_and_are_written_back_in_the_same_shape() {
    let edits = [
        ("/training_args/packing", Some(true.into())),
        ("/training_args/pad_to_multiple_of", Some(8.into())),
        ("/training_args/truncation_mode", Some("keep_end".into())),
        ("/training_args/eos_token", Some("<|eot_id|>".into())),
        ("/training_args/hub_model_id", Some("acme/legal".into())),
    ];
    let text = seed_with(&edits);
    let config = parse(&text).unwrap();
    assert!(config.collate.packing);
    assert_eq!(config.collate.pad_to_multiple_of, Some(8));
    assert_eq!(config.tokenize.truncation_mode, sft::config::TruncationMode::KeepEnd);
    assert_eq!(config.special_token_overrides().eos_token.as_deref(), Some("<|eot_id|>"));
    assert_eq!(config.hub.hub_model_id.as_deref(), Some("acme/legal"));
    // Written back (run_config.json, the model card) in the file's shape: one flat `training_args`.
    let written = config.to_json();
    let args = written["training_args"].as_object().unwrap();
    assert_eq!(args["packing"], true);
    assert_eq!(args["truncation_mode"], "keep_end");
    assert_eq!(args["hub_model_id"], "acme/legal");
    assert_eq!(args["learning_rate"], config.training_args.learning_rate);
    assert!(written.as_object().unwrap().keys().all(|k| !k.contains('/')), "{written}");
    let again = parse(&written.to_string()).unwrap();
    assert_eq!(RunConfig { origin: None, ..again }, RunConfig { origin: None, ..config });
    // The internal sections are not keys of the file.
    let mut sneaky: serde_json::Value = serde_json::from_str(SEED).unwrap();
    sneaky.as_object_mut().unwrap().insert("training_args/collate".into(), serde_json::json!({"packing": true}));
    let message = error(&sneaky.to_string());
    assert!(message.starts_with("run.json: (top level): unknown field `training_args/collate`"), "{message}");
}
