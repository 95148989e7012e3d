//! The tokenization keys of a run config (TRL's `SFTConfig` keeps them in `training_args`; the facade maps them
//! here).

use serde::{Deserialize, Serialize};

use crate::encode::{EncodeOptions, Masking, TruncationMode};
use crate::error::{Result, TokenizeError};
use crate::special::SpecialTokenOverrides;

/// How examples are cut and which special tokens override the tokenizer's. Names and defaults are TRL's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeConfig {
    /// Which end of a too-long example to keep.
    #[serde(default)]
    pub truncation_mode: TruncationMode,
    /// EOS token text, overriding the tokenizer's.
    #[serde(default)]
    pub eos_token: Option<String>,
    /// Padding token text, overriding the tokenizer's.
    #[serde(default)]
    pub pad_token: Option<String>,
}

impl TokenizeConfig {
    /// Checks the values; an error names the key (`eos_token`, `pad_token`).
    pub fn validate(&self) -> Result<()> {
        for (key, token) in [("eos_token", &self.eos_token), ("pad_token", &self.pad_token)] {
            if token.as_ref().is_some_and(String::is_empty) {
                return Err(TokenizeError::InvalidConfig { key, message: "expected a token's text".into() });
            }
        }
        Ok(())
    }

    /// The special tokens to use instead of the tokenizer's.
    pub fn overrides(&self) -> SpecialTokenOverrides {
        SpecialTokenOverrides { eos_token: self.eos_token.clone(), pad_token: self.pad_token.clone() }
    }

    /// Encoding settings: examples of at most `max_length` tokens (EOS included), loss on the tokens `masking`
    /// selects.
    pub fn encode_options(&self, max_length: usize, masking: Masking) -> EncodeOptions {
        EncodeOptions { max_length, truncation_mode: self.truncation_mode, masking }
    }
}
