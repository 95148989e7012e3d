//! Bad checkpoints and configs: clear errors naming the file or tensor, never a panic.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaForCausalLM, ModelError};

use crate::fixture;

fn copy_micro(to: &Path) {
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("llama-micro").join(f), to.join(f)).unwrap();
    }
}

fn load_err(dir: &Path) -> ModelError {
    match LlamaForCausalLM::from_pretrained(dir, &Device::flex(), FloatDType::F32) {
        Ok(_) => panic!("loaded"),
        Err(e) => e,
    }
}

#[test]
fn a_truncated_safetensors_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_micro(dir.path());
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::Checkpoint { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{}: not a valid safetensors file", path.display())), "{err}");
}

#[test]
fn a_shard_index_naming_a_missing_shard() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("llama-micro/config.json"), dir.path().join("config.json")).unwrap();
    std::fs::copy(fixture("llama-micro/model.safetensors"), dir.path().join("model-00001-of-00002.safetensors"))
        .unwrap();
    let index = r#"{"metadata": {}, "weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "lm_head.weight": "model-00002-of-00002.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.to_string().ends_with("the index names shard `model-00002-of-00002.safetensors`, which does not exist"),
        "{err}"
    );
}

#[test]
fn a_sharded_checkpoint_loads() {
    // Split the micro checkpoint into two shards plus an index, as save_pretrained does for large models.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("llama-micro/config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(fixture("llama-micro/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [("model-00001-of-00002.safetensors", first), ("model-00002-of-00002.safetensors", second)] {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
            part.iter().map(|n| (n.clone(), st.tensor(n).unwrap())).collect();
        safetensors::serialize_to_file(views, None, &dir.path().join(shard)).unwrap();
        for n in part {
            weight_map.insert(n.clone(), shard.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::write(dir.path().join("README.md"), "# model card").unwrap();
    // Through the `Repo` seam: only the layout's files are fetched, config first (it is checked before weights).
    let repo = sft_testkit::RecordingRepo::new(dir.path());
    let (config, model) = LlamaForCausalLM::from_repo(&repo, &Device::flex(), FloatDType::F32).unwrap();
    assert_eq!(model.num_layers(), config.num_hidden_layers);
    assert_eq!(
        repo.fetched(),
        [
            "config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors"
        ]
    );
}

#[test]
fn a_repo_without_weights_lists_its_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("llama-micro/config.json"), dir.path().join("config.json")).unwrap();
    std::fs::write(dir.path().join("README.md"), "# model card").unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::Repo(sft_repo::RepoError::Missing { .. })), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no model.safetensors or model.safetensors.index.json; files found: README.md, config.json",
            dir.path().display()
        )
    );
}

#[test]
fn hidden_size_not_divisible_by_heads() {
    let dir = tempfile::tempdir().unwrap();
    copy_micro(dir.path());
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    let object = config.as_object_mut().unwrap();
    object.remove("head_dim");
    object.insert("hidden_size".into(), 66.into());
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.to_string().ends_with("config.json: hidden_size: 66 is not divisible by num_attention_heads = 4"),
        "{err}"
    );
}

#[test]
fn unknown_architecture() {
    let dir = tempfile::tempdir().unwrap();
    copy_micro(dir.path());
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures": ["GPT2LMHeadModel"], "vocab_size": 8, "hidden_size": 8, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 1}"#,
    )
    .unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("architectures: unsupported architecture [\"GPT2LMHeadModel\"]"), "{err}");
}

