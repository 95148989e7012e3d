//! The tokenizer as GGUF metadata (`tokenizer.ggml.*`), from the base model's `tokenizer.json` and
//! `tokenizer_config.json`, in the two forms llama.cpp tokenizes:
//!
//! - byte-level BPE (`gpt2`: Llama 3, Qwen, SmolLM2, Phi-4): tokens, types and the merges;
//! - SentencePiece-style BPE with `byte_fallback` (`llama`: Llama 2, Mistral v0.1, Phi-3, Gemma): tokens with `▁`
//!   for spaces, `<0xXX>` byte tokens, and scores. llama.cpp's SentencePiece tokenizer merges the adjacent pair
//!   whose joined text is the token with the highest score, where Hugging Face's BPE applies the merge of lowest
//!   rank; a token's score is therefore minus the rank of the first merge that makes it, which makes the two pick
//!   the same merges. (llama.cpp's own converter reads the scores from `tokenizer.model`; without one it writes
//!   -1000 for every token, which tokenizes differently.)

use std::path::Path;

use serde_json::Value as Json;
use sft_gguf::Value;
use sft_model::LlamaConfig;

use crate::error::{ExportError, Result};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// The split patterns of byte-level BPE tokenizers llama.cpp knows, with its names for them
/// (`tokenizer.ggml.pre`): llama.cpp tokenizes with its own copy of each family's pattern, chosen by this name.
const PRE_TOKENIZERS: [(&str, &str); 3] = [
    // Llama 3 (and the fixtures' tokenizer): digits in runs of up to three.
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "llama-bpe",
    ),
    // Qwen2, Qwen2.5, Qwen3: single digits.
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "qwen2",
    ),
    // GPT-4o's o200k (Phi-4-mini).
    (
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "gpt-4o",
    ),
];

/// `tokenizer.ggml.pre` for a byte-level BPE `tokenizer.json`: the name llama.cpp gives its split pattern, or
/// `gpt-2` for a plain `ByteLevel` pre-tokenizer (GPT-2's own pattern). llama.cpp's converter recognises a
/// tokenizer by hashing a tokenization; this recognises the pattern itself. Another pattern is an error naming it:
/// llama.cpp would split the text differently from training.
pub fn pre_tokenizer(json: &Json, path: &Path) -> Result<&'static str> {
    let pre = &json["pre_tokenizer"];
    let parts = parts(pre, "pretokenizers");
    let pattern = parts.iter().find(|p| p["type"] == "Split").and_then(|p| p["pattern"]["Regex"].as_str());
    match pattern {
        Some(pattern) => {
            PRE_TOKENIZERS.iter().find(|(known, _)| *known == pattern).map(|(_, name)| *name).ok_or_else(|| {
                ExportError::Unsupported {
                    what: format!("{}: pre_tokenizer", path.display()),
                    message: format!(
                        "the split pattern {pattern:?} is not one llama.cpp is known to apply (Llama 3's, Qwen2's, \
                     GPT-4o's); exported, the model would see text split differently from training"
                    ),
                }
            })
        }
        None if parts.len() == 1 && pre["type"] == "ByteLevel" && pre["use_regex"] != false => Ok("gpt-2"),
        None => Err(ExportError::Unsupported {
            what: format!("{}: pre_tokenizer", path.display()),
            message: format!("{pre} is not a pre-tokenizer llama.cpp is known to apply"),
        }),
    }
}

/// The steps of a `tokenizer.json` normalizer or pre-tokenizer: the items of its `Sequence` (under `list`), else
/// the one step itself.
fn parts<'a>(value: &'a Json, list: &str) -> Vec<&'a Json> {
    match value[list].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![value],
    }
}

fn read(path: &Path) -> Result<Json> {
    let error = |message: String| ExportError::Tokenizer { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| error(format!("not JSON: {e}")))
}

/// Whether a SentencePiece-style tokenizer puts `▁` before the text: a `Prepend("▁")` normalizer (Llama 2's
/// legacy form) or a `Metaspace` pre-tokenizer that prepends (Mistral, newer Llama 2 conversions); Gemma's only
/// replaces spaces.
fn adds_space_prefix(json: &Json) -> bool {
    let prepends = parts(&json["normalizer"], "normalizers")
        .into_iter()
        .any(|n| n["type"] == "Prepend" && n["prepend"] == "\u{2581}");
    let metaspace = parts(&json["pre_tokenizer"], "pretokenizers").into_iter().any(|p| {
        p["type"] == "Metaspace"
            && (matches!(p["prepend_scheme"].as_str(), Some("first" | "always")) || p["add_prefix_space"] == true)
    });
    prepends || metaspace
}

