//! A repo with its file listing, read once: what the loaders use to find the files of a layout.

use std::path::PathBuf;

use crate::Repo;
use crate::error::RepoError;

/// A repo and its listing, fetched once. The loaders ask it whether a file exists and fetch only what they use.
#[derive(Debug)]
pub struct Listing<'r, R: Repo + ?Sized> {
    repo: &'r R,
    files: Vec<String>,
}

impl<'r, R: Repo + ?Sized> Listing<'r, R> {
    /// Lists `repo`.
    pub fn of(repo: &'r R) -> Result<Self, RepoError> {
        let files = repo.list().map_err(|e| fetch_error(repo, None, e))?;
        Ok(Self { repo, files })
    }

    /// The repo's [`Repo::id`].
    pub fn id(&self) -> String {
        self.repo.id()
    }

    /// Every file, sorted.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Whether the repo has `file`.
    pub fn has(&self, file: &str) -> bool {
        self.files.iter().any(|f| f == file)
    }

    /// A local path for `file`, which the layout requires: an error listing the repo's files if it is absent.
    pub fn require(&self, file: &str) -> Result<PathBuf, RepoError> {
        if !self.has(file) {
            return Err(self.missing(file));
        }
        self.get(file)
    }

    /// A local path for `file` if the repo has it.
    pub fn optional(&self, file: &str) -> Result<Option<PathBuf>, RepoError> {
        if self.has(file) { self.get(file).map(Some) } else { Ok(None) }
    }

    /// A local path for `file`, fetched without looking at the listing (for files another file names, such as the
    /// shards of an index).
    pub fn get(&self, file: &str) -> Result<PathBuf, RepoError> {
        self.repo.get(file).map_err(|e| fetch_error(self.repo, Some(file), e))
    }

    /// The error for a required file (or set of alternatives, `what`) the repo does not have.
    pub fn missing(&self, what: &str) -> RepoError {
        RepoError::Missing { repo: self.repo.id(), what: what.to_owned(), found: self.files.clone() }
    }
}

fn fetch_error<R: Repo + ?Sized>(repo: &R, file: Option<&str>, error: R::Error) -> RepoError {
    RepoError::Fetch { repo: repo.id(), file: file.map(str::to_owned), source: Box::new(error) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalRepo;

    #[test]
    fn requires_fetches_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("README.md"), "").unwrap();
        let repo = LocalRepo::new(dir.path());
        let listing = Listing::of(&repo).unwrap();
        assert_eq!(listing.files(), ["README.md", "config.json"]);
        assert_eq!(listing.require("config.json").unwrap(), dir.path().join("config.json"));
        assert_eq!(listing.optional("tokenizer.json").unwrap(), None);
        let err = listing.require("tokenizer.json").unwrap_err();
        assert_eq!(err.to_string(), format!("{}: no tokenizer.json; files found: README.md, config.json", repo.id()));
        // A fetch failure keeps the implementation's error.
        let err = listing.get("shard-2.safetensors").unwrap_err();
        let RepoError::Fetch { file: Some(file), source, .. } = &err else { panic!("{err:?}") };
        assert_eq!(file, "shard-2.safetensors");
        assert!(source.downcast_ref::<crate::LocalRepoError>().is_some());
        assert_eq!(err.to_string(), format!("{}: no file `shard-2.safetensors`", dir.path().display()));
    }
}
