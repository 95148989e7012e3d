//! The error type of adapters: configuration, injection, files.

use std::path::PathBuf;

/// What can go wrong configuring, injecting, saving or loading an adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeftError {
    /// A `LoraConfig` value is out of range; `key` is the field (`r`, `target_modules`, …).
    #[error("lora_config.{key}: {message}")]
    InvalidConfig {
        /// The field.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `target_modules` (or `modules_to_save`) names something the model does not have.
    #[error("{message}; the model's linear modules are: {available}")]
    Target {
        /// What did not match.
        message: String,
        /// The model's projection names (layer 0, then the count of layers).
        available: String,
    },
    /// A JSON file does not parse, or a value cannot be written as JSON.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error (with the line and column when parsing).
        #[source]
        source: serde_json::Error,
    },
    /// An adapter directory or file is malformed, incomplete or for another base model.
    #[error("{}: {message}", path.display())]
    Adapter {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An error about the adapter in the file `path`: a target module its `adapter_config.json` names that the
    /// model lacks. (The errors about its tensors name `adapter_model.safetensors` themselves.)
    #[error("{}: {source}", path.display())]
    InAdapter {
        /// The adapter's `adapter_config.json`.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<PeftError>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A weight could not be quantized, or the quantization settings are not supported.
    #[error("quantization: {0}")]
    Quantization(String),
    /// An error from the model crate (reading tensors, writing safetensors).
    #[error(transparent)]
    Model(#[from] sft_model::ModelError),
}

/// `Result` with [`PeftError`].
pub type Result<T, E = PeftError> = std::result::Result<T, E>;

pub(crate) fn invalid(key: &str, message: impl Into<String>) -> PeftError {
    PeftError::InvalidConfig { key: key.into(), message: message.into() }
}
