use std::path::PathBuf;

use sft::collate::{Collate, Collator};
use sft::config::RunConfig;
use sft::hub::{HubSettings, RepoKind};
use sft::tokenize::{Encoder, Masking, SpecialTokenOverrides};
use sft::{load_dataset, load_tokenizer};
use sft_testkit::FakeHub;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn offline(cache: &std::path::Path) -> HubSettings {
    HubSettings {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: cache.into(),
        offline: true,
        max_retries: 0,
        download_timeout: std::time::Duration::from_secs(10),
        username: None,
    }
}

#[test]
fn the_offline_default_tokenizes_and_collates() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = RunConfig::from_file(root().join("configs/legal_clauses.json")).unwrap();
    config.dataset_config.dataset_name = root().join("data/legal_clauses").display().to_string();
    let model = root().join(&config.model_name);
    let tokenizer =
        load_tokenizer(model.to_str().unwrap(), &offline(cache.path()), &config.special_token_overrides()).unwrap();
    assert_eq!((tokenizer.special().eos.id, tokenizer.special().pad.id), (1, 2), "pad is not EOS");
    let splits = load_dataset(&config.dataset_config, &offline(cache.path())).unwrap();
    let options = config.encode_options();
    assert_eq!(options.masking, Masking::CompletionOnly);
    let encoded = Encoder::new(&tokenizer, &options).encode_all(&splits.train).unwrap();
    assert_eq!(encoded.report.num_dropped(), 0, "max_length 512 fits every row");
    let batch = Collator { pad_id: tokenizer.special().pad.id, pad_to_multiple_of: Some(8) }
        .collate(&encoded.examples.iter().take(8).collect::<Vec<_>>());
    assert_eq!(batch.num_supervised, encoded.examples[..8].iter().map(|e| e.num_supervised()).sum::<usize>());
}

#[test]
fn the_seed_config_trains_on_everything() {
    let config = RunConfig::from_file(root().join("configs/llama-3.2-1b-legal-qlora.json")).unwrap();
    assert_eq!(config.encode_options().masking, Masking::FullSequence, "assistant_only_masking: false");
    assert_eq!(config.encode_options().max_length, 2048);
}

#[test]
fn a_tokenizer_from_a_hub_model_repo() {
    let tokenizer_json = std::fs::read(root().join("models/llama-tiny/tokenizer.json")).unwrap();
    let tokenizer_config = std::fs::read(root().join("models/llama-tiny/tokenizer_config.json")).unwrap();
    let hub = FakeHub::start().unwrap();
    hub.add_repo(
        RepoKind::Model,
        "acme/llama-tiny",
        &[("tokenizer.json", &tokenizer_json), ("tokenizer_config.json", &tokenizer_config), ("config.json", b"{}")],
    );
    hub.add_repo(RepoKind::Model, "acme/no-tokenizer", &[("config.json", b"{}")]);
    let cache = tempfile::tempdir().unwrap();
    let online = HubSettings { endpoint: hub.endpoint(), offline: false, ..offline(cache.path()) };
    let tokenizer = load_tokenizer("acme/llama-tiny", &online, &SpecialTokenOverrides::default()).unwrap();
    assert_eq!(tokenizer.vocab_size(), 4096);
    let err = load_tokenizer("acme/no-tokenizer", &online, &SpecialTokenOverrides::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("acme/no-tokenizer@main: model_name: no tokenizer.json in the repo; files found: "),
        "{err}"
    );
}

#[test]
fn a_model_from_a_hub_repo_and_from_a_directory() {
    use burn::prelude::Device;

    let micro = root().join("crates/sft-model/tests/fixtures/llama-micro");
    let config = std::fs::read(micro.join("config.json")).unwrap();
    let weights = std::fs::read(micro.join("model.safetensors")).unwrap();
    let hub = FakeHub::start().unwrap();
    hub.add_repo(RepoKind::Model, "acme/llama-micro", &[("config.json", &config), ("model.safetensors", &weights)]);
    hub.add_repo(RepoKind::Model, "acme/no-weights", &[("config.json", &config)]);
    let cache = tempfile::tempdir().unwrap();
    let online = HubSettings { endpoint: hub.endpoint(), offline: false, ..offline(cache.path()) };
    let device = Device::flex();
    let (c, model) =
        sft::load_model("acme/llama-micro", &online, &device, burn::tensor::FloatDType::F32, None).unwrap();
    assert_eq!((c.num_hidden_layers, model.num_layers()), (2, 2));
    let (_, local) =
        sft::load_model(micro.to_str().unwrap(), &online, &device, burn::tensor::FloatDType::F32, None).unwrap();
    assert_eq!(local.num_layers(), 2);
    let err = sft::load_model("acme/no-weights", &online, &device, burn::tensor::FloatDType::F32, None).unwrap_err();
    assert!(err.to_string().contains("no model.safetensors or model.safetensors.index.json"), "{err}");

    // QLoRA's base: every projection NF4 (double-quantized), embeddings and head dense.
    let q = sft::config::QuantizationConfig {
        load_in_4bit: true,
        load_in_8bit: false,
        bnb_4bit_quant_type: sft::config::QuantType::Nf4,
        bnb_4bit_use_double_quant: true,
        bnb_4bit_compute_dtype: sft::config::ComputeDtype::Float32,
    };
    let (_, quantized) =
        sft::load_model(micro.to_str().unwrap(), &online, &device, burn::tensor::FloatDType::F32, Some(&q)).unwrap();
    let projections = quantized.projections();
    assert_eq!(projections.len(), 14);
    assert!(projections.iter().all(|(_, p)| matches!(p, sft::peft::BaseLinear::Nf4(_))));
    assert!(quantized.lm_head.is_some());
    let fp4 = sft::config::QuantizationConfig { bnb_4bit_quant_type: sft::config::QuantType::Fp4, ..q };
    let err = sft::load_model(micro.to_str().unwrap(), &online, &device, burn::tensor::FloatDType::F32, Some(&fp4))
        .unwrap_err();
    assert!(err.to_string().contains("fp4 is not supported yet"), "{err}");
}
