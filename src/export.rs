//! From adapter to served model: the merge (`sft merge`, shard at a time, with its check), GGUF export
//! (`sft export gguf`) and the deployment checks (`sft export check`).

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_hub::HubSettings;
use sft_tokenize::SftTokenizer;

use crate::error::{Result, SftError};
use crate::pipeline::{adapter_base, load_adapted, write_generation_config};

/// Merges `adapter` into its base (`base`, default: the adapter's `base_model_name_or_path`) and writes the result
/// to `out` as a GGUF file of file type `ty` (f32, f16, bf16, q8_0, q4_0, q4_k_m: [`sft_export::FileType`]) with the
/// base's tokenizer: the model llama.cpp, Ollama and LM Studio run. A type this project does not write is an error
/// naming it, before anything is loaded; an existing `out` is refused.
///
/// `name` is `general.name` (default: the adapter directory's name). The base's config and tokenizer are read and
/// checked against what llama.cpp takes before any weight is loaded.
///
/// With `modelfile`, an Ollama `Modelfile` is written there too (`FROM` the GGUF, `TEMPLATE` for the base's chat
/// format when it is a known one, `PARAMETER stop` for every stop id of the base); it must not exist either.
pub fn export_gguf(
    adapter: &std::path::Path,
    base: Option<&str>,
    out: &std::path::Path,
    ty: &str,
    name: Option<&str>,
    modelfile: Option<&std::path::Path>,
    hub: &HubSettings,
) -> Result<()> {
    let ty = parsed(ty, &sft_export::FileType::ALL.map(|t| (t.name(), t)))?;
    checked_output(out)?;
    if let Some(path) = modelfile.filter(|p| p.exists()) {
        return Err(sft_export::ExportError::from(sft_gguf::GgufError::Exists { path: path.to_owned() }).into());
    }
    // Everything the file needs besides the weights is read and checked before the weights are loaded.
    let base = adapter_base(adapter, base)?;
    let repo = crate::model::open_model_repo(&base, hub)?;
    let listing = sft_repo::Listing::of(&repo)?;
    let base_config = sft_model::LlamaConfig::from_repo(&listing)?;
    let tokenizer_json = listing.require(sft_tokenize::TOKENIZER_FILE)?;
    let tokenizer_config = listing.optional(sft_tokenize::TOKENIZER_CONFIG_FILE)?;
    let tokenizer = SftTokenizer::from_listing(&listing, &Default::default())?;
    let template = tokenizer.chat_template().map(sft_tokenize::ChatTemplate::source);
    let name = name
        .map(str::to_owned)
        .unwrap_or_else(|| adapter.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let export = sft_export::GgufExport {
        ty,
        name,
        tokenizer_json: &tokenizer_json,
        tokenizer_config: tokenizer_config.as_deref(),
        chat_template: template,
    };
    let metadata = sft_export::check_gguf_export(&base_config, &export)?;
    // One tensor in memory at a time, never the model (sft_peft::MergedCheckpoint).
    let mut checkpoint = sft_model::Checkpoint::from_repo(&listing)?;
    let mut merged = sft_peft::MergedCheckpoint::open(&base_config, &mut checkpoint, adapter)?;
    sft_export::export_merged_gguf(&mut merged, metadata, out)?;
    if let Some(path) = modelfile {
        let (_, stop) = crate::stop::generation_settings(&listing, &base_config, &tokenizer)?;
        let stops: Vec<String> = stop.iter().filter_map(|&id| tokenizer.inner().id_to_token(id)).collect();
        // FROM relative to the Modelfile when they share a directory, else absolute.
        let same_dir = out.parent() == path.parent();
        let from = match (same_dir, out.file_name()) {
            (true, Some(name)) => format!("./{}", name.to_string_lossy()),
            _ => std::path::absolute(out).unwrap_or_else(|_| out.to_owned()).display().to_string(),
        };
        let renderings = tokenizer.chat_template().map(probe_renderings).transpose()?;
        let chat = template.zip(renderings.as_ref()).map(|(template, (user_only, with_system))| {
            sft_export::ollama::Chat { template, user_only, with_system, eos_token: &tokenizer.special().eos.text }
        });
        let text = sft_export::ollama::modelfile(&from, chat.as_ref(), &stops);
        sft_model::write_atomic(path, text.as_bytes())?;
    }
    tracing::info!(base = %base, adapter = %adapter.display(), out = %out.display(), ty = ty.name(), "exported GGUF");
    Ok(())
}

/// [`sft_export::ollama::probe_renderings`] of `template`.
fn probe_renderings(template: &sft_tokenize::ChatTemplate) -> Result<(String, String)> {
    Ok(sft_export::ollama::probe_renderings(|chat| {
        let messages: Vec<sft_data::Message> = chat
            .iter()
            .map(|&(role, content)| sft_data::Message { role: role.into(), content: content.into() })
            .collect();
        template.render(&messages, true)
    })?)
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
    // Any GGUF type by name; sft_export says why the 4-bit ones do not suit a LoRA.
    let ty = parsed(ty, &sft_gguf::GgmlType::ALL.map(|t| (t.name(), t)))?;
    checked_output(out)?;
    let base = adapter_base(adapter, base)?;
    let config = crate::load_model_config(&base, hub)?;
    sft_export::export_lora_gguf(&config, adapter, ty, out)?;
    Ok(())
}

/// The `--type` named `ty` (case-insensitive) among `known` (names and values): an error naming the option and
/// listing them otherwise.
fn parsed<T: Copy>(ty: &str, known: &[(&str, T)]) -> Result<T> {
    let found = known.iter().find(|(name, _)| name.eq_ignore_ascii_case(ty)).map(|&(_, t)| t);
    Ok(found.ok_or_else(|| {
        let names: Vec<String> = known.iter().map(|(name, _)| name.to_lowercase()).collect();
        sft_export::ExportError::Unsupported {
            what: "--type".into(),
            message: format!("`{ty}` is not a GGUF type written here ({})", names.join(", ")),
        }
    })?)
}

/// `out` free: an error naming the file before anything is read.
fn checked_output(out: &std::path::Path) -> Result<()> {
    if out.exists() {
        return Err(sft_export::ExportError::from(sft_gguf::GgufError::Exists { path: out.to_owned() }).into());
    }
    Ok(())
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
    let base = adapter_base(adapter, base)?;
    let config = crate::load_model_config(&base, hub)?;
    Ok(sft_export::check::check_adapter(adapter, target, config.family.architecture())?)
}

/// PEFT's `merge_and_unload` + `save_pretrained`, one shard at a time ([`sft_peft::merge_checkpoint`]): reads the
/// base model (`base`, else the adapter's `base_model_name_or_path`) tensor by tensor in f32, folds every
/// `scaling · B·A` into its weight, and writes a plain HF checkpoint (`config.json`, `model.safetensors` or shards of
/// at most 5 GB with `model.safetensors.index.json`, the base's tokenizer files copied byte for byte, and a
/// `generation_config.json` with every stop id of the base) to `out`; the peak memory is one shard, not the model.
/// An adapter trained on an NF4 base is merged into the original dense weights: nothing is re-quantized.
pub fn merge_adapter(
    adapter: &std::path::Path,
    base: Option<&str>,
    out: &std::path::Path,
    hub: &HubSettings,
) -> Result<()> {
    let base = adapter_base(adapter, base)?;
    let repo = crate::model::open_model_repo(&base, hub)?;
    let listing = sft_repo::Listing::of(&repo)?;
    let config = sft_model::LlamaConfig::from_repo(&listing)?;
    // One shard in memory at a time, never the model (sft_peft::merge_checkpoint).
    let mut checkpoint = sft_model::Checkpoint::from_repo(&listing)?;
    sft_peft::merge_checkpoint(&config, &mut checkpoint, adapter, out, sft_peft::MAX_SHARD_BYTES)?;
    for &name in sft_tokenize::TOKENIZER_FILES {
        if let Some(from) = listing.optional(name)? {
            std::fs::copy(&from, out.join(name)).map_err(|source| SftError::Io { path: out.join(name), source })?;
        }
    }
    // Every stop id of the base, so a runtime loading the merged model stops where the base does.
    let tokenizer = SftTokenizer::from_listing(&listing, &Default::default())?;
    let stop = write_generation_config(&listing, &config, &tokenizer, out)?;
    tracing::info!(base = %base, adapter = %adapter.display(), out = %out.display(), stop = ?stop, "merged");
    Ok(())
}

/// The texts [`verify_merge`] runs (BOS added as the tokenizer does).
pub const VERIFY_PROMPTS: [&str; 3] =
    ["The Supplier shall keep all Confidential Information", "Hello, world.", "1, 2, 3, 4, 5"];

/// The merged model in `merged` against the base with the adapter applied (`adapter`, base as [`adapter_base`]):
/// the largest |logit difference| over every position of [`VERIFY_PROMPTS`]. Loads both models (so it costs what an
/// in-memory merge costs); `sft merge --verify` prints it.
pub fn verify_merge(
    adapter: &std::path::Path,
    base: Option<&str>,
    merged: &std::path::Path,
    hub: &HubSettings,
) -> Result<f32> {
    let device = Device::flex();
    let (base, _, adapted) = load_adapted(adapter, base, hub, &device)?;
    let (_, plain) = crate::load_model(&merged.display().to_string(), hub, &device, FloatDType::F32, None)?;
    let repo = sft_hub::AnyRepo::open(&base, sft_hub::RepoKind::Model, None, hub)?;
    let tokenizer = SftTokenizer::from_repo(&repo, &Default::default())?;
    let mut worst = 0.0f32;
    for prompt in VERIFY_PROMPTS {
        let ids = tokenizer.ids(prompt, true)?;
        let input = sft_model::ModelInput::new(&ids, [1, ids.len()], None, None, None, &device)?;
        let difference = (adapted.forward(&input) - plain.forward(&input)).abs().max();
        worst = worst.max(difference.into_scalar::<f32>());
    }
    Ok(worst)
}
