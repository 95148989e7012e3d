//! `check_adapter` flags each rule on constructed adapters of llama-micro and passes a clean one.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_export::check::{Target, check_adapter};
use sft_model::LlamaForCausalLM;
use sft_peft::{LoraConfig, TargetModules, inject, save_adapter};
use sft_testkit::model_fixture;

fn adapter(r: usize, modules_to_save: Option<Vec<String>>) -> tempfile::TempDir {
    let (_, base) =
        LlamaForCausalLM::from_pretrained(&model_fixture("llama-micro"), &Device::flex(), FloatDType::F32).unwrap();
    let config = LoraConfig {
        r,
        lora_alpha: 16.0,
        target_modules: Some(TargetModules::List(vec!["q_proj".into(), "v_proj".into()])),
        modules_to_save,
        ..Default::default()
    };
    let model = inject(base, &config, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&model, &config, "llama-micro", dir.path()).unwrap();
    dir
}

fn rules(dir: &std::path::Path, target: Target) -> Vec<&'static str> {
    check_adapter(dir, target, "LlamaForCausalLM").unwrap().into_iter().map(|f| f.rule).collect()
}

#[test]
fn each_rule_is_flagged_and_a_clean_adapter_passes() {
    let clean = adapter(8, None);
    for target in [Target::Vllm, Target::LlamaCpp, Target::Ollama] {
        assert!(rules(clean.path(), target).is_empty(), "{target:?}");
    }
    // r 64: served by vLLM only with --max-lora-rank 64; r 12: not a vLLM rank at all.
    let findings = check_adapter(adapter(64, None).path(), Target::Vllm, "LlamaForCausalLM").unwrap();
    assert_eq!(findings.len(), 1);
    assert!(findings[0].message.contains("start vLLM with --max-lora-rank 64"), "{}", findings[0].message);
    assert_eq!(rules(adapter(12, None).path(), Target::Vllm), ["rank"]);
    // modules_to_save: vLLM, llama.cpp and Ollama all refuse the trained head.
    let saved = adapter(8, Some(vec!["lm_head".into()]));
    assert_eq!(rules(saved.path(), Target::Vllm), ["modules_to_save"]);
    assert_eq!(rules(saved.path(), Target::LlamaCpp), ["modules_to_save"]);
    assert_eq!(rules(saved.path(), Target::Ollama), ["modules_to_save"]);
    // DoRA, written into the config as PEFT would.
    let path = clean.path().join("adapter_config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["use_dora"] = true.into();
    std::fs::write(&path, config.to_string()).unwrap();
    assert_eq!(rules(clean.path(), Target::Vllm), ["use_dora"]);
    // Ollama imports safetensors adapters for a few architectures only.
    let findings = check_adapter(adapter(8, None).path(), Target::Ollama, "Qwen3ForCausalLM").unwrap();
    assert_eq!(findings.len(), 1);
    assert!(findings[0].message.contains("export GGUF"), "{}", findings[0].message);
}