#[test]
fn a_missing_tensor_and_an_unexpected_one() {
    let bytes = std::fs::read(fixture("llama-micro/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let write = |dir: &Path, skip: &str, extra: bool| {
        std::fs::copy(fixture("llama-micro/config.json"), dir.join("config.json")).unwrap();
        let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
            st.names().into_iter().filter(|n| *n != skip).map(|n| (n.to_owned(), st.tensor(n).unwrap())).collect();
        if extra {
            views.push(("model.layers.0.self_attn.q_proj.bias".into(), st.tensor("model.norm.weight").unwrap()));
        }
        safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.layers.1.mlp.up_proj.weight", false);
    let err = load_err(dir.path());
    assert!(err.to_string().starts_with("missing tensor `model.layers.1.mlp.up_proj.weight`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "", true);
    let err = load_err(dir.path());
    assert_eq!(
        err.to_string(),
        format!(
            "{}: unexpected tensors: model.layers.0.self_attn.q_proj.bias",
            dir.path().join("model.safetensors").display()
        )
    );
}

#[test]
fn a_shape_mismatch_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    copy_micro(dir.path());
    let path = dir.path().join("config.json");
    let text =
        std::fs::read_to_string(&path).unwrap().replace("\"intermediate_size\": 176", "\"intermediate_size\": 128");
    std::fs::write(&path, text).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{err:?}");
    let weights = dir.path().join("model.safetensors");
    assert!(err.to_string().starts_with(&format!("{}: tensor `model.layers.0.mlp.", weights.display())), "{err}");
    assert!(err.to_string().contains("expected shape [128, 64], found [176, 64]"), "{err}");
}

/// The micro checkpoint with its header edited by `edit` (the data bytes unchanged).
fn with_header(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> std::path::PathBuf {
    copy_micro(dir);
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn an_inconsistent_header_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    // A shape that does not fill its byte range.
    let path = with_header(dir.path(), |h| {
        let shape = &mut h["model.norm.weight"]["shape"];
        let n = shape[0].as_u64().unwrap();
        *shape = serde_json::json!([n + 1]);
    });
    let message = load_err(dir.path()).to_string();
    assert!(
        message.starts_with(&format!(
            "{}: not a valid safetensors file: header: tensor `model.norm.weight`: shape",
            path.display()
        )),
        "{message}"
    );
    assert!(message.contains("needs") && message.contains("its data_offsets"), "{message}");

    // A range moved by 4 bytes: a gap before it.
    let dir = tempfile::tempdir().unwrap();
    let mut moved = String::new();
    with_header(dir.path(), |h| {
        let (name, info) = h
            .iter_mut()
            .filter(|(n, _)| *n != "__metadata__")
            .max_by_key(|(_, i)| i["data_offsets"][0].as_u64().unwrap())
            .unwrap();
        moved = name.clone();
        let [s, e] = [0, 1].map(|k| info["data_offsets"][k].as_u64().unwrap());
        info["data_offsets"] = serde_json::json!([s + 4, e + 4]);
    });
    let message = load_err(dir.path()).to_string();
    assert!(
        message.contains(&format!("tensor `{moved}`: data_offsets [")) && message.contains("leaving a gap"),
        "{message}"
    );

    // An entry that is not a tensor description.
    let dir = tempfile::tempdir().unwrap();
    with_header(dir.path(), |h| {
        h["model.norm.weight"]["dtype"] = "F33".into();
    });
    let message = load_err(dir.path()).to_string();
    assert!(message.contains("header: tensor `model.norm.weight`: unknown variant `F33`"), "{message}");
}

/// `config.json` of fixture `folder` with `edit` applied, beside the tensors of `model.safetensors` that `keep`
/// accepts, in a fresh directory.
fn family_dir(folder: &str, edit: impl Fn(&mut serde_json::Value), keep: impl Fn(&str) -> bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(folder).join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let bytes = std::fs::read(fixture(folder).join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.names().into_iter().filter(|n| keep(n)).map(|n| (n.to_owned(), st.tensor(n).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn a_config_that_contradicts_the_weights_names_the_tensors() {
    // Qwen2 weights (q/k/v biases) under a Llama config: the biases are unexpected.
    let dir = family_dir(
        "qwen2-micro",
        |c| {
            c["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
            c["model_type"] = "llama".into();
        },
        |_| true,
    );
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::UnexpectedTensors { .. }), "{err:?}");
    assert!(err.to_string().contains("model.layers.0.self_attn.k_proj.bias"), "{err}");

    // A Qwen3 checkpoint without its q_norm: the missing tensor is named.
    let dir = family_dir("qwen3-micro", |_| {}, |n| n != "model.layers.1.self_attn.q_norm.weight");
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{err:?}");
    assert!(err.to_string().contains("model.layers.1.self_attn.q_norm.weight"), "{err}");

    // A Qwen2 bias of the wrong size: a shape error naming the tensor.
    let dir = family_dir("qwen2-micro", |c| c["num_key_value_heads"] = 4.into(), |_| true);
    let err = load_err(dir.path()).to_string();
    assert!(err.contains("model.layers.0.self_attn.k_proj"), "{err}");

    // A fused Phi-3 qkv_proj of the wrong size (the config says 4 kv heads: 64 + 2 × 64 rows, the file has 128):
    // the shape error names the tensor and both shapes.
    let dir = family_dir("phi3-micro", |c| c["num_key_value_heads"] = 4.into(), |_| true);
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("model.layers.0.self_attn.qkv_proj.weight") && err.contains("[192, 64]"), "{err}");

    // Phi-3 weights under a Llama config: q_proj is missing (the checkpoint has the fused qkv_proj).
    let dir = family_dir(
        "phi3-micro",
        |c| {
            c["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
            c["model_type"] = "llama".into();
        },
        |_| true,
    );
    let err = load_err(dir.path());
    assert!(err.to_string().contains("model.layers.0.self_attn.q_proj.weight"), "{err}");

    // A Gemma 3 checkpoint without a sandwich norm: the missing tensor is named.
    let dir = family_dir("gemma3-micro", |_| {}, |n| n != "model.layers.2.post_feedforward_layernorm.weight");
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{err:?}");
    assert!(err.to_string().contains("model.layers.2.post_feedforward_layernorm.weight"), "{err}");
}

#[test]
fn the_family_comes_from_architectures_or_model_type_and_unsupported_ones_list_the_supported() {
    let read = |json: &str| sft_model::LlamaConfig::from_json(json, Path::new("config.json"));
    let base = r#""vocab_size": 8, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2"#;
    let qwen2 = read(&format!(r#"{{"architectures": ["Qwen2ForCausalLM"], {base}}}"#)).unwrap();
    assert_eq!(
        (qwen2.family, qwen2.qkv_bias, qwen2.o_bias, qwen2.qk_norm),
        (sft_model::ModelFamily::Qwen2, true, false, false)
    );
    let qwen3 = read(&format!(r#"{{"model_type": "qwen3", {base}}}"#)).unwrap();
    assert_eq!((qwen3.family, qwen3.qkv_bias, qwen3.qk_norm), (sft_model::ModelFamily::Qwen3, false, true));
    let llama = read(&format!(r#"{{"model_type": "llama", "attention_bias": true, {base}}}"#)).unwrap();
    assert_eq!((llama.family, llama.qkv_bias, llama.o_bias), (sft_model::ModelFamily::Llama, true, true));
    let err = read(&format!(r#"{{"architectures": ["GPT2LMHeadModel"], {base}}}"#)).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM, Phi3ForCausalLM, \
             Gemma3ForCausalLM"
        ),
        "{err}"
    );
    // Gemma 3: its activation key, the default window pattern (every 6th layer global), tied by default.
    let gemma = read(&format!(
        r#"{{"model_type": "gemma3_text", "num_hidden_layers": 7, "head_dim": 4, {}}}"#,
        r#""vocab_size": 8, "hidden_size": 8, "intermediate_size": 8, "num_attention_heads": 2"#
    ))
    .unwrap();
    assert_eq!(gemma.window_layers, [true, true, true, true, true, false, true]);
    assert_eq!((gemma.hidden_act, gemma.tie_word_embeddings), (sft_model::Activation::GeluTanh, true));
    let err = read(&format!(r#"{{"model_type": "gemma3_text", "final_logit_softcapping": 30.0, {base}}}"#))
        .unwrap_err()
        .to_string();
    assert!(err.contains("final_logit_softcapping"), "{err}");
    // Phi-3: the rotary share of each head.
    let phi = read(&format!(r#"{{"model_type": "phi3", "partial_rotary_factor": 0.5, {base}}}"#)).unwrap();
    assert_eq!((phi.rotary_dim, phi.head_dim, phi.fused_projections), (2, 4, true));
    // The written config.json names the family again.
    let written = qwen3.to_hf_json(FloatDType::F32);
    assert_eq!(
        (written["architectures"][0].as_str(), written["model_type"].as_str()),
        (Some("Qwen3ForCausalLM"), Some("qwen3"))
    );
}
