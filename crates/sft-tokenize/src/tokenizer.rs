//! A `tokenizers` tokenizer with its special tokens and chat template.

use std::path::Path;

use tokenizers::{Encoding, Tokenizer};

use crate::chat::ChatTemplate;
use crate::error::{Result, TokenizeError};
use crate::special::{SpecialTokenOverrides, SpecialTokens, TokenizerConfig};

/// A tokenizer ready for SFT: the `tokenizers` pipeline (normalizer, pre-tokenizer, model, post-processor), the
/// resolved special tokens, and the chat template if the model has one.
#[derive(Debug)]
pub struct SftTokenizer {
    tokenizer: Tokenizer,
    special: SpecialTokens,
    chat_template: Option<ChatTemplate>,
}

impl SftTokenizer {
    /// Loads a Hugging Face tokenizer directory: `tokenizer.json`, plus `tokenizer_config.json` (special tokens,
    /// `chat_template`) and `chat_template.jinja` (newer transformers save the template there) when present.
    pub fn from_dir(dir: &Path, overrides: &SpecialTokenOverrides) -> Result<Self> {
        let config = dir.join("tokenizer_config.json");
        let template = dir.join("chat_template.jinja");
        Self::from_files(
            &dir.join("tokenizer.json"),
            config.is_file().then_some(config.as_path()),
            template.is_file().then_some(template.as_path()),
            overrides,
        )
    }

    /// Loads `tokenizer.json`, the optional `tokenizer_config.json` and an optional Jinja chat-template file (which
    /// wins over the config's `chat_template`).
    pub fn from_files(
        tokenizer_json: &Path,
        tokenizer_config: Option<&Path>,
        chat_template_file: Option<&Path>,
        overrides: &SpecialTokenOverrides,
    ) -> Result<Self> {
        let bytes = std::fs::read(tokenizer_json)
            .map_err(|source| TokenizeError::Io { path: tokenizer_json.into(), source })?;
        let tokenizer = Tokenizer::from_bytes(&bytes)
            .map_err(|e| TokenizeError::TokenizerFile { path: tokenizer_json.into(), message: e.to_string() })?;
        let (mut config, config_name) = match tokenizer_config {
            Some(path) => (TokenizerConfig::read(path)?, path.display().to_string()),
            None => (TokenizerConfig::default(), "tokenizer_config.json (absent)".to_owned()),
        };
        if let Some(path) = chat_template_file {
            config.chat_template =
                Some(std::fs::read_to_string(path).map_err(|source| TokenizeError::Io { path: path.into(), source })?);
        }
        let special = SpecialTokens::resolve(&tokenizer, &config, &config_name, overrides)?;
        let chat_template = match config.chat_template {
            Some(source) => Some(ChatTemplate::new(source, &special)?),
            None => None,
        };
        Ok(Self { tokenizer, special, chat_template })
    }

    /// The special tokens.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The chat template, if the tokenizer has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Number of ids (including added tokens).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`; `add_special_tokens` runs the post-processor (which adds BOS for Llama tokenizers).
    pub fn ids(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        self.tokenizer
            .encode_fast(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|source| TokenizeError::Tokenizer { operation: "encoding", source })
    }

    /// The full encoding of `text`, with byte offsets into `text` for every token (special tokens added by the
    /// post-processor have empty offsets).
    pub fn encoding(&self, text: &str, add_special_tokens: bool) -> Result<Encoding> {
        self.tokenizer
            .encode(text, add_special_tokens)
            .map_err(|source| TokenizeError::Tokenizer { operation: "encoding", source })
    }

    /// Decodes `ids` to text, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, false).map_err(|source| TokenizeError::Tokenizer { operation: "decoding", source })
    }
}
