//! GGUF export of the micro models, read back with sft-gguf's reader: llama.cpp's tensor names, the q/k row
//! order of its Llama RoPE, Gemma's `1 + w` norms, the metadata, the tokenizer, and the tensor types.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod check;
mod lora;
mod ollama;
mod vocab;

use std::collections::BTreeSet;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_export::{FileType, GgufExport, export_gguf};
use sft_gguf::{GgmlType, GgufFile, Value};
use sft_model::LlamaForCausalLM;
use sft_testkit::{Tensors, model_fixture};

/// Fixture `folder`: its directory, config and model, and a fresh output directory.
fn load(folder: &str) -> (std::path::PathBuf, sft_model::LlamaConfig, LlamaForCausalLM, tempfile::TempDir) {
    let dir = model_fixture(folder);
    let (config, model) = LlamaForCausalLM::from_pretrained(&dir, &Device::flex(), FloatDType::F32).unwrap();
    (dir, config, model, tempfile::tempdir().unwrap())
}

/// Fixture `folder`'s chat template (`tokenizer_config.json`'s `chat_template`).
fn template(folder: &str) -> String {
    let path = model_fixture(folder).join("tokenizer_config.json");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    config["chat_template"].as_str().unwrap().to_owned()
}

fn export(folder: &str, ty: FileType) -> (tempfile::TempDir, std::path::PathBuf) {
    export_named(folder, folder, ty).unwrap()
}

/// Fixture `folder` exported as `name` (`general.name`).
fn export_named(folder: &str, name: &str, ty: FileType) -> sft_export::Result<(tempfile::TempDir, std::path::PathBuf)> {
    let (dir, config, model, out) = load(folder);
    let path = out.path().join("model.gguf");
    let tokenizer_json = dir.join("tokenizer.json");
    let tokenizer_config = dir.join("tokenizer_config.json");
    let chat_template = template(folder);
    let export = GgufExport {
        ty,
        name: name.into(),
        tokenizer_json: &tokenizer_json,
        tokenizer_config: Some(&tokenizer_config),
        chat_template: Some(&chat_template),
    };
    export_gguf(&model, &config, &export, &path)?;
    Ok((out, path))
}

fn u64_of(file: &GgufFile, key: &str) -> u64 {
    file.get(key).and_then(Value::as_u64).unwrap_or_else(|| panic!("{key}"))
}

