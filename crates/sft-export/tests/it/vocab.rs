//! SentencePiece-style vocabularies (BPE with `byte_fallback`: Llama 2, Mistral v0.1, Phi-3, Gemma) as llama.cpp's
//! `llama` tokenizer: byte tokens, the unknown token, scores from the merge ranks, the space prefix.

use serde_json::json;
use sft_export::vocab::tokenizer_metadata;
use sft_gguf::Value;
use sft_testkit::model_fixture;

/// A small tokenizer.json in Llama 2's form: <unk> <s> </s>, the 256 byte tokens, then pieces and their merges.
fn llama2_style(normalizer: serde_json::Value, pre_tokenizer: serde_json::Value) -> serde_json::Value {
    let mut vocab = serde_json::Map::new();
    for (id, token) in ["<unk>", "<s>", "</s>"].iter().enumerate() {
        vocab.insert((*token).into(), id.into());
    }
    for b in 0..=255u32 {
        vocab.insert(format!("<0x{b:02X}>"), (3 + b).into());
    }
    for (i, token) in ["\u{2581}", "a", "b", "\u{2581}a", "ab", "\u{2581}ab"].iter().enumerate() {
        vocab.insert((*token).into(), (259 + i).into());
    }
    json!({
        "added_tokens": [
            {"id": 0, "content": "<unk>", "special": true},
            {"id": 1, "content": "<s>", "special": true},
            {"id": 2, "content": "</s>", "special": true},
            {"id": 265, "content": "<|user|>", "special": false},
        ],
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "TemplateProcessing", "single": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
        "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "fuse_unk": true,
                  "vocab": vocab, "merges": ["\u{2581} a", "a b", "\u{2581}a b", "\u{2581} ab"]},
    })
}

fn metadata(tokenizer: &serde_json::Value) -> Result<Vec<(String, Value)>, sft_export::ExportError> {
    let config = sft_model::LlamaConfig::from_file(&model_fixture("llama-micro").join("config.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, tokenizer.to_string()).unwrap();
    let settings = dir.path().join("tokenizer_config.json");
    std::fs::write(&settings, json!({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false}).to_string())
        .unwrap();
    tokenizer_metadata(&config, &path, Some(&settings), None)
}

fn get<'a>(metadata: &'a [(String, Value)], key: &str) -> &'a Value {
    &metadata.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("{key}")).1
}

fn items(value: &Value) -> &[Value] {
    let Value::Array { items, .. } = value else { panic!("{value:?}") };
    items
}

#[test]
fn a_byte_fallback_vocabulary_is_written_as_llama_cpp_s_sentencepiece_tokenizer() {
    let legacy = json!({"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u{2581}"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}]});
    let m = metadata(&llama2_style(legacy, serde_json::Value::Null)).unwrap();
    assert_eq!(get(&m, "tokenizer.ggml.model").as_str(), Some("llama"));
    assert!(m.iter().all(|(k, _)| k != "tokenizer.ggml.merges"), "no merges for llama.cpp's SentencePiece");
    let tokens = items(get(&m, "tokenizer.ggml.tokens"));
    assert_eq!(tokens.len(), 4096, "a token for every embedding row");
    assert_eq!(tokens[3].as_str(), Some("<0x00>"));
    assert_eq!(tokens[262].as_str(), Some("\u{2581}a"));
    // Types: unknown 2, control 3, byte 6, normal 1, user-defined 4, unused 5.
    let types: Vec<i32> =
        items(get(&m, "tokenizer.ggml.token_type")).iter().map(|v| v.as_u64().map_or(-1, |v| v as i32)).collect();
    assert_eq!(types[..4], [2, 3, 3, 6]);
    assert_eq!(types[258], 6);
    assert_eq!(types[259..267], [1, 1, 1, 1, 1, 1, 4, 5]);
    // Scores: minus the rank of the first merge that makes the token (▁ab: "▁a b", rank 2, before "▁ ab"); the
    // alphabet below every merge (-(4 merges) - 1); special and byte tokens 0.
    let scores: Vec<f64> = items(get(&m, "tokenizer.ggml.scores")).iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(scores.len(), 4096);
    assert_eq!(scores[259..265], [-5.0, -5.0, -5.0, 0.0, -1.0, -2.0]);
    assert_eq!([scores[0], scores[1], scores[100]], [0.0; 3]);
    assert_eq!(get(&m, "tokenizer.ggml.add_space_prefix"), &Value::Bool(true), "Prepend(▁)");
    assert_eq!(get(&m, "tokenizer.ggml.unknown_token_id").as_u64(), Some(0));
    assert_eq!(get(&m, "tokenizer.ggml.add_bos_token"), &Value::Bool(true), "the post-processor adds <s>");
    assert_eq!(get(&m, "tokenizer.ggml.bos_token_id").as_u64(), Some(1));
    assert_eq!(get(&m, "tokenizer.ggml.eos_token_id").as_u64(), Some(2));
}

#[test]
fn the_space_prefix_follows_the_normalizer_or_the_metaspace() {
    let prefix = |normalizer, pre_tokenizer| {
        let m = metadata(&llama2_style(normalizer, pre_tokenizer)).unwrap();
        get(&m, "tokenizer.ggml.add_space_prefix").clone()
    };
    // Mistral's and newer Llama 2 conversions: Metaspace prepending to the first word.
    let metaspace = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false});
    assert_eq!(prefix(serde_json::Value::Null, metaspace), Value::Bool(true));
    let never = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "never", "split": false});
    assert_eq!(prefix(serde_json::Value::Null, never), Value::Bool(false));
    // Gemma's: spaces replaced, nothing prepended.
    let gemma = json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"});
    assert_eq!(prefix(gemma, serde_json::Value::Null), Value::Bool(false));
}

#[test]
fn a_vocabulary_llama_cpp_cannot_tokenize_is_an_error_naming_the_file() {
    let mut missing_byte = llama2_style(serde_json::Value::Null, serde_json::Value::Null);
    missing_byte["model"]["vocab"].as_object_mut().unwrap().remove("<0x41>");
    let err = metadata(&missing_byte).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json") && err.contains("byte tokens"), "{err}");
    let mut unigram = llama2_style(serde_json::Value::Null, serde_json::Value::Null);
    unigram["model"]["type"] = "Unigram".into();
    let err = metadata(&unigram).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json: model.type") && err.contains("Unigram"), "{err}");
}

#[test]
fn the_byte_level_split_pattern_is_named_as_llama_cpp_knows_it() {
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_fixture("qwen2-micro").join("tokenizer.json")).unwrap()).unwrap();
    let pre = |tokenizer: &serde_json::Value| {
        let m = metadata(tokenizer)?;
        Ok::<_, sft_export::ExportError>(get(&m, "tokenizer.ggml.pre").as_str().unwrap().to_owned())
    };
    // The fixtures share Llama 3's pattern (digits in runs of three), whatever the family.
    assert_eq!(pre(&fixture).unwrap(), "llama-bpe");
    let mut qwen = fixture.clone();
    qwen["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+".into();
    assert_eq!(pre(&qwen).unwrap(), "qwen2");
    let mut gpt2 = fixture.clone();
    gpt2["pre_tokenizer"] =
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    assert_eq!(pre(&gpt2).unwrap(), "gpt-2");
    let mut other = fixture;
    other["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\p{L}+|\s+".into();
    let err = pre(&other).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json: pre_tokenizer") && err.contains(r"\\p{L}+|\\s+"), "{err}");
}
