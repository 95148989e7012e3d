//! `tokenizer_config.json` and the special tokens (BOS, EOS, PAD) resolved to ids.

use std::path::Path;

use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::error::{Result, TokenizeError};

/// A special token as `tokenizer_config.json` writes it: a string, or an `AddedToken` object with `content`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TokenSpec {
    Text(String),
    Added { content: String },
}

impl TokenSpec {
    fn content(self) -> String {
        match self {
            Self::Text(s) | Self::Added { content: s } => s,
        }
    }
}

/// `chat_template`: one template, or a list of named ones (the one named `default` is used).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TemplateSpec {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Debug, Clone, Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

/// The keys of `tokenizer_config.json` this crate reads; all others are transformers' business and ignored.
#[derive(Debug, Default, Deserialize)]
struct TokenizerConfigFile {
    #[serde(default)]
    bos_token: Option<TokenSpec>,
    #[serde(default)]
    eos_token: Option<TokenSpec>,
    #[serde(default)]
    pad_token: Option<TokenSpec>,
    #[serde(default)]
    chat_template: Option<TemplateSpec>,
}

/// What the tokenizer's files say, before ids are resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenizerConfig {
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub pad_token: Option<String>,
    pub chat_template: Option<String>,
}

impl TokenizerConfig {
    /// Reads `tokenizer_config.json` at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenizeError::Io { path: path.into(), source })?;
        let file: TokenizerConfigFile = serde_json::from_str(&text)
            .map_err(|source| TokenizeError::TokenizerConfig { path: path.into(), source })?;
        let chat_template = match file.chat_template {
            None => None,
            Some(TemplateSpec::One(t)) => Some(t),
            Some(TemplateSpec::Named(list)) => list.into_iter().find(|t| t.name == "default").map(|t| t.template),
        };
        Ok(Self {
            bos_token: file.bos_token.map(TokenSpec::content),
            eos_token: file.eos_token.map(TokenSpec::content),
            pad_token: file.pad_token.map(TokenSpec::content),
            chat_template,
        })
    }
}

/// Special tokens chosen by the run config, overriding the tokenizer's (TRL's `eos_token` / `pad_token`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokenOverrides {
    /// End-of-sequence token text (`training_args.eos_token`).
    pub eos_token: Option<String>,
    /// Padding token text (`training_args.pad_token`).
    pub pad_token: Option<String>,
}

/// A special token: its text and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialToken {
    /// The token's text, e.g. `<|end_of_text|>`.
    pub text: String,
    /// Its id in the vocabulary.
    pub id: u32,
}

/// The special tokens of a tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence, if the tokenizer has one.
    pub bos: Option<SpecialToken>,
    /// End of sequence: appended to every completion and supervised.
    pub eos: SpecialToken,
    /// Padding. Equal to `eos` only when the tokenizer has no pad token (with a warning at load).
    pub pad: SpecialToken,
    /// Whether `pad` fell back to EOS.
    pub pad_is_eos_fallback: bool,
}

impl SpecialTokens {
    /// Resolves the tokens named by `config` (from `config_path`) and `overrides` in `tokenizer`'s vocabulary.
    pub(crate) fn resolve(
        tokenizer: &Tokenizer,
        config: &TokenizerConfig,
        config_path: &str,
        overrides: &SpecialTokenOverrides,
    ) -> Result<Self> {
        let lookup = |text: &str, key: String| -> Result<SpecialToken> {
            tokenizer.token_to_id(text).map(|id| SpecialToken { text: text.to_owned(), id }).ok_or_else(|| {
                TokenizeError::SpecialToken { key, message: format!("`{text}` is not in the tokenizer's vocabulary") }
            })
        };
        let bos = match &config.bos_token {
            Some(t) => Some(lookup(t, format!("{config_path}: bos_token"))?),
            None => None,
        };
        let eos = match (&overrides.eos_token, &config.eos_token) {
            (Some(t), _) => lookup(t, "training_args.eos_token".into())?,
            (None, Some(t)) => lookup(t, format!("{config_path}: eos_token"))?,
            (None, None) => {
                return Err(TokenizeError::SpecialToken {
                    key: "training_args.eos_token".into(),
                    message: format!("the tokenizer names no EOS token ({config_path}); set this key"),
                });
            }
        };
        let (pad, pad_is_eos_fallback) = match (&overrides.pad_token, &config.pad_token) {
            (Some(t), _) => (lookup(t, "training_args.pad_token".into())?, false),
            (None, Some(t)) => (lookup(t, format!("{config_path}: pad_token"))?, false),
            (None, None) => {
                tracing::warn!(
                    eos = %eos.text,
                    "the tokenizer has no pad token; padding with EOS (padded positions never carry loss, but set \
                     training_args.pad_token to a dedicated token if the vocabulary has one)"
                );
                (eos.clone(), true)
            }
        };
        Ok(Self { bos, eos, pad, pad_is_eos_fallback })
    }
}