#[test]
fn a_llama_architecture_model_is_written_as_llama_cpp_names_and_orders_it() {
    // mistral-micro runs as llama.cpp's `llama`: 8 heads / 2 kv heads of 8, hidden 64, 2 layers.
    let (_dir, path) = export("mistral-micro", FileType::F32);
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.get("general.architecture").and_then(Value::as_str), Some("llama"));
    for (key, value) in [
        ("llama.block_count", 2),
        ("llama.embedding_length", 64),
        ("llama.feed_forward_length", 128),
        ("llama.attention.head_count", 8),
        ("llama.attention.head_count_kv", 2),
        ("llama.rope.dimension_count", 8),
        ("llama.context_length", 2048),
        ("general.file_type", 0),
    ] {
        assert_eq!(u64_of(&file, key), value, "{key}");
    }
    assert_eq!(file.get("llama.attention.layer_norm_rms_epsilon"), Some(&Value::F32(1e-5)));
    assert_eq!(file.get("llama.rope.freq_base"), Some(&Value::F32(10000.0)));
    let names: BTreeSet<String> = file.tensors.iter().map(|(t, _)| t.name.clone()).collect();
    let mut expected: BTreeSet<String> =
        ["token_embd.weight", "output_norm.weight", "output.weight"].map(String::from).into();
    for l in 0..2 {
        for t in
            ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        {
            expected.insert(format!("blk.{l}.{t}.weight"));
        }
    }
    assert_eq!(names, expected);

    // Values: the embeddings as they are; q rows of each head of 8 reordered from [0..4 | 4..8] to interleaved
    // pairs (llama.cpp's `permute`): new row 2j + s = old row 4s + j.
    let weights = Tensors::open(&model_fixture("mistral-micro").join("model.safetensors"));
    assert_eq!(file.tensor_f32("token_embd.weight").unwrap(), weights.f32("model.embed_tokens.weight").0);
    let (q, shape) = weights.f32("model.layers.0.self_attn.q_proj.weight");
    assert_eq!(file.info("blk.0.attn_q.weight").unwrap().shape, shape);
    let ours = file.tensor_f32("blk.0.attn_q.weight").unwrap();
    let cols = shape[1];
    let row = |v: &[f32], r: usize| v[r * cols..(r + 1) * cols].to_vec();
    for head in 0..8 {
        for (new, old) in [(0, 0), (1, 4), (2, 1), (3, 5), (6, 3), (7, 7)] {
            assert_eq!(row(&ours, head * 8 + new), row(&q, head * 8 + old), "head {head} row {new}");
        }
    }
    // k with its 2 kv heads the same way; v untouched.
    let (k, _) = weights.f32("model.layers.1.self_attn.k_proj.weight");
    assert_eq!(row(&file.tensor_f32("blk.1.attn_k.weight").unwrap(), 8 + 1), row(&k, 8 + 4));
    assert_eq!(
        file.tensor_f32("blk.1.attn_v.weight").unwrap(),
        weights.f32("model.layers.1.self_attn.v_proj.weight").0
    );

    // The tokenizer: a token for every embedding row, special tokens as control tokens, the merges, the ids.
    let Some(Value::Array { items: tokens, .. }) = file.get("tokenizer.ggml.tokens") else { panic!("tokens") };
    assert_eq!(tokens.len(), 4096);
    assert_eq!(tokens[0], Value::string("<|begin_of_text|>"));
    let Some(Value::Array { items: types, .. }) = file.get("tokenizer.ggml.token_type") else { panic!("types") };
    assert_eq!((types[0].clone(), types[300].clone()), (Value::I32(3), Value::I32(1)));
    let Some(Value::Array { items: merges, .. }) = file.get("tokenizer.ggml.merges") else { panic!("merges") };
    assert_eq!(merges[0], Value::string("Ġ t"));
    assert_eq!(
        ["bos_token_id", "eos_token_id", "padding_token_id"].map(|k| u64_of(&file, &format!("tokenizer.ggml.{k}"))),
        [0, 1, 2]
    );
    assert_eq!(file.get("tokenizer.ggml.model").and_then(Value::as_str), Some("gpt2"));
    assert_eq!(file.get("tokenizer.ggml.add_bos_token"), Some(&Value::Bool(true)), "the post-processor adds BOS");
    assert!(file.get("tokenizer.chat_template").and_then(Value::as_str).is_some_and(|t| t.contains("[INST]")));
}

