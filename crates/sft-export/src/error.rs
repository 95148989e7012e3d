//! Errors of exporting a model.

use std::path::PathBuf;

/// What can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The model or its config is something the target format cannot carry (yet).
    #[error("{what}: {message}")]
    Unsupported {
        /// The feature (`rope_scaling`, `tokenizer.json model`, …).
        what: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// An adapter file is missing or malformed.
    #[error("{}: {message}", path.display())]
    Adapter {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tokenizer file is missing or malformed.
    #[error("{}: {message}", path.display())]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing the GGUF file failed.
    #[error(transparent)]
    Gguf(#[from] sft_gguf::GgufError),
    /// Reading the PEFT adapter failed.
    #[error(transparent)]
    Peft(#[from] sft_peft::PeftError),
    /// Producing a tensor of the model failed.
    #[error(transparent)]
    Model(#[from] sft_model::ModelError),
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, ExportError>;
