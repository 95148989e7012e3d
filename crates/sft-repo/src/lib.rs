//! # sft-repo
//!
//! The seam between the loaders and where files come from. A [`Repo`] is a set of files addressed by
//! repo-relative `/`-separated paths: [`Repo::list`] them, [`Repo::get`] a local path for one. [`LocalRepo`] is a
//! directory on disk; `sft_hub::HubRepo` is a model or dataset repo on the Hugging Face Hub (downloading into the
//! HF cache) and `sft_hub::AnyRepo` picks one of the two from a name.
//!
//! The loaders (`sft_model::LlamaForCausalLM::from_repo`, `sft_tokenize::SftTokenizer::from_repo`,
//! `sft_data::SplitFiles::from_repo`) read the Hugging Face layout through a [`Listing`] and report a repo's
//! failure as a [`RepoError`], which keeps the implementation's own error as its source.
//!
//! The crate has no dependencies (the errors implement `std::error::Error` by hand for that reason), so a loader
//! depending on it pulls in no HTTP client.
#![deny(missing_docs)]

mod error;
mod listing;
mod local;

pub use error::{LocalRepoError, RepoError};
pub use listing::Listing;
pub use local::{LocalRepo, list_dir};

use std::path::PathBuf;

/// A repository of files: model weights and tokenizers, or data files.
///
/// Contract: `list` returns every file as a repo-relative `/`-separated path, sorted, hidden files (a component
/// starting with `.`) left out; `get(file)` returns a local path holding the bytes of `file`, fetching it first if
/// the repo is remote, or an error naming the repo and the file. `get` of a path outside the repo (`..`, absolute)
/// is an error.
pub trait Repo {
    /// The implementation's error, kept as the source of a loader's [`RepoError`].
    type Error: std::error::Error + Send + Sync + 'static;
    /// A name for messages: a directory path, or `datasets/owner/name@rev` for a Hub repo.
    fn id(&self) -> String;
    /// Every file, as a repo-relative `/`-separated path, sorted.
    fn list(&self) -> Result<Vec<String>, Self::Error>;
    /// A local path holding `file`, fetched first if needed.
    fn get(&self, file: &str) -> Result<PathBuf, Self::Error>;
}

impl<R: Repo + ?Sized> Repo for &R {
    type Error = R::Error;

    fn id(&self) -> String {
        (**self).id()
    }

    fn list(&self) -> Result<Vec<String>, Self::Error> {
        (**self).list()
    }

    fn get(&self, file: &str) -> Result<PathBuf, Self::Error> {
        (**self).get(file)
    }
}
