//! The tokenizer as GGUF metadata (`tokenizer.ggml.*`), from the base model's `tokenizer.json` and
//! `tokenizer_config.json`, as llama.cpp's converter writes it for byte-level BPE vocabularies (`gpt2`: Llama 3,
//! Qwen, SmolLM2).

use std::path::Path;

use serde_json::Value as Json;
use sft_gguf::Value;
use sft_model::{LlamaConfig, ModelFamily};

use crate::error::{ExportError, Result};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// `tokenizer.ggml.pre`: the pre-tokenizer llama.cpp applies, by family (llama.cpp recognises it by hashing a
/// tokenization; these are the names its converter gives the families' tokenizers).
pub fn pre_tokenizer(family: ModelFamily) -> &'static str {
    match family {
        ModelFamily::Qwen2 | ModelFamily::Qwen3 => "qwen2",
        ModelFamily::Llama => "llama-bpe",
        _ => "default",
    }
}

fn read(path: &Path) -> Result<Json> {
    let error = |message: String| ExportError::Tokenizer { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| error(format!("not JSON: {e}")))
}

/// The tokenizer metadata of a model with `config` whose tokenizer is `tokenizer_json` (and `tokenizer_config`,
/// for the special tokens and `add_bos_token`; `chat_template`, the template's text): tokens for every embedding row (rows the tokenizer
/// has no token for are `[PAD<id>]`, unused), their types (added special tokens are control tokens, other added
/// tokens user-defined), the merges, the BOS / EOS / PAD ids, whether BOS is added, the chat template.
/// A vocabulary that is not byte-level BPE (SentencePiece-style, `byte_fallback`) is an error: it is not exported
/// yet.
pub fn tokenizer_metadata(
    config: &LlamaConfig,
    tokenizer_json: &Path,
    tokenizer_config: Option<&Path>,
    chat_template: Option<&str>,
) -> Result<Vec<(String, Value)>> {
    let error = |message: String| ExportError::Tokenizer { path: tokenizer_json.to_owned(), message };
    let json = read(tokenizer_json)?;
    let model = &json["model"];
    if model["type"].as_str() != Some("BPE") || model["byte_fallback"].as_bool() == Some(true) {
        return Err(ExportError::Unsupported {
            what: format!("{}: model", tokenizer_json.display()),
            message: format!(
                "a {} vocabulary{} is not exported to GGUF yet (byte-level BPE is: Llama 3, Qwen, SmolLM2)",
                model["type"].as_str().unwrap_or("unknown"),
                if model["byte_fallback"].as_bool() == Some(true) {
                    " with byte_fallback (SentencePiece-style)"
                } else {
                    ""
                }
            ),
        });
    }
    let size = config.vocab_size;
    let mut tokens: Vec<Option<(String, i32)>> = vec![None; size];
    let vocab = model["vocab"].as_object().ok_or_else(|| error("model.vocab is not an object".into()))?;
    for (token, id) in vocab {
        let id = id.as_u64().ok_or_else(|| error(format!("model.vocab: `{token}` has no id")))? as usize;
        if let Some(slot) = tokens.get_mut(id) {
            *slot = Some((token.clone(), NORMAL));
        }
    }
    for added in json["added_tokens"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str()) else {
            return Err(error(format!("added_tokens: an entry without id or content: {added}")));
        };
        let kind = if added["special"].as_bool() == Some(true) { CONTROL } else { USER_DEFINED };
        if let Some(slot) = tokens.get_mut(id as usize) {
            *slot = Some((content.to_owned(), kind));
        }
    }
    let (names, types): (Vec<String>, Vec<i32>) = tokens
        .into_iter()
        .enumerate()
        .map(|(id, token)| token.unwrap_or_else(|| (format!("[PAD{id}]"), UNUSED)))
        .unzip();
    let merges: Vec<String> = model["merges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(pair) => match (pair.first().and_then(Json::as_str), pair.get(1).and_then(Json::as_str)) {
                (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                _ => Err(error(format!("model.merges: {m}"))),
            },
            other => Err(error(format!("model.merges: {other}"))),
        })
        .collect::<Result<_>>()?;

    let settings = match tokenizer_config {
        Some(path) => read(path)?,
        None => Json::Null,
    };
    let token_id = |key: &str| -> Option<u32> {
        let text = match &settings[key] {
            Json::String(s) => Some(s.as_str()),
            Json::Object(o) => o.get("content").and_then(Json::as_str),
            _ => None,
        }?;
        names.iter().position(|n| n == text).map(|i| i as u32)
    };
    let bos = token_id("bos_token").or(config.bos_token_id);
    let eos = token_id("eos_token").or(config.eos_token_id.first().copied());
    let pad = token_id("pad_token").or(config.pad_token_id);
    // BOS is added when the post-processor's template starts with it (Llama 3, the fixtures), else as
    // tokenizer_config.json says.
    let template_bos = json["post_processor"]["single"]
        .as_array()
        .or_else(|| json["post_processor"]["processors"].as_array()?.iter().find_map(|p| p["single"].as_array()))
        .and_then(|single| single.first())
        .and_then(|first| first["SpecialToken"]["id"].as_str())
        .and_then(|text| names.iter().position(|n| n == text))
        .map(|i| i as u32);
    let add_bos = template_bos.is_some_and(|id| Some(id) == bos) || settings["add_bos_token"].as_bool() == Some(true);

    let mut out = vec![
        ("tokenizer.ggml.model".to_owned(), Value::string("gpt2")),
        ("tokenizer.ggml.pre".to_owned(), Value::string(pre_tokenizer(config.family))),
        ("tokenizer.ggml.tokens".to_owned(), Value::strings(names)),
        ("tokenizer.ggml.token_type".to_owned(), Value::i32s(types)),
        ("tokenizer.ggml.merges".to_owned(), Value::strings(merges)),
    ];
    for (key, id) in [("bos_token_id", bos), ("eos_token_id", eos), ("padding_token_id", pad)] {
        if let Some(id) = id {
            out.push((format!("tokenizer.ggml.{key}"), Value::U32(id)));
        }
    }
    out.push(("tokenizer.ggml.add_bos_token".to_owned(), Value::Bool(add_bos)));
    out.push(("tokenizer.ggml.add_eos_token".to_owned(), Value::Bool(false)));
    if let Some(template) = chat_template {
        out.push(("tokenizer.chat_template".to_owned(), Value::string(template)));
    }
    Ok(out)
}
