//! The error type of tokenization.

use std::path::PathBuf;

use sft_data::Location;

/// What can go wrong loading a tokenizer or encoding examples.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizeError {
    /// A tokenizer or tokenizer-config file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `tokenizer.json` does not parse as a `tokenizers` tokenizer.
    #[error("{}: not a valid tokenizer.json: {message}", path.display())]
    TokenizerFile {
        /// The file.
        path: PathBuf,
        /// What the `tokenizers` crate said.
        message: String,
    },
    /// `tokenizer_config.json` does not parse.
    #[error("{}: {message}", path.display())]
    TokenizerConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A special token named by the tokenizer config or the run config is not in the vocabulary, or none is named.
    #[error("{key}: {message}")]
    SpecialToken {
        /// Where the token was (or should be) named: `training_args.pad_token`, `tokenizer_config.json: eos_token`, …
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The `tokenizers` library failed to encode or decode (outside any example: a prompt, generated ids).
    #[error("the tokenizer failed {operation}: {source}")]
    Tokenizer {
        /// `encoding` or `decoding`.
        operation: &'static str,
        /// The library's error.
        #[source]
        source: tokenizers::Error,
    },
    /// The tokenizer failed on the text of an example.
    #[error("{location}: tokenization failed: {source}")]
    Encode {
        /// The example.
        location: Location,
        /// The library's error.
        #[source]
        source: tokenizers::Error,
    },
    /// The chat template is missing, does not compile, fails to render, or renders conversation prefixes that are
    /// not prefixes of the whole conversation (so assistant turns cannot be located).
    #[error("{location}chat template: {message}")]
    ChatTemplate {
        /// The example, if the problem is specific to one (`"file: row n: "`), else empty.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The masking mode does not apply to this kind of example.
    #[error("{location}: {message}")]
    Unsupported {
        /// The example.
        location: Location,
        /// What is not supported.
        message: String,
    },
}

/// `Result` with [`TokenizeError`].
pub type Result<T, E = TokenizeError> = std::result::Result<T, E>;
