//! `save_pretrained` writes a checkpoint that loads back to the same model, in f32 and bf16, and presets parse.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaConfig, LlamaForCausalLM};

use crate::{fixture, load, reference, reference_batch, values};

#[test]
fn a_saved_checkpoint_loads_back_to_the_same_logits() {
    let device = Device::flex();
    let reference = reference("llama-micro-tied-scaled");
    let (input, _, _) = reference_batch(&reference, &device);
    for dtype in [FloatDType::F32, FloatDType::BF16] {
        let (config, model) =
            LlamaForCausalLM::from_pretrained(&fixture("llama-micro-tied-scaled"), &device, dtype).unwrap();
        let dir = tempfile::tempdir().unwrap();
        model.save_pretrained(&config, dir.path(), dtype).unwrap();
        let (again_config, again) = LlamaForCausalLM::from_pretrained(dir.path(), &device, dtype).unwrap();
        assert_eq!(again_config, config, "{dtype:?}: config.json round trip");
        assert_eq!(values(again.forward(&input)), values(model.forward(&input)), "{dtype:?}: same logits");
        let names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 2, "no temporary files remain: {names:?}");
    }
}

#[test]
fn a_saved_f32_checkpoint_equals_the_original_file_tensor_for_tensor() {
    // Qwen2's biases and Qwen3's q/k norms are written back too; the parameter counts are transformers'.
    for (folder, parameters) in [
        ("llama-micro", 616_768),
        ("qwen2-micro", 354_880),
        ("qwen3-micro", 623_040),
        ("mistral-micro", 594_240),
        ("phi3-micro", 598_336),
        ("gemma3-micro", 410_880),
    ] {
        saved_equals_original(folder, parameters);
    }
}

fn saved_equals_original(folder: &str, parameters: usize) {
    let (config, model) = load(folder, &Device::flex());
    assert_eq!(config.num_parameters(), parameters, "{folder}");
    let dir = tempfile::tempdir().unwrap();
    model.save_pretrained(&config, dir.path(), FloatDType::F32).unwrap();
    let (again, _) = LlamaForCausalLM::from_pretrained(dir.path(), &Device::flex(), FloatDType::F32).unwrap();
    assert_eq!(again, config, "{folder}: config.json round trip");
    let original = std::fs::read(fixture(folder).join("model.safetensors")).unwrap();
    let saved = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let (original, saved) = (
        safetensors::SafeTensors::deserialize(&original).unwrap(),
        safetensors::SafeTensors::deserialize(&saved).unwrap(),
    );
    let mut names = saved.names();
    names.sort();
    let mut expected = original.names();
    expected.sort();
    assert_eq!(names, expected, "{folder}");
    for name in names {
        let (a, b) = (original.tensor(name).unwrap(), saved.tensor(name).unwrap());
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{folder} {name}");
        assert!(a.data() == b.data(), "{folder} {name}: bytes differ");
    }
}

#[test]
fn presets_parse_with_the_documented_sizes() {
    let count = |name: &str| LlamaConfig::preset(name).unwrap().num_parameters();
    // Hand count, e.g. small: 15 × (2·512² + 2·512·256 + 3·512·1536 + 2·512) + 2·32000·512 + 512.
    assert_eq!(count("small"), 15 * (2 * 512 * 512 + 2 * 512 * 256 + 3 * 512 * 1536 + 2 * 512) + 2 * 32000 * 512 + 512);
    assert_eq!(count("tiny"), 4 * (2 * 256 * 256 + 2 * 256 * 128 + 3 * 256 * 688 + 2 * 256) + 2 * 4096 * 256 + 256);
    // meta-llama/Llama-3.2-1B reports 1,235,814,400 parameters.
    assert_eq!(count("llama-3.2-1b"), 1_235_814_400);
    // The families' published counts: Qwen2.5-0.5B 494,032,768 (with its q/k/v biases), Qwen3-0.6B 0.44B
    // without the embeddings (151936 × 1024 of them; with its q/k norms), Mistral-7B-v0.1 7,241,732,096.
    assert_eq!(count("qwen2.5-0.5b"), 494_032_768);
    assert_eq!(count("qwen3-0.6b") - 151_936 * 1024, 440_467_456);
    assert_eq!(count("mistral-7b"), 7_241_732_096);
    // Phi-4-mini-instruct: 32 × (5120·3072 + 3072² + 16384·3072 + 3072·8192 + 2·3072) + 200064·3072 (tied) + 3072.
    assert_eq!(
        count("phi-4-mini"),
        32 * (5120 * 3072 + 3072 * 3072 + 16384 * 3072 + 3072 * 8192 + 2 * 3072) + 200_064 * 3072 + 3072
    );
    // gemma-3-1b: 999,885,952 (the count transformers reports for Gemma3ForCausalLM).
    assert_eq!(count("gemma-3-1b"), 999_885_952);
    assert!(LlamaConfig::preset("huge").unwrap_err().to_string().contains("tiny, small, llama-3.2-1b, qwen2.5-0.5b"));
}

#[test]
fn a_write_that_fails_leaves_the_old_file_and_no_temporary_file() {
    use burn::tensor::{DType, TensorData};
    use sft_model::{ModelError, TensorEntry, write_atomic, write_safetensors};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter_model.safetensors");
    write_atomic(&path, b"the old file").unwrap();
    let entries = vec![
        TensorEntry {
            name: "a".into(),
            dtype: DType::F32,
            shape: vec![2],
            data: Box::new(|| Ok(TensorData::new(vec![1f32, 2.0], [2]))),
        },
        TensorEntry {
            name: "b".into(),
            dtype: DType::F32,
            shape: vec![2],
            data: Box::new(|| Err(ModelError::Input("the producer failed".into()))),
        },
    ];
    let err = write_safetensors(&path, entries, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("the producer failed"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"the old file");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["adapter_model.safetensors"], "no temporary file remains");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert_eq!(mode, std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777, "the umask's mode");
    }
}
