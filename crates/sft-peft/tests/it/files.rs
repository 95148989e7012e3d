//! Adapter files: round trips, PEFT's keys and shapes, PEFT's config fields, and bad input.

use burn::prelude::*;
use sft_peft::{
    ADAPTER_CONFIG, ADAPTER_WEIGHTS, LoraConfig, PeftError, TargetModules, inject, load_adapter, save_adapter,
};

use crate::{Tensors, base, batch, python_adapter, values};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        let mut perms = std::fs::metadata(to.join(entry.file_name())).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(to.join(entry.file_name()), perms).unwrap();
    }
}

fn python_config() -> LoraConfig {
    LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        target_modules: Some(TargetModules::List(
            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].map(String::from).to_vec(),
        )),
        ..LoraConfig::default()
    }
}

#[test]
fn the_python_adapter_round_trips_bit_identically() {
    let device = Device::flex();
    let (model, config) = load_adapter(base(&device), &python_adapter()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&model, &config, "llama-micro", dir.path()).unwrap();
    let (theirs, ours) =
        (Tensors::open(&python_adapter().join(ADAPTER_WEIGHTS)), Tensors::open(&dir.path().join(ADAPTER_WEIGHTS)));
    assert_eq!(ours.names(), theirs.names());
    for name in theirs.names() {
        assert_eq!(ours.raw(&name), theirs.raw(&name), "{name}");
    }
    // And our own files load back to the same model.
    let (again, again_config) = load_adapter(base(&device), dir.path()).unwrap();
    assert_eq!(again_config, config);
    let (input, _, _) = batch(&device);
    assert_eq!(values(again.forward(&input)), values(model.forward(&input)));
    // The config carries every field PEFT 0.21 writes, with the same values as PEFT's file but the version.
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join(ADAPTER_CONFIG)).unwrap()).unwrap()
    };
    let (mut ours, mut theirs) = (read(dir.path()), read(&python_adapter()));
    theirs.as_object_mut().unwrap().remove("peft_version");
    // PEFT writes integral floats as integers (`lora_alpha: 8`); compare numbers by value.
    for v in [&mut ours, &mut theirs] {
        let alpha = v["lora_alpha"].as_f64().unwrap();
        v["lora_alpha"] = serde_json::json!(alpha);
        let dropout = v["lora_dropout"].as_f64().unwrap();
        v["lora_dropout"] = serde_json::json!(dropout);
    }
    assert_eq!(ours, theirs);
}

#[test]
fn a_fresh_adapter_has_peft_keys_and_shapes_and_survives_a_round_trip() {
    let device = Device::flex();
    let config = LoraConfig { init_lora_weights: sft_peft::InitLoraWeights::Bool(false), ..python_config() };
    let model = inject(base(&device), &config, 7).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&model, &config, "llama-micro", dir.path()).unwrap();
    let (ours, theirs) =
        (Tensors::open(&dir.path().join(ADAPTER_WEIGHTS)), Tensors::open(&python_adapter().join(ADAPTER_WEIGHTS)));
    assert_eq!(ours.names(), theirs.names(), "the same keys as PEFT for the same config");
    for name in theirs.names() {
        assert_eq!(ours.f32(&name).1, theirs.f32(&name).1, "{name}: shape");
    }
    let (loaded, _) = load_adapter(base(&device), dir.path()).unwrap();
    let again = tempfile::tempdir().unwrap();
    save_adapter(&loaded, &config, "llama-micro", again.path()).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(ADAPTER_WEIGHTS)).unwrap(),
        std::fs::read(again.path().join(ADAPTER_WEIGHTS)).unwrap(),
        "save → load → save is byte-identical"
    );
}

#[test]
fn modules_to_save_are_written_with_peft_keys_and_restored() {
    let device = Device::flex();
    let config = LoraConfig {
        modules_to_save: Some(vec!["lm_head".into(), "embed_tokens".into()]),
        init_lora_weights: sft_peft::InitLoraWeights::Bool(false),
        ..python_config()
    };
    let model = inject(base(&device), &config, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&model, &config, "llama-micro", dir.path()).unwrap();
    let saved = Tensors::open(&dir.path().join(ADAPTER_WEIGHTS));
    assert_eq!(saved.f32("base_model.model.lm_head.weight").1, vec![4096, 64]);
    assert_eq!(saved.f32("base_model.model.model.embed_tokens.weight").1, vec![4096, 64]);
    let (loaded, _) = load_adapter(base(&device), dir.path()).unwrap();
    let (input, _, _) = batch(&device);
    assert_eq!(values(loaded.forward(&input)), values(model.forward(&input)));
}

