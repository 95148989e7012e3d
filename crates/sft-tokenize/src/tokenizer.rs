//! A `tokenizers` tokenizer with its special tokens and chat template.

use std::path::Path;

use sft_repo::{Listing, LocalRepo, Repo};
use tokenizers::{Encoding, Tokenizer};

use crate::chat::ChatTemplate;
use crate::error::{Result, TokenizeError};
use crate::special::{SpecialTokenOverrides, SpecialTokens, TokenizerConfig};

/// The tokenizer pipeline (`tokenizers`' JSON).
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// transformers' tokenizer settings: special tokens, `chat_template`.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// The chat template as its own file (transformers ≥ 4.43 saves it there).
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
/// Every file of a tokenizer as `save_pretrained` writes it: what a merged model or an adapter directory copies
/// from the base so it can be loaded on its own.
pub const TOKENIZER_FILES: &[&str] =
    &[TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, "special_tokens_map.json", CHAT_TEMPLATE_FILE];

/// A tokenizer ready for SFT: the `tokenizers` pipeline (normalizer, pre-tokenizer, model, post-processor), the
/// resolved special tokens, and the chat template if the model has one.
#[derive(Debug)]
pub struct SftTokenizer {
    tokenizer: Tokenizer,
    special: SpecialTokens,
    chat_template: Option<ChatTemplate>,
}

impl SftTokenizer {
    /// Loads the tokenizer of a repo (a directory, or a Hub model repo through `sft_hub`): `tokenizer.json` (an
    /// error listing the repo's files if absent), plus `tokenizer_config.json` (special tokens, `chat_template`)
    /// and `chat_template.jinja` (newer transformers save the template there) when the repo has them. Only those
    /// files are fetched.
    pub fn from_repo<R: Repo + ?Sized>(repo: &R, overrides: &SpecialTokenOverrides) -> Result<Self> {
        Self::from_listing(&Listing::of(repo)?, overrides)
    }

    /// [`SftTokenizer::from_repo`] with the repo's listing already read (a caller that reads other files of the
    /// repo too lists it once).
    pub fn from_listing<R: Repo + ?Sized>(listing: &Listing<'_, R>, overrides: &SpecialTokenOverrides) -> Result<Self> {
        let tokenizer_json = listing.require(TOKENIZER_FILE)?;
        let config = listing.optional(TOKENIZER_CONFIG_FILE)?;
        let template = listing.optional(CHAT_TEMPLATE_FILE)?;
        Self::from_files(&tokenizer_json, config.as_deref(), template.as_deref(), overrides)
    }

    /// [`SftTokenizer::from_repo`] on a local Hugging Face tokenizer directory.
    pub fn from_dir(dir: &Path, overrides: &SpecialTokenOverrides) -> Result<Self> {
        Self::from_repo(&LocalRepo::new(dir), overrides)
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
            .map_err(|source| TokenizeError::TokenizerFile { path: tokenizer_json.into(), source })?;
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