#[test]
fn qwen3_phi3_and_gemma3_keep_their_layouts() {
    // Qwen3: no reordering (llama.cpp's NEOX RoPE is rotate-half), q/k norms named attn_q_norm / attn_k_norm.
    let (_d, path) = export("qwen3-micro", FileType::F16);
    let file = GgufFile::open(&path).unwrap();
    let weights = Tensors::open(&model_fixture("qwen3-micro").join("model.safetensors"));
    assert_eq!(file.get("general.architecture").and_then(Value::as_str), Some("qwen3"));
    assert_eq!((u64_of(&file, "qwen3.attention.key_length"), u64_of(&file, "general.file_type")), (32, 1));
    let q = file.tensor_f32("blk.0.attn_q.weight").unwrap();
    let expected = weights.f32("model.layers.0.self_attn.q_proj.weight").0;
    let worst = q.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "F16 of the q weights: {worst}");
    assert_eq!(file.info("blk.0.attn_q.weight").unwrap().ty, GgmlType::F16);
    assert_eq!(file.info("blk.0.attn_q_norm.weight").unwrap().ty, GgmlType::F32, "vectors stay F32");
    assert_eq!(
        file.tensor_f32("blk.1.attn_k_norm.weight").unwrap(),
        weights.f32("model.layers.1.self_attn.k_norm.weight").0
    );

    // Phi-3: the fused projections as attn_qkv and ffn_up (twice the width), partial rotary 8 of 16. Named
    // `phi3-…`, llama.cpp would look for Phi-3's `</s>`, which the fixtures' vocabulary lacks: refused before
    // writing; under another name it is written.
    let err = export_named("phi3-micro", "phi3-micro", FileType::Q8_0).unwrap_err().to_string();
    assert!(err.starts_with("general.name: \"phi3-micro\": llama.cpp treats a model named like Phi-3"), "{err}");
    let (_d, path) = export_named("phi3-micro", "micro", FileType::Q8_0).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.info("blk.0.attn_qkv.weight").unwrap().shape, [128, 64]);
    assert_eq!(file.info("blk.0.ffn_up.weight").unwrap().shape, [256, 64]);
    assert_eq!(file.info("blk.0.ffn_up.weight").unwrap().ty, GgmlType::Q8_0);
    assert_eq!((u64_of(&file, "phi3.rope.dimension_count"), u64_of(&file, "general.file_type")), (8, 7));
    let weights = Tensors::open(&model_fixture("phi3-micro").join("model.safetensors"));
    let (w, _) = weights.f32("model.layers.1.mlp.gate_up_proj.weight");
    let ours = file.tensor_f32("blk.1.ffn_up.weight").unwrap();
    let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
    let worst = ours.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= scale * 0.51, "Q8_0 within half a step of the largest block scale: {worst} vs {scale}");

    // Gemma 3: llama.cpp runs every 6th layer global; gemma3-micro's pattern of 3 is refused, naming the key.
    let (dir, config, model, out) = load("gemma3-micro");
    let tokenizer_json = dir.join("tokenizer.json");
    let export = GgufExport {
        ty: FileType::Bf16,
        name: "g".into(),
        tokenizer_json: &tokenizer_json,
        tokenizer_config: None,
        chat_template: None,
    };
    let err = export_gguf(&model, &config, &export, &out.path().join("g.gguf")).unwrap_err().to_string();
    assert!(err.starts_with("layer_types: llama.cpp runs Gemma 3 with every 6th layer global"), "{err}");
    // With its 4 layers windowed (what the rule gives for 4 layers): four norms per layer, stored as 1 + w; the
    // window; tied, so no output.weight.
    let config = sft_model::LlamaConfig { window_layers: vec![true; 4], ..config };
    let path = out.path().join("g.gguf");
    export_gguf(&model, &config, &export, &path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    let weights = Tensors::open(&model_fixture("gemma3-micro").join("model.safetensors"));
    for (ours, theirs) in [
        ("blk.2.post_attention_norm.weight", "model.layers.2.post_attention_layernorm.weight"),
        ("blk.2.ffn_norm.weight", "model.layers.2.pre_feedforward_layernorm.weight"),
        ("blk.2.post_ffw_norm.weight", "model.layers.2.post_feedforward_layernorm.weight"),
        ("blk.0.attn_q_norm.weight", "model.layers.0.self_attn.q_norm.weight"),
        ("output_norm.weight", "model.norm.weight"),
    ] {
        let plus_one: Vec<f32> = weights.f32(theirs).0.iter().map(|w| w + 1.0).collect();
        assert_eq!(file.tensor_f32(ours).unwrap(), plus_one, "{ours}");
    }
    assert!(file.info("output.weight").is_none());
    assert_eq!(u64_of(&file, "gemma3.attention.sliding_window"), 16);
}

#[test]
fn what_llama_cpp_cannot_take_is_refused_before_writing() {
    let (dir, config, model, out) = load("qwen2-micro");
    let tokenizer_json = dir.join("tokenizer.json");
    let export = GgufExport {
        ty: FileType::F16,
        name: "x".into(),
        tokenizer_json: &tokenizer_json,
        tokenizer_config: None,
        chat_template: None,
    };
    // An existing output.
    let existing = out.path().join("exists.gguf");
    std::fs::write(&existing, b"keep").unwrap();
    let err = export_gguf(&model, &config, &export, &existing).unwrap_err().to_string();
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep");
    // A vocabulary llama.cpp has no tokenizer for.
    let mut tokenizer: serde_json::Value = serde_json::from_slice(&std::fs::read(&tokenizer_json).unwrap()).unwrap();
    tokenizer["model"]["type"] = "WordPiece".into();
    let other = out.path().join("tokenizer.json");
    std::fs::write(&other, tokenizer.to_string()).unwrap();
    let export = GgufExport { tokenizer_json: &other, ..export };
    let err = export_gguf(&model, &config, &export, &out.path().join("a.gguf")).unwrap_err().to_string();
    assert!(err.contains("a WordPiece vocabulary is not exported to GGUF"), "{err}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "nothing written: {left:?}");
}

#[test]
fn q4_0_keeps_the_output_head_at_q8_0() {
    // mistral-micro has its own lm_head: output.weight Q8_0 (llama.cpp's quantizer takes Q6_K where rows are whole
    // 256-value super-blocks, Q8_0 for these 64), token_embd and the layers Q4_0.
    let (_d, path) = export("mistral-micro", FileType::Q4_0);
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(u64_of(&file, "general.file_type"), 2);
    let ty = |name: &str| file.info(name).unwrap().ty;
    assert_eq!(
        [ty("output.weight"), ty("token_embd.weight"), ty("blk.0.attn_v.weight")],
        [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_0]
    );
    let weights = Tensors::open(&model_fixture("mistral-micro").join("model.safetensors"));
    let (w, _) = weights.f32("model.layers.0.self_attn.v_proj.weight");
    let ours = file.tensor_f32("blk.0.attn_v.weight").unwrap();
    let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 8.0;
    let worst = ours.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= scale * 1.01, "Q4_0 within one step of the largest block scale: {worst} vs {scale}");
    // qwen2-micro ties its head to the embeddings: token_embd is the head, Q8_0.
    let (_d, path) = export("qwen2-micro", FileType::Q4_0);
    let file = GgufFile::open(&path).unwrap();
    assert!(file.info("output.weight").is_none());
    assert_eq!(file.info("token_embd.weight").unwrap().ty, GgmlType::Q8_0);
    assert_eq!(file.info("blk.1.attn_q.weight").unwrap().ty, GgmlType::Q4_0);
}

