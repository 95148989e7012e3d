//! Errors of reading and writing GGUF files.

use std::path::PathBuf;

/// What can go wrong with a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The output path exists already: nothing is overwritten.
    #[error("{}: the file exists already; remove it or choose another path", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// A metadata key or tensor name given twice, or a value that cannot be written.
    #[error("{what} `{name}`: {message}")]
    Invalid {
        /// `metadata key` or `tensor`.
        what: &'static str,
        /// The key or name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The source of a tensor's values failed while the file was written (the file is not created).
    #[error("tensor `{tensor}`: {source}")]
    Source {
        /// The tensor being written.
        tensor: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file is not a GGUF v3 file this crate reads, or is truncated.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset where it was found.
        message: String,
    },
    /// A tensor the file does not have.
    #[error("{}: no tensor `{name}`", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, GgufError>;
