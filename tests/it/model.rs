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