#[test]
fn q4_k_m_mixes_types_as_llama_quantize_does() {
    // mistral-micro (`llama` architecture, its own head) widened to rows of whole 256-value super-blocks (hidden 256,
    // intermediate 512, 4 heads of 64) and 8 layers, random weights, its window off. llama.cpp's use_more_bits for 8 layers, by hand: layer < 8/8 (0), layer >= 7·8/8 (7), and
    // (layer - 1) % 3 == 2 (3, 6): attn_v and ffn_down Q6_K there, Q4_K elsewhere; the output head Q6_K.
    let dir = tempfile::tempdir().unwrap();
    let fixture = model_fixture("mistral-micro");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("config.json")).unwrap()).unwrap();
    json["hidden_size"] = 256.into();
    json["intermediate_size"] = 512.into();
    json["num_hidden_layers"] = 8.into();
    json["head_dim"] = 64.into();
    json["num_attention_heads"] = 4.into();
    json["sliding_window"] = serde_json::Value::Null;
    let config = sft_model::LlamaConfig::from_json(&json.to_string(), &dir.path().join("config.json")).unwrap();
    let model = LlamaForCausalLM::init(&config, &Device::flex(), 3);
    let tokenizer_json = fixture.join("tokenizer.json");
    let write = |ty: FileType| {
        let export = GgufExport {
            ty,
            name: "wide".into(),
            tokenizer_json: &tokenizer_json,
            tokenizer_config: None,
            chat_template: None,
        };
        let out = dir.path().join(format!("{}.gguf", ty.name()));
        export_gguf(&model, &config, &export, &out).unwrap();
        GgufFile::open(&out).unwrap()
    };
    let file = write(FileType::Q4_K_M);
    assert_eq!(u64_of(&file, "general.file_type"), 15);
    let ty = |name: &str| file.info(name).unwrap().ty;
    assert_eq!([ty("output.weight"), ty("token_embd.weight")], [GgmlType::Q6_K, GgmlType::Q4_K]);
    for layer in 0..8 {
        let more = if [0, 3, 6, 7].contains(&layer) { GgmlType::Q6_K } else { GgmlType::Q4_K };
        let types = ["attn_v", "ffn_down", "attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up", "attn_norm"]
            .map(|role| ty(&format!("blk.{layer}.{role}.weight")));
        let expected = [more, more, GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q4_K];
        assert_eq!(types[..7], expected, "layer {layer}");
        assert_eq!(types[7], GgmlType::F32, "vectors stay F32");
    }
    // The values: within one step of each sub-block's scale of the F32 export's (ggml's own bytes for the same
    // values: scripts/gguf/check_quantize.py, and sft-gguf's fixture test).
    let f32_file = write(FileType::F32);
    for (name, step) in [("blk.1.attn_q.weight", 1.0 / 15.0), ("blk.3.ffn_down.weight", 1.0 / 32.0)] {
        let (exact, ours) = (f32_file.tensor_f32(name).unwrap(), file.tensor_f32(name).unwrap());
        for (x, y) in exact.chunks(32).zip(ours.chunks(32)) {
            let range = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) * 2.0;
            let worst = x.iter().zip(y).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= range * step, "{name}: {worst} vs {range}");
        }
    }
    // Q4_0 on the same model: the head Q6_K (its rows are whole super-blocks), the rest Q4_0.
    let file = write(FileType::Q4_0);
    let ty = |name: &str| file.info(name).unwrap().ty;
    assert_eq!([ty("output.weight"), ty("blk.3.attn_v.weight")], [GgmlType::Q6_K, GgmlType::Q4_0]);
    // A micro model's rows of 64 fall back as llama.cpp's do: Q4_K to Q5_0, the (tied) head's Q6_K to Q8_0.
    let (_d, path) = export("qwen2-micro", FileType::Q4_K_M);
    let file = GgufFile::open(&path).unwrap();
    let ty = |name: &str| file.info(name).unwrap().ty;
    assert_eq!(
        [ty("token_embd.weight"), ty("blk.0.attn_q.weight"), ty("blk.1.attn_v.weight")],
        [GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::Q8_0]
    );
}

