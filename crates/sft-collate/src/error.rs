//! The error type of collation.

/// What can go wrong building batches.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollateError {
    /// An example is longer than a packing bin (examples must be truncated to `max_length` first).
    #[error("example {index} has {len} tokens, more than the packing length {capacity}")]
    TooLong {
        /// Index of the example.
        index: usize,
        /// Its length.
        len: usize,
        /// The bin capacity.
        capacity: usize,
    },
    /// A split to batch has no examples.
    #[error("the split has no examples")]
    EmptySplit,
    /// An example of a split has no tokens.
    #[error("example {index} has no tokens")]
    EmptyExample {
        /// Its index in the split.
        index: usize,
    },
    /// A batch size of 0.
    #[error("the batch size must be at least 1")]
    ZeroBatchSize,
    /// A setting is out of range; `key` is its config key path.
    #[error("{key}: {message}")]
    Invalid {
        /// Config key path.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`CollateError`].
pub type Result<T, E = CollateError> = std::result::Result<T, E>;
