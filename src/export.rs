//! Export for serving: an adapter merged into its base and written as GGUF (`sft export gguf`).

use burn::prelude::*;
use sft_hub::HubSettings;

use crate::error::Result;
use crate::pipeline::load_adapted;

/// Merges `adapter` into its base (`base`, default: the adapter's `base_model_name_or_path`) and writes the result
/// to `out` as a GGUF file with matrices in `ty` (f32, f16, bf16, q8_0) and the base's tokenizer: the model
/// llama.cpp, Ollama and LM Studio run. A type this project does not write is an error naming it, before anything
/// is loaded; an existing `out` is refused.
///
/// With `modelfile`, an Ollama `Modelfile` is written there too (`FROM` the GGUF, `TEMPLATE` for the base's chat
/// format when it is a known one, `PARAMETER stop` for every stop id of the base); it must not exist either.
pub fn export_gguf(
    adapter: &std::path::Path,
    base: Option<&str>,
    out: &std::path::Path,
    ty: &str,
    modelfile: Option<&std::path::Path>,
    hub: &HubSettings,
) -> Result<()> {
    let ty = checked_output(out, ty)?;
    if let Some(path) = modelfile.filter(|p| p.exists()) {
        return Err(sft_export::ExportError::from(sft_gguf::GgufError::Exists { path: path.to_owned() }).into());
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
    if let Some(path) = modelfile {
        let tokenizer = sft_tokenize::SftTokenizer::from_listing(&listing, &Default::default())?;
        let (_, stop) = crate::stop::generation_settings(&listing, &config, &tokenizer)?;
        let stops: Vec<String> = stop.iter().filter_map(|&id| tokenizer.inner().id_to_token(id)).collect();
        let template = match listing.optional(sft_tokenize::CHAT_TEMPLATE_FILE)? {
            Some(file) => std::fs::read_to_string(&file).ok(),
            None => tokenizer_config
                .as_deref()
                .and_then(|file| std::fs::read(file).ok())
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|v| v["chat_template"].as_str().map(str::to_owned)),
        };
        // FROM relative to the Modelfile when they share a directory, else absolute.
        let same_dir = out.parent() == path.parent();
        let from = match (same_dir, out.file_name()) {
            (true, Some(name)) => format!("./{}", name.to_string_lossy()),
            _ => std::path::absolute(out).unwrap_or_else(|_| out.to_owned()).display().to_string(),
        };
        let text = sft_export::ollama::modelfile(&from, template.as_deref(), &stops);
        sft_model::write_atomic(path, text.as_bytes())?;
    }
    tracing::info!(base = %base, adapter = %adapter.display(), out = %out.display(), ty = ty.name(), "exported GGUF");
    Ok(())
}

/// Writes `adapter` alone as llama.cpp's GGUF LoRA at `out` (`llama-cli -m base.gguf --lora out`), factors in `ty`;
/// the base (`base`, default: the adapter's `base_model_name_or_path`) is read for its `config.json` only.
/// `modules_to_save` and factors that do not fit the base are errors; an existing `out` is refused.
pub fn export_lora_gguf(
    adapter: &std::path::Path,
    base: Option<&str>,
    out: &std::path::Path,
    ty: &str,
    hub: &HubSettings,
) -> Result<()> {
    let ty = checked_output(out, ty)?;
    let base = crate::pipeline::adapter_base(adapter, base)?;
    let config = crate::load_model_config(&base, hub)?;
    sft_export::export_lora_gguf(&config, adapter, ty, out)?;
    Ok(())
}

/// The GGUF type named `ty`, and `out` free: errors naming the option or the file before anything is read.
fn checked_output(out: &std::path::Path, ty: &str) -> Result<sft_gguf::GgmlType> {
    let ty = sft_gguf::GgmlType::parse(ty).ok_or_else(|| {
        let known: Vec<&str> = sft_gguf::GgmlType::ALL.iter().map(|t| t.name()).collect();
        sft_export::ExportError::Unsupported {
            what: "--type".into(),
            message: format!("`{ty}` is not a GGUF type written here ({})", known.join(", ")),
        }
    })?;
    if out.exists() {
        return Err(sft_export::ExportError::from(sft_gguf::GgufError::Exists { path: out.to_owned() }).into());
    }
    Ok(ty)
}

/// The deployment checks of `adapter` for `target` (`vllm`, `llamacpp`, `ollama`): each broken rule with what to
/// change ([`sft_export::check`]); the base (`base`, default: the adapter's `base_model_name_or_path`) is read for its
/// `config.json` only.
pub fn check_adapter(
    adapter: &std::path::Path,
    base: Option<&str>,
    target: &str,
    hub: &HubSettings,
) -> Result<Vec<sft_export::check::Finding>> {
    let target = sft_export::check::Target::parse(target).ok_or_else(|| sft_export::ExportError::Unsupported {
        what: "--target".into(),
        message: format!("`{target}`: expected vllm, llamacpp or ollama"),
    })?;
    let base = crate::pipeline::adapter_base(adapter, base)?;
    let config = crate::load_model_config(&base, hub)?;
    Ok(sft_export::check::check_adapter(adapter, target, config.family.architecture())?)
}
