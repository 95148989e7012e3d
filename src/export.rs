//! Export for serving: an adapter merged into its base and written as GGUF (`sft export gguf`).

use burn::prelude::*;
use sft_hub::HubSettings;

use crate::error::Result;
use crate::pipeline::load_adapted;

/// Merges `adapter` into its base (`base`, default: the adapter's `base_model_name_or_path`) and writes the result
/// to `out` as a GGUF file with matrices in `ty` (f32, f16, bf16, q8_0) and the base's tokenizer: the model
/// llama.cpp, Ollama and LM Studio run. A type this project does not write is an error naming it, before anything
/// is loaded; an existing `out` is refused.
pub fn export_gguf(
    adapter: &std::path::Path,
    base: Option<&str>,
    out: &std::path::Path,
    ty: &str,
    hub: &HubSettings,
) -> Result<()> {
    let unsupported = |message: String| sft_export::ExportError::Unsupported { what: "--type".into(), message };
    let ty = sft_gguf::GgmlType::parse(ty).ok_or_else(|| {
        let known: Vec<&str> = sft_gguf::GgmlType::ALL.iter().map(|t| t.name()).collect();
        unsupported(format!("`{ty}` is not a GGUF type written here ({})", known.join(", ")))
    })?;
    if out.exists() {
        return Err(sft_export::ExportError::from(sft_gguf::GgufError::Exists { path: out.to_owned() }).into());
    }
    let (base, config, model) = load_adapted(adapter, base, hub, &Device::flex())?;
    let merged = sft_peft::merge_and_unload(model);
    let repo = sft_hub::AnyRepo::open(&base, sft_hub::RepoKind::Model, None, hub)?;
    let listing = sft_repo::Listing::of(&repo)?;
    let tokenizer_json = listing.require(sft_tokenize::TOKENIZER_FILE)?;
    let tokenizer_config = listing.optional(sft_tokenize::TOKENIZER_CONFIG_FILE)?;
    let name = adapter.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let export = sft_export::GgufExport {
        ty,
        name,
        tokenizer_json: &tokenizer_json,
        tokenizer_config: tokenizer_config.as_deref(),
    };
    sft_export::export_gguf(&merged, &config, &export, out)?;
    tracing::info!(base = %base, adapter = %adapter.display(), out = %out.display(), ty = ty.name(), "exported GGUF");
    Ok(())
}
