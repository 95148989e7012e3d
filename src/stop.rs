//! Stop tokens: every end-of-sequence id a model declares — in `generation_config.json`, in `config.json` and in
//! its tokenizer — used when generating and written into a merged model's `generation_config.json`, so runtimes
//! stop where the model was trained to stop (Llama 3 Instruct ends turns with `<|eot_id|>`, not its EOS token).

use std::path::Path;

use sft_model::LlamaConfig;
use sft_repo::{Listing, Repo};
use sft_tokenize::SftTokenizer;

use crate::error::{Result, SftError};

/// The model's generation settings file.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

/// The generation settings of the model in `listing` (a local directory or a Hub model repo, whose `config` and
/// `tokenizer` are given): its `generation_config.json` as a JSON object (empty if it has none), and the stop ids in
/// order of first mention: that file's `eos_token_id` (an id or a list), then `config.eos_token_id`, then the
/// tokenizer's EOS.
pub fn generation_settings<R: Repo + ?Sized>(
    listing: &Listing<'_, R>,
    config: &LlamaConfig,
    tokenizer: &SftTokenizer,
) -> Result<(serde_json::Map<String, serde_json::Value>, Vec<u32>)> {
    let file = match listing.optional(GENERATION_CONFIG_FILE)? {
        Some(path) => read_object(&path)?,
        None => serde_json::Map::new(),
    };
    let declared = match file.get("eos_token_id") {
        Some(serde_json::Value::Number(n)) => n.as_u64().into_iter().collect(),
        Some(serde_json::Value::Array(ids)) => ids.iter().filter_map(serde_json::Value::as_u64).collect(),
        _ => Vec::new(),
    };
    let candidates = declared
        .into_iter()
        .filter_map(|id| u32::try_from(id).ok())
        .chain(config.eos_token_id.iter().copied())
        .chain([tokenizer.special().eos.id]);
    let mut stop: Vec<u32> = Vec::new();
    for id in candidates {
        if !stop.contains(&id) {
            stop.push(id);
        }
    }
    Ok((file, stop))
}

/// `generation_config.json` for an output of `model_name` (a merged model): the base's settings with
/// `eos_token_id` set to every stop id, and `bos_token_id` / `pad_token_id` from the tokenizer where the base's file
/// has none.
pub fn generation_config_json(
    mut base: serde_json::Map<String, serde_json::Value>,
    stop: &[u32],
    tokenizer: &SftTokenizer,
) -> serde_json::Value {
    let special = tokenizer.special();
    base.insert(
        "eos_token_id".into(),
        if stop.len() == 1 { serde_json::json!(stop[0]) } else { serde_json::json!(stop) },
    );
    if let Some(bos) = &special.bos {
        base.entry("bos_token_id").or_insert(serde_json::json!(bos.id));
    }
    base.entry("pad_token_id").or_insert(serde_json::json!(special.pad.id));
    serde_json::Value::Object(base)
}

fn read_object(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let bytes = std::fs::read(path).map_err(|source| SftError::Io { path: path.into(), source })?;
    match serde_json::from_slice(&bytes).map_err(|source| SftError::Json { path: path.into(), source })? {
        serde_json::Value::Object(object) => Ok(object),
        _ => Err(SftError::Config {
            path: path.into(),
            key: "(top level)".into(),
            message: "expected a JSON object".into(),
        }),
    }
}