/// `<0xXX>`, a SentencePiece byte token.
fn is_byte_token(token: &str) -> bool {
    token.len() == 6
        && token.starts_with("<0x")
        && token.ends_with('>')
        && token[3..5].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The SentencePiece scores of `names` from the BPE `merges` (in rank order, `"a b"`): minus the rank of the first
/// merge that makes a token; 0 for special, byte and unused tokens; tokens no merge makes (single characters, the
/// alphabet) score below every merge, as in SentencePiece's own models.
fn spm_scores(names: &[String], types: &[i32], merges: &[String]) -> Vec<f32> {
    let mut rank: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (r, merge) in merges.iter().enumerate() {
        if let Some((a, b)) = merge.split_once(' ') {
            rank.entry(format!("{a}{b}")).or_insert(r);
        }
    }
    let floor = -(merges.len() as f32) - 1.0;
    names
        .iter()
        .zip(types)
        .map(|(name, &ty)| match (ty, rank.get(name)) {
            (NORMAL, Some(&r)) => -(r as f32),
            (NORMAL, None) => floor,
            _ => 0.0,
        })
        .collect()
}

/// The tokenizer metadata of a model with `config` whose tokenizer is `tokenizer_json` (and `tokenizer_config`,
/// for the special tokens and `add_bos_token`; `chat_template`, the template's text): tokens for every embedding
/// row (rows the tokenizer has no token for are `[PAD<id>]`, unused), their types (added special tokens are
/// control tokens, other added tokens user-defined; for SentencePiece-style vocabularies also the unknown token and
/// the `<0xXX>` byte tokens), the merges (byte-level BPE) or the scores and whether a space is prepended
/// (SentencePiece-style), the BOS / EOS / PAD ids, whether BOS is added, the chat template. A vocabulary that is
/// not BPE (Unigram, WordPiece) is an error naming the file.
pub fn tokenizer_metadata(
    config: &LlamaConfig,
    tokenizer_json: &Path,
    tokenizer_config: Option<&Path>,
    chat_template: Option<&str>,
) -> Result<Vec<(String, Value)>> {
    let error = |message: String| ExportError::Tokenizer { path: tokenizer_json.to_owned(), message };
    let json = read(tokenizer_json)?;
    let model = &json["model"];
    if model["type"].as_str() != Some("BPE") {
        return Err(ExportError::Unsupported {
            what: format!("{}: model.type", tokenizer_json.display()),
            message: format!(
                "a {} vocabulary is not exported to GGUF (BPE is, byte-level or with byte_fallback)",
                model["type"].as_str().unwrap_or("unknown")
            ),
        });
    }
    let sentencepiece = model["byte_fallback"].as_bool() == Some(true);
    let unknown = model["unk_token"].as_str();
    let size = config.vocab_size;
    let mut tokens: Vec<Option<(String, i32)>> = vec![None; size];
    let vocab = model["vocab"].as_object().ok_or_else(|| error("model.vocab is not an object".into()))?;
    for (token, id) in vocab {
        let id = id.as_u64().ok_or_else(|| error(format!("model.vocab: `{token}` has no id")))? as usize;
        let kind = match () {
            _ if sentencepiece && Some(token.as_str()) == unknown => UNKNOWN,
            _ if sentencepiece && is_byte_token(token) => BYTE,
            _ => NORMAL,
        };
        if let Some(slot) = tokens.get_mut(id) {
            *slot = Some((token.clone(), kind));
        }
    }
    for added in json["added_tokens"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str()) else {
            return Err(error(format!("added_tokens: an entry without id or content: {added}")));
        };
        let kind = match () {
            _ if sentencepiece && Some(content) == unknown => UNKNOWN,
            _ if added["special"].as_bool() == Some(true) => CONTROL,
            _ => USER_DEFINED,
        };
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
    if sentencepiece && !(0..=255u8).all(|b| names.iter().any(|n| *n == format!("<0x{b:02X}>"))) {
        return Err(error(
            "byte_fallback is set but model.vocab lacks some of the 256 byte tokens <0x00>..<0xFF> llama.cpp falls \
             back to"
                .into(),
        ));
    }

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

    let mut out = if sentencepiece {
        let scores = spm_scores(&names, &types, &merges);
        let unknown_id = types.iter().position(|&t| t == UNKNOWN);
        let mut out = vec![
            ("tokenizer.ggml.model".to_owned(), Value::string("llama")),
            ("tokenizer.ggml.pre".to_owned(), Value::string("default")),
            ("tokenizer.ggml.tokens".to_owned(), Value::strings(names)),
            ("tokenizer.ggml.scores".to_owned(), Value::f32s(scores)),
            ("tokenizer.ggml.token_type".to_owned(), Value::i32s(types)),
            ("tokenizer.ggml.add_space_prefix".to_owned(), Value::Bool(adds_space_prefix(&json))),
        ];
        if let Some(id) = unknown_id {
            out.push(("tokenizer.ggml.unknown_token_id".to_owned(), Value::U32(id as u32)));
        }
        out
    } else {
        vec![
            ("tokenizer.ggml.model".to_owned(), Value::string("gpt2")),
            ("tokenizer.ggml.pre".to_owned(), Value::string(pre_tokenizer(&json, tokenizer_json)?)),
            ("tokenizer.ggml.tokens".to_owned(), Value::strings(names)),
            ("tokenizer.ggml.token_type".to_owned(), Value::i32s(types)),
            ("tokenizer.ggml.merges".to_owned(), Value::strings(merges)),
        ]
    };
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
