//! Which data files make up which split, by file name, as the `datasets` library decides.

use std::path::{Path, PathBuf};

use sft_repo::{Listing, Repo, RepoError};

use crate::error::{DataError, Result};
use crate::sources::DataFormat;

/// The data files of each split. `T` is a local path or a path inside a Hub repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitFiles<T> {
    /// Files of the train split (the pool that sampling and carving apply to).
    pub train: Vec<T>,
    /// Files of a validation split provided by the source.
    pub validation: Vec<T>,
    /// Files of a test split provided by the source.
    pub test: Vec<T>,
}

impl<T> Default for SplitFiles<T> {
    fn default() -> Self {
        Self { train: Vec::new(), validation: Vec::new(), test: Vec::new() }
    }
}

/// Split keywords, as in `datasets.data_files.SPLIT_KEYWORDS`.
const TRAIN: &[&str] = &["train", "training"];
const VALIDATION: &[&str] = &["validation", "valid", "dev", "val"];
const TEST: &[&str] = &["test", "testing", "eval", "evaluation"];
/// Characters that may surround a keyword (`datasets`' `NON_WORDS_CHARS` plus the path separator).
const SEPARATORS: &str = "-._ 0123456789/";

impl<T> SplitFiles<T> {
    /// Picks the data files (by extension: `.csv`, `.jsonl`, `.ndjson`, `.json`, `.parquet`) among `paths` and
    /// assigns each to a split by name, the way `datasets` resolves a repo without a loading script: a file belongs
    /// to a split when a split keyword appears in its path delimited by separators (`-._ `, digits or `/`) on both
    /// sides — `LegalClause_train.csv`, `data/test-00000-of-00001.parquet`, `dev/part.jsonl` — checked in the order
    /// train, validation, test (keywords: train|training, validation|valid|dev|val, test|testing|eval|evaluation,
    /// case-insensitive). When no file names a split, every data file is train. Paths keep their given order.
    pub fn pick(paths: impl IntoIterator<Item = T>) -> Self
    where
        T: AsRef<str>,
    {
        let mut files = Self::default();
        let mut unnamed = Vec::new();
        for path in paths {
            if DataFormat::from_path(Path::new(path.as_ref())).is_none() {
                continue;
            }
            let lower = path.as_ref().to_ascii_lowercase();
            if has_keyword(&lower, TRAIN) {
                files.train.push(path);
            } else if has_keyword(&lower, VALIDATION) {
                files.validation.push(path);
            } else if has_keyword(&lower, TEST) {
                files.test.push(path);
            } else {
                unnamed.push(path);
            }
        }
        if files.train.is_empty() && files.validation.is_empty() && files.test.is_empty() {
            files.train = unnamed;
        } else if !unnamed.is_empty() {
            tracing::warn!(files = unnamed.len(), "data files that name no split are ignored, as `datasets` does");
        }
        files
    }

    /// Whether no split has any file.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.validation.is_empty() && self.test.is_empty()
    }
}

impl SplitFiles<PathBuf> {
    /// The data files of a repo (a directory, or a Hub dataset repo through `sft_hub`): the listing assigned to
    /// splits by [`SplitFiles::pick`], then only the picked files fetched. A repo with no data file is an error
    /// listing its files.
    pub fn from_repo<R: Repo + ?Sized>(repo: &R) -> Result<Self> {
        let listing = Listing::of(repo)?;
        let picked = SplitFiles::pick(listing.files());
        if picked.is_empty() {
            return Err(listing.missing(".csv, .jsonl, .json or .parquet files").into());
        }
        tracing::info!(repo = %listing.id(), train = ?picked.train, validation = ?picked.validation, test = ?picked.test, "data files");
        let fetch = |files: Vec<&String>| -> std::result::Result<Vec<PathBuf>, RepoError> {
            files.into_iter().map(|f| listing.get(f)).collect()
        };
        Ok(Self { train: fetch(picked.train)?, validation: fetch(picked.validation)?, test: fetch(picked.test)? })
    }
}

impl From<RepoError> for DataError {
    fn from(source: RepoError) -> Self {
        Self::Repo(Box::new(source))
    }
}

fn has_keyword(path: &str, keywords: &[&str]) -> bool {
    let is_sep = |c: Option<char>| c.is_some_and(|c| SEPARATORS.contains(c));
    keywords.iter().any(|k| {
        path.match_indices(k).any(|(at, _)| {
            let before = path[..at].chars().next_back();
            let after = path[at + k.len()..].chars().next();
            (before.is_none() || is_sep(before)) && is_sep(after)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_splits_like_datasets() {
        let files = SplitFiles::pick([
            ".gitattributes",
            "README.md",
            "LegalClause_train.csv",
            "LegalClause_test.csv",
            "data/validation-00000-of-00001.parquet",
            "dev/part.jsonl",
            "trainer_notes.csv",
            "contest.json",
        ]);
        assert_eq!(files.train, ["LegalClause_train.csv"]);
        assert_eq!(files.validation, ["data/validation-00000-of-00001.parquet", "dev/part.jsonl"]);
        assert_eq!(files.test, ["LegalClause_test.csv"]);
    }

    #[test]
    fn files_naming_no_split_are_all_train() {
        let files = SplitFiles::pick(["a.csv", "b.jsonl", "notes.txt"]);
        assert_eq!(files.train, ["a.csv", "b.jsonl"]);
        assert!(files.validation.is_empty() && files.test.is_empty());
    }
}
