//! A local repo that records what is fetched from it, to show a loader reads only the files it needs.

use std::path::PathBuf;
use std::sync::Mutex;

use sft_repo::{LocalRepo, LocalRepoError, Repo};

/// A [`LocalRepo`] whose `get` calls are recorded in order ([`RecordingRepo::fetched`]); `list` is not recorded.
#[derive(Debug)]
pub struct RecordingRepo {
    inner: LocalRepo,
    fetched: Mutex<Vec<String>>,
}

impl RecordingRepo {
    /// The repo rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { inner: LocalRepo::new(dir), fetched: Mutex::new(Vec::new()) }
    }

    /// Every file asked for with `get`, in order (also those that failed).
    pub fn fetched(&self) -> Vec<String> {
        self.fetched.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Repo for RecordingRepo {
    type Error = LocalRepoError;

    fn id(&self) -> String {
        format!("recording:{}", self.inner.id())
    }

    fn list(&self) -> Result<Vec<String>, LocalRepoError> {
        self.inner.list()
    }

    fn get(&self, file: &str) -> Result<PathBuf, LocalRepoError> {
        self.fetched.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(file.to_owned());
        self.inner.get(file)
    }
}
