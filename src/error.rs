//! The facade's error type: configuration errors plus the stages' own errors.

use std::path::PathBuf;

/// An error of the `sft` pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SftError {
    /// The run config is malformed or inconsistent. `key` is the full key path, such as
    /// `training_args.learning_rate`; `message` says what was expected.
    #[error("{}: {key}: {message}", path.display())]
    Config {
        /// The config file (or `<string>` for configs not read from a file).
        path: PathBuf,
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A JSON file (the run config, a saved run config, `init.json`, `trainer_state.json` for the card) does not
    /// parse; the error has the line and column.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The data stage failed.
    #[error(transparent)]
    Data(#[from] sft_data::DataError),
    /// Hub or repository access failed.
    #[error(transparent)]
    Hub(#[from] sft_hub::HubError),
    /// A repo could not be listed or a file fetched, or it lacks a file the layout needs.
    #[error(transparent)]
    Repo(#[from] sft_repo::RepoError),
    /// Tokenization failed.
    #[error(transparent)]
    Tokenize(#[from] sft_tokenize::TokenizeError),
    /// Loading or running the model failed.
    #[error(transparent)]
    Model(#[from] sft_model::ModelError),
    /// Adapters or quantization failed.
    #[error(transparent)]
    Peft(#[from] sft_peft::PeftError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] sft_train::TrainError),
    /// Training finished and the adapter is saved, but pushing it to the Hub failed.
    #[error("{source}; the adapter is saved in {} — retry with `sft push --adapter {}`", dir.display(), dir.display())]
    Push {
        /// The output directory with the adapter.
        dir: PathBuf,
        /// Why the push failed.
        #[source]
        source: Box<SftError>,
    },
    /// Collation failed.
    #[error(transparent)]
    Collate(#[from] sft_collate::CollateError),
    /// Exporting for serving failed.
    #[error(transparent)]
    Export(#[from] sft_export::ExportError),
}

impl SftError {
    /// A stage's error, with a file missing from a repo reported as a config error on `key`, the key whose value
    /// named the repo (`model_name`, `dataset_config.dataset_name`).
    pub(crate) fn at_key(key: &str, error: impl Into<SftError>) -> Self {
        let error = error.into();
        let missing = match &error {
            Self::Repo(e) => Some(e),
            Self::Model(sft_model::ModelError::Repo(e)) => Some(e),
            Self::Tokenize(sft_tokenize::TokenizeError::Repo(e)) => Some(e),
            Self::Data(sft_data::DataError::Repo(e)) => Some(e.as_ref()),
            _ => None,
        };
        match missing {
            Some(sft_repo::RepoError::Missing { repo, what, found }) => Self::Config {
                path: repo.into(),
                key: key.to_owned(),
                message: format!("no {what} in the repo; files found: {}", found.join(", ")),
            },
            _ => error,
        }
    }
}

/// `Result` with [`SftError`].
pub type Result<T, E = SftError> = std::result::Result<T, E>;
