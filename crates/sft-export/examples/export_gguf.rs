//! Exports a Hugging Face model directory (`config.json`, `model.safetensors`, `tokenizer.json`) as GGUF, for
//! checking the export with independent readers (`scripts/gguf/check_export.py` loads it with transformers' GGUF
//! loader and compares logits):
//!
//! ```sh
//! cargo run -p sft-export --example export_gguf -- crates/sft-model/tests/fixtures/qwen3-micro /tmp/q.gguf f32
//! ```
//!
//! `general.name` is the directory's name, or a fourth argument (a `phi3-…` name needs Phi-3's `</s>` token in
//! the vocabulary, which the fixtures' shared tokenizer lacks).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_export::{FileType, GgufExport, export_gguf};
use sft_model::LlamaForCausalLM;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, out, ty, name) = match args.as_slice() {
        [dir, out, ty] => (dir, out, ty, None),
        [dir, out, ty, name] => (dir, out, ty, Some(name.clone())),
        _ => return Err("usage: export_gguf MODEL_DIR OUT.gguf f32|f16|bf16|q8_0|q4_0|q4_k_m [NAME]".into()),
    };
    let ty = FileType::parse(ty).ok_or("type: f32, f16, bf16, q8_0, q4_0 or q4_k_m")?;
    let dir = Path::new(dir);
    let (config, model) = LlamaForCausalLM::from_pretrained(dir, &Device::flex(), FloatDType::F32)?;
    let tokenizer_json = dir.join("tokenizer.json");
    let tokenizer_config = dir.join("tokenizer_config.json");
    let name = name.unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let tokenizer_config = tokenizer_config.is_file().then_some(tokenizer_config.as_path());
    // The chat template as tokenizer_config.json carries it (the CLI takes it from the loaded tokenizer).
    let settings: Option<serde_json::Value> =
        tokenizer_config.map(|p| std::fs::read(p).map(|b| serde_json::from_slice(&b))).transpose()?.transpose()?;
    let chat_template = settings.as_ref().and_then(|s| s["chat_template"].as_str());
    let export = GgufExport { ty, name, tokenizer_json: &tokenizer_json, tokenizer_config, chat_template };
    export_gguf(&model, &config, &export, Path::new(out))?;
    Ok(())
}
