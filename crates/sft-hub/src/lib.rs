//! # sft-hub
//!
//! Hugging Face Hub access for sft-rs, behind the seam of the `sft-repo` crate, [`Repo`]: `list` the files of a
//! repo, `get` a local path for one of them. Two implementations, chosen at run time by [`AnyRepo::open`]:
//!
//! - [`LocalRepo`] (from `sft-repo`, re-exported), a directory on disk;
//! - [`HubRepo`], a model or dataset repo on the Hub through the `hf-hub` crate, downloading into the standard cache
//!   shared with Python, honouring `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN` (also from `.env`),
//!   revisions, and `HF_HUB_OFFLINE=1` (cache only). See [`HubSettings`].
//!
//! The data, tokenizer and model loaders take a `Repo`, so they never know where files come from; tests use a
//! local HTTP server speaking the Hub's routes (`sft_testkit::FakeHub`, a dev-dependency).
//!
//! The upload side, [`HubUploader`], creates repos and commits files (large and binary ones through Git LFS), as
//! `huggingface_hub`'s `create_commit` does. Transfers report to an optional process-wide [`TransferObserver`]
//! (progress bars).
#![deny(missing_docs)]

mod error;
mod hub;
mod progress;
mod repo;
mod retry;
mod settings;
mod upload;

pub use error::{HubError, Result};
pub use hub::HubRepo;
pub use progress::{Direction, TransferObserver, set_transfer_observer};
pub use repo::{AnyRepo, RepoKind};
pub use settings::{DEFAULT_DOWNLOAD_TIMEOUT, DEFAULT_ENDPOINT, HubSettings};
pub use sft_repo::{LocalRepo, Repo};
pub use upload::{CommitInfo, HubUploader, UploadFile, folder_files};