fn expect_adapter_error(dir: &std::path::Path, needle: &str) {
    match load_adapter(base(&Device::flex()), dir) {
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains(needle), "error `{text}` should mention `{needle}`");
        }
        Ok(_) => panic!("loading {} should fail", dir.display()),
    }
}

#[test]
fn bad_adapters_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let edit = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let dir = tmp.path().join(name);
        copy_dir(&python_adapter(), &dir);
        let path = dir.join(ADAPTER_CONFIG);
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        dir
    };
    expect_adapter_error(&edit("ia3", &|v| v["peft_type"] = "IA3".into()), "peft_type `IA3`");
    expect_adapter_error(&edit("r0", &|v| v["r"] = 0.into()), "lora_config.r");
    expect_adapter_error(&edit("dora", &|v| v["use_dora"] = true.into()), "use_dora");
    // A different rank than the tensors: the shape mismatch names the file and the tensor.
    let r8 = edit("r8", &|v| v["r"] = 8.into());
    expect_adapter_error(
        &r8,
        &format!(
            "{}: tensor `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`: expected shape [8, 64]",
            r8.join(ADAPTER_WEIGHTS).display()
        ),
    );
    // Targets the file lacks: the tensors it does have are unexpected, in that file.
    let fewer = edit("fewer", &|v| v["target_modules"] = serde_json::json!(["q_proj"]));
    expect_adapter_error(&fewer, &format!("{}: unexpected tensors", fewer.join(ADAPTER_WEIGHTS).display()));
    // A target the model lacks: named with the config file it came from.
    let unknown = edit("unknown", &|v| v["target_modules"] = serde_json::json!(["q_proj", "qkv_proj"]));
    expect_adapter_error(
        &unknown,
        &format!("{}: target_modules entry `qkv_proj` matches no module", unknown.join(ADAPTER_CONFIG).display()),
    );
    let missing = tmp.path().join("missing");
    copy_dir(&python_adapter(), &missing);
    std::fs::remove_file(missing.join(ADAPTER_WEIGHTS)).unwrap();
    expect_adapter_error(&missing, "adapter_model.safetensors is missing");
    // An adapter for another base model: the tiny preset has hidden 256, not 64.
    let config = sft_model::LlamaConfig::preset("tiny").unwrap();
    let other = sft_model::LlamaForCausalLM::init(&config, &Device::flex(), 0);
    match load_adapter(other, &python_adapter()) {
        Err(PeftError::Model(e @ sft_model::ModelError::ShapeMismatch { .. })) => {
            let weights = python_adapter().join(ADAPTER_WEIGHTS);
            assert!(e.to_string().starts_with(&format!("{}: tensor `", weights.display())), "{e}");
            assert!(e.to_string().contains("expected shape [4, 256], found [4, 64]"), "{e}");
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
}

/// The Python adapter with its tensors renamed by `rename` (`None` keeps the key), written to `dir`.
fn renamed_adapter(dir: &std::path::Path, rename: impl Fn(&str) -> Option<String>) {
    copy_dir(&python_adapter(), dir);
    let bytes = std::fs::read(python_adapter().join(ADAPTER_WEIGHTS)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.names().into_iter().map(|n| (rename(n).unwrap_or_else(|| n.to_owned()), st.tensor(n).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dir.join(ADAPTER_WEIGHTS)).unwrap();
}

/// PEFT's in-memory key: the adapter name after `lora_A` / `lora_B` / `modules_to_save`.
fn in_memory_key(key: &str, adapter: &str) -> Option<String> {
    let stem = key.strip_suffix(".weight")?;
    if stem.ends_with(".lora_A") || stem.ends_with(".lora_B") {
        Some(format!("{stem}.{adapter}.weight"))
    } else {
        Some(format!("{stem}.modules_to_save.{adapter}.weight"))
    }
}

#[test]
fn keys_with_peft_s_adapter_name_load_as_peft_loads_them() {
    let device = Device::flex();
    let (input, _, _) = batch(&device);
    let (reference, _) = load_adapter(base(&device), &python_adapter()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let named = tmp.path().join("named");
    renamed_adapter(&named, |k| in_memory_key(k, "default"));
    assert!(Tensors::open(&named.join(ADAPTER_WEIGHTS)).names().iter().all(|n| n.contains(".default.")));
    let (loaded, _) = load_adapter(base(&device), &named).unwrap();
    assert_eq!(values(loaded.forward(&input)), values(reference.forward(&input)));

    // Two adapter names in one file: refused, naming both.
    let mixed = tmp.path().join("mixed");
    renamed_adapter(&mixed, |k| in_memory_key(k, if k.contains(".lora_A") { "default" } else { "other" }));
    expect_adapter_error(&mixed, "holds the tensors of 2 adapters (`default`, `other`)");
}
