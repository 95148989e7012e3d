//! The error type of tokenization.

use std::path::PathBuf;

use sft_data::Location;

/// What can go wrong loading a tokenizer or encoding examples.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizeError {
    /// A tokenization setting is out of range; `key` names it within its section.
    #[error("{key}: {message}")]
    InvalidConfig {
        /// The key, e.g. `pad_token`.
        key: &'static str,
        /// What was expected.
        message: String,
    },
    /// The repo could not be listed or a file fetched, or it has no `tokenizer.json`.
    #[error(transparent)]
    Repo(#[from] sft_repo::RepoError),
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
    #[error("{}: not a valid tokenizer.json: {source}", path.display())]
    TokenizerFile {
        /// The file.
        path: PathBuf,
        /// The `tokenizers` crate's error.
        #[source]
        source: tokenizers::Error,
    },
    /// `tokenizer_config.json` does not parse.
    #[error("{}: {source}", path.display())]
    TokenizerConfig {
        /// The file.
        path: PathBuf,
        /// serde_json's error, with the line and column.
        #[source]
        source: serde_json::Error,
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