/// Fixture `folder` copied with its config.json changed by `edit`: the directory and the model loaded from it.
fn edited(
    folder: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (tempfile::TempDir, sft_model::LlamaConfig, LlamaForCausalLM) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_fixture(folder)).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    let (config, model) = LlamaForCausalLM::from_pretrained(dir.path(), &Device::flex(), FloatDType::F32).unwrap();
    (dir, config, model)
}

#[test]
fn phi3_longrope_is_written_as_llama_cpp_s_factor_tensors() {
    // Phi-3's long-context RoPE (Phi-3-128k, Phi-4-mini): the factors as rope_factors_long / _short (F32, one per
    // rotary pair: 8 rotary dims → 4), the pre-training context and the cos / sin scale as keys. The attention
    // factor by hand: √(1 + ln(2048 / 64) / ln 64) = √(1 + 5 / 6).
    let longrope = |config: &mut serde_json::Value| {
        let scaling = serde_json::json!({"rope_type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.7],
            "long_factor": [1.5, 2.5, 4.0, 8.0], "original_max_position_embeddings": 64});
        config["original_max_position_embeddings"] = 64.into();
        config["rope_scaling"] = scaling.clone();
        config["rope_parameters"] = scaling;
        config["rope_parameters"]["rope_theta"] = 10_000.0.into();
        config["rope_parameters"]["partial_rotary_factor"] = 0.5.into();
    };
    let (dir, config, model) = edited("phi3-micro", longrope);
    let out = dir.path().join("longrope.gguf");
    let tokenizer_json = dir.path().join("tokenizer.json");
    let export = GgufExport {
        ty: FileType::F16,
        name: "micro".into(),
        tokenizer_json: &tokenizer_json,
        tokenizer_config: None,
        chat_template: None,
    };
    export_gguf(&model, &config, &export, &out).unwrap();
    let file = GgufFile::open(&out).unwrap();
    assert_eq!(file.tensor_f32("rope_factors_long.weight").unwrap(), [1.5, 2.5, 4.0, 8.0]);
    assert_eq!(file.tensor_f32("rope_factors_short.weight").unwrap(), [1.0, 1.1, 1.3, 1.7]);
    assert_eq!(file.info("rope_factors_long.weight").unwrap().ty, GgmlType::F32);
    assert_eq!(u64_of(&file, "phi3.rope.scaling.original_context_length"), 64);
    assert_eq!(u64_of(&file, "phi3.context_length"), 2048);
    let factor = file.get("phi3.rope.scaling.attn_factor").and_then(Value::as_f64).unwrap();
    assert!((factor - (1.0f64 + 5.0 / 6.0).sqrt()).abs() < 1e-6, "{factor}");

    // Elsewhere llama.cpp reads no longrope factors: refused, naming the key.
    let (dir, config, model) = edited("qwen2-micro", longrope);
    let tokenizer_json = dir.path().join("tokenizer.json");
    let export = GgufExport { tokenizer_json: &tokenizer_json, ..export };
    let err = export_gguf(&model, &config, &export, &dir.path().join("x.gguf")).unwrap_err().to_string();
    assert!(
        err.starts_with("rope_scaling: longrope on Qwen2: llama.cpp reads longrope factors for Phi-3 only"),
        "{err}"
    );
    assert!(!dir.path().join("x.gguf").exists());
}
