//! The embedded default model is made on first use from its recipe, the same bytes on every machine.

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft::hub::HubSettings;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_embedded_model_is_made_from_its_recipe_deterministically() {
    let recipe = root().join("models/llama-tiny").join(sft::INIT_RECIPE);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        std::fs::copy(&recipe, dir.path().join(sft::INIT_RECIPE)).unwrap();
        assert!(sft::materialize_embedded(dir.path()).unwrap());
        assert!(!sft::materialize_embedded(dir.path()).unwrap(), "made once");
    }
    let bytes = |i: usize| std::fs::read(dirs[i].path().join("model.safetensors")).unwrap();
    assert_eq!(bytes(0), bytes(1));
    let hub = HubSettings {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: dirs[0].path().join("cache"),
        offline: true,
        max_retries: 0,
        download_timeout: std::time::Duration::from_secs(10),
        username: None,
    };
    let (config, model) =
        sft::load_model(dirs[0].path().to_str().unwrap(), &hub, &Device::flex(), FloatDType::F32, None).unwrap();
    assert_eq!((config.hidden_size, config.num_hidden_layers, config.vocab_size), (256, 4, 4096));
    assert_eq!(model.projections().len(), 28);

    // A recipe naming an unknown preset is an error naming the preset.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join(sft::INIT_RECIPE), r#"{"preset": "huge", "seed": 0}"#).unwrap();
    let err = sft::materialize_embedded(bad.path()).unwrap_err().to_string();
    assert!(err.contains("huge"), "{err}");
}

#[test]
fn lora_targets_the_model_lacks_fail_before_its_weights_are_downloaded() {
    use sft::hub::RepoKind;
    use sft_testkit::FakeHub;

    // The embedded tiny model (4 layers) served by a fake Hub.
    let made = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("models/llama-tiny").join(sft::INIT_RECIPE), made.path().join(sft::INIT_RECIPE)).unwrap();
    sft::materialize_embedded(made.path()).unwrap();
    let file = |name: &str| std::fs::read(made.path().join(name)).unwrap();
    let (config_json, weights) = (file("config.json"), file("model.safetensors"));
    let hub = FakeHub::start().unwrap();
    hub.add_repo(RepoKind::Model, "someone/tiny", &[("config.json", &config_json), ("model.safetensors", &weights)]);
    let cache = tempfile::tempdir().unwrap();
    let settings = HubSettings {
        endpoint: hub.endpoint(),
        token: None,
        cache_dir: cache.path().to_path_buf(),
        offline: false,
        max_retries: 0,
        download_timeout: std::time::Duration::from_secs(10),
        username: None,
    };
    let text = std::fs::read_to_string(root().join("configs/legal_clauses.json")).unwrap();
    for (edit, key, needle) in [
        (
            serde_json::json!({"layers_to_transform": [7]}),
            "lora_config.layers_to_transform",
            "layer 7 does not exist (the model has 4)",
        ),
        (
            serde_json::json!({"target_modules": ["model.layers.9.self_attn.q_proj"]}),
            "lora_config.target_modules",
            "target_modules entry `model.layers.9.self_attn.q_proj` matches no module",
        ),
        (serde_json::json!({"target_modules": ".*qkv.*"}), "lora_config.target_modules", "matches no module"),
    ] {
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["model_name"] = "someone/tiny".into();
        for (k, v) in edit.as_object().unwrap() {
            value["lora_config"][k] = v.clone();
        }
        let config = sft::config::RunConfig::from_json(&value.to_string(), std::path::Path::new("run.json")).unwrap();
        let message = match sft::pipeline::prepare_model(&config, &settings, &Device::flex()) {
            Ok(_) => panic!("{edit}: prepared"),
            Err(e) => e.to_string(),
        };
        assert!(message.starts_with(&format!("run.json: {key}: ")) && message.contains(needle), "{message}");
        assert!(message.contains("(model someone/tiny)"), "{message}");
        let weights_fetched = hub.requests().iter().any(|r| r.starts_with("GET ") && r.ends_with("model.safetensors"));
        assert!(!weights_fetched, "{edit}: the weights were downloaded: {:?}", hub.requests());
    }
}

#[test]
fn stop_ids_gather_every_declared_eos_and_a_merged_model_keeps_them() {
    // A model whose generation_config.json lists a second end id (as Llama 3 Instruct lists <|eot_id|>).
    let dir = tempfile::tempdir().unwrap();
    let micro = root().join("crates/sft-model/tests/fixtures/llama-micro");
    let tokenizer_dir = root().join("crates/sft-tokenize/tests/fixtures");
    std::fs::copy(micro.join("config.json"), dir.path().join("config.json")).unwrap();
    std::fs::copy(micro.join("model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(tokenizer_dir.join(f), dir.path().join(f)).unwrap();
    }
    let generation = r#"{"bos_token_id": 0, "eos_token_id": [7, 1], "temperature": 0.6, "do_sample": true}"#;
    std::fs::write(dir.path().join("generation_config.json"), generation).unwrap();
    let hub = HubSettings::resolve(|_| None, None).unwrap();
    let name = dir.path().to_str().unwrap();
    let (config, _) = sft::load_model(name, &hub, &Device::flex(), FloatDType::F32, None).unwrap();
    let tokenizer = sft::load_tokenizer(name, &hub, &Default::default()).unwrap();
    let repo = sft::hub::LocalRepo::new(dir.path());
    let listing = |repo| sft_repo::Listing::of(repo).unwrap();
    let (settings, stop) = sft::stop::generation_settings(&listing(&repo), &config, &tokenizer).unwrap();
    // generation_config's ids first, then config.json's (1) and the tokenizer's EOS (1), each once.
    assert_eq!(stop, [7, 1]);
    let written = sft::stop::generation_config_json(settings, &stop, &tokenizer);
    assert_eq!(written["eos_token_id"], serde_json::json!([7, 1]));
    assert_eq!(written["temperature"], 0.6, "the base's other settings are kept");
    assert_eq!(written["pad_token_id"], 2, "filled in from the tokenizer");

    // Without a generation_config.json: config.json's and the tokenizer's EOS, once.
    std::fs::remove_file(dir.path().join("generation_config.json")).unwrap();
    let (settings, stop) = sft::stop::generation_settings(&listing(&repo), &config, &tokenizer).unwrap();
    assert!(settings.is_empty());
    assert_eq!(stop, [1]);
    assert_eq!(sft::stop::generation_config_json(settings, &stop, &tokenizer)["eos_token_id"], 1);
}
