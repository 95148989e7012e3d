//! The shard-at-a-time merge writes the same bytes as the in-memory `merge_and_unload` + `save_pretrained`, also
//! for a tied base with a trained head, and splits into shards with an index that loads back.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{Checkpoint, LlamaForCausalLM};
use sft_peft::{LoraConfig, TargetModules, inject, load_adapter, merge_and_unload, merge_checkpoint, save_adapter};
use sft_testkit::model_fixture;

/// In memory: base + adapter, merged and saved (today's `sft merge`).
fn merged_in_memory(base: &std::path::Path, adapter: &std::path::Path, out: &std::path::Path) {
    let (config, model) = LlamaForCausalLM::from_pretrained(base, &Device::flex(), FloatDType::F32).unwrap();
    let (model, _) = load_adapter(model, adapter).unwrap();
    merge_and_unload(model).save_pretrained(&config, out, FloatDType::F32).unwrap();
}

fn streamed(base: &std::path::Path, adapter: &std::path::Path, out: &std::path::Path, shard: usize) -> Vec<String> {
    let config = sft_model::LlamaConfig::from_file(&base.join("config.json")).unwrap();
    let mut checkpoint = Checkpoint::open_dir(base).unwrap();
    merge_checkpoint(&config, &mut checkpoint, adapter, out, shard).unwrap()
}

#[test]
fn the_streamed_merge_equals_the_in_memory_merge_bit_for_bit() {
    let base = model_fixture("llama-micro");
    let adapter = base.join("peft_adapter");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    merged_in_memory(&base, &adapter, a.path());
    let files = streamed(&base, &adapter, b.path(), sft_peft::MAX_SHARD_BYTES);
    assert_eq!(files, ["model.safetensors", "config.json"]);
    for file in files {
        assert_eq!(
            std::fs::read(a.path().join(&file)).unwrap(),
            std::fs::read(b.path().join(&file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn a_tied_base_with_a_trained_head_and_shards() {
    // qwen2-micro is tied; an adapter with modules_to_save lm_head makes the merged model untied.
    let base = model_fixture("qwen2-micro");
    let (_, model) = LlamaForCausalLM::from_pretrained(&base, &Device::flex(), FloatDType::F32).unwrap();
    let lora = LoraConfig {
        target_modules: Some(TargetModules::List(vec!["q_proj".into(), "down_proj".into()])),
        modules_to_save: Some(vec!["lm_head".into()]),
        init_lora_weights: sft_peft::InitLoraWeights::Bool(false),
        ..Default::default()
    };
    let adapter = tempfile::tempdir().unwrap();
    save_adapter(&inject(model, &lora, 3).unwrap(), &lora, "qwen2-micro", adapter.path()).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    merged_in_memory(&base, adapter.path(), a.path());
    streamed(&base, adapter.path(), b.path(), sft_peft::MAX_SHARD_BYTES);
    for file in ["model.safetensors", "config.json"] {
        assert_eq!(std::fs::read(a.path().join(file)).unwrap(), std::fs::read(b.path().join(file)).unwrap(), "{file}");
    }
    // Shards of at most 300 kB (the embeddings alone are 1 MB: one shard each), with an index, load back to the
    // same tensors.
    let c = tempfile::tempdir().unwrap();
    let files = streamed(&base, adapter.path(), c.path(), 300_000);
    assert!(files.contains(&"model.safetensors.index.json".to_owned()) && files.len() > 3, "{files:?}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.path().join("model.safetensors.index.json")).unwrap()).unwrap();
    assert_eq!(index["weight_map"]["lm_head.weight"].as_str().map(|f| f.starts_with("model-0")), Some(true));
    let load = |dir: &std::path::Path| {
        let (config, model) = LlamaForCausalLM::from_pretrained(dir, &Device::flex(), FloatDType::F32).unwrap();
        model
            .hf_tensors(&config, FloatDType::F32)
            .into_iter()
            .map(|e| (e.name, (e.data)().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(load(c.path()), load(a.path()));
}

#[test]
fn an_adapter_for_another_base_is_refused_before_anything_is_written() {
    // llama-micro's adapter (4 heads of 16) against qwen3-micro (4 heads of 32): its q_proj lora_B has 64 rows
    // where qwen3's q_proj has 128.
    let base = model_fixture("qwen3-micro");
    let adapter = model_fixture("llama-micro").join("peft_adapter");
    let config = sft_model::LlamaConfig::from_file(&base.join("config.json")).unwrap();
    let mut checkpoint = Checkpoint::open_dir(&base).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = merge_checkpoint(&config, &mut checkpoint, &adapter, &out.path().join("merged"), 1 << 30).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("adapter_model.safetensors") && err.contains("an adapter for another base model?"), "{err}");
    assert!(err.contains("q_proj.lora_B.weight` has shape [64, 4] where the base's"), "{err}");
    assert!(err.contains("(r = 4) needs [128, 4]"), "{err}");
    assert!(!out.path().join("merged").exists(), "nothing written");
}
