//! The error type of model loading and use.

use std::path::PathBuf;

/// What can go wrong loading a checkpoint or running the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The repo could not be listed or a file fetched, or it lacks a file of the layout.
    #[error(transparent)]
    Repo(#[from] sft_repo::RepoError),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` does not parse, or a value is out of range; `key` names the field.
    #[error("{}: {key}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// The field.
        key: String,
        /// What is wrong.
        message: String,
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
    /// A safetensors file (or the shard index) is malformed or truncated.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint lacks a tensor the model needs.
    #[error("missing tensor `{name}` in the checkpoint ({files})")]
    MissingTensor {
        /// The tensor's HF name.
        name: String,
        /// The checkpoint files searched.
        files: String,
    },
    /// The checkpoint has tensors the model does not use.
    #[error("{files}: unexpected tensors: {names}")]
    UnexpectedTensors {
        /// The checkpoint files that hold them, comma separated.
        files: String,
        /// The tensors' names, comma separated.
        names: String,
    },
    /// A tensor has another shape than the config implies.
    #[error("{}: tensor `{name}`: expected shape {expected:?}, found {found:?}", path.display())]
    ShapeMismatch {
        /// The file that holds it.
        path: PathBuf,
        /// The tensor's HF name.
        name: String,
        /// Shape from the config.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has a dtype that cannot be loaded.
    #[error("{}: tensor `{name}`: unsupported dtype {dtype} (expected F32, F16 or BF16)", path.display())]
    UnsupportedDtype {
        /// The file that holds it.
        path: PathBuf,
        /// The tensor's HF name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// Inputs that do not fit together (shapes of ids, masks, labels).
    #[error("invalid input: {0}")]
    Input(String),
}

/// `Result` with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
