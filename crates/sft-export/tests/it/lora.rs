//! llama-micro's PEFT adapter (r 4, alpha 8, all seven projections) as a llama.cpp GGUF LoRA, read back.

use sft_export::export_lora_gguf;
use sft_gguf::{GgmlType, GgufFile, Value};
use sft_testkit::{Tensors, model_fixture};

fn adapter_copy(edit: impl Fn(&mut serde_json::Value)) -> tempfile::TempDir {
    let from = model_fixture("llama-micro").join("peft_adapter");
    let dir = tempfile::tempdir().unwrap();
    for file in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(from.join(file), dir.path().join(file)).unwrap();
    }
    let path = dir.path().join("adapter_config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    dir
}

#[test]
fn a_peft_adapter_becomes_a_gguf_lora() {
    let base = sft_model::LlamaConfig::from_file(&model_fixture("llama-micro").join("config.json")).unwrap();
    let adapter = model_fixture("llama-micro").join("peft_adapter");
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("adapter.gguf");
    export_lora_gguf(&base, &adapter, GgmlType::F32, &path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.get("general.type").and_then(Value::as_str), Some("adapter"));
    assert_eq!(file.get("adapter.type").and_then(Value::as_str), Some("lora"));
    assert_eq!(file.get("general.architecture").and_then(Value::as_str), Some("llama"));
    assert_eq!(file.get("adapter.lora.alpha"), Some(&Value::F32(8.0)));
    assert_eq!(file.tensors.len(), 2 * 7 * 2);
    let peft = Tensors::open(&adapter.join("adapter_model.safetensors"));
    let key = |module: &str, f: &str| format!("base_model.model.model.layers.0.{module}.lora_{f}.weight");
    // lora_A as PEFT stores it, [r, in].
    let (a, shape) = peft.f32(&key("self_attn.q_proj", "A"));
    assert_eq!(file.info("blk.0.attn_q.weight.lora_a").unwrap().shape, shape);
    assert_eq!(file.tensor_f32("blk.0.attn_q.weight.lora_a").unwrap(), a);
    // lora_B of q: the base rows' interleave (4 heads of 16: new row 2j + s ← old row 8s + j), so B'A permutes
    // like W; v's lora_B as stored.
    let (b, shape) = peft.f32(&key("self_attn.q_proj", "B"));
    let ours = file.tensor_f32("blk.0.attn_q.weight.lora_b").unwrap();
    let r = shape[1];
    let row = |v: &[f32], i: usize| v[i * r..(i + 1) * r].to_vec();
    for (new, old) in [(0, 0), (1, 8), (2, 1), (15, 15), (16 + 3, 16 + 9)] {
        assert_eq!(row(&ours, new), row(&b, old), "row {new}");
    }
    assert_eq!(file.tensor_f32("blk.0.attn_v.weight.lora_b").unwrap(), peft.f32(&key("self_attn.v_proj", "B")).0);
    assert!(file.info("blk.0.ffn_down.weight.lora_b").is_some());
}

#[test]
fn rslora_is_folded_into_alpha_and_modules_to_save_are_refused() {
    let base = sft_model::LlamaConfig::from_file(&model_fixture("llama-micro").join("config.json")).unwrap();
    let out = tempfile::tempdir().unwrap();
    // rsLoRA scales by alpha / √r = 8 / 2; llama.cpp by alpha' / r, so alpha' = 8 · 2.
    let rslora = adapter_copy(|c| c["use_rslora"] = true.into());
    let path = out.path().join("rs.gguf");
    export_lora_gguf(&base, rslora.path(), GgmlType::F16, &path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.get("adapter.lora.alpha"), Some(&Value::F32(16.0)));
    assert_eq!(file.info("blk.1.attn_k.weight.lora_a").unwrap().ty, GgmlType::F16);

    let saved = adapter_copy(|c| c["modules_to_save"] = serde_json::json!(["lm_head"]));
    let err = export_lora_gguf(&base, saved.path(), GgmlType::F16, &out.path().join("s.gguf")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("modules_to_save [\"lm_head\"]") && text.contains("merge the adapter"), "{text}");
    assert!(!out.path().join("s.gguf").exists());
}
