//! Hub repo kinds, and [`AnyRepo`]: a `sft_repo::Repo` on the Hub or on disk, chosen from a name.

use std::path::{Path, PathBuf};

use sft_repo::{LocalRepo, Repo};

use crate::error::{HubError, Result};
use crate::hub::HubRepo;
use crate::settings::HubSettings;

/// The kind of a Hub repo (the Hub keeps models and datasets in separate namespaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RepoKind {
    /// A model repo (`owner/name`).
    Model,
    /// A dataset repo (`datasets/owner/name`).
    Dataset,
}

impl RepoKind {
    /// The Hub's plural name, used in URLs and in cache folder names (`datasets--owner--name`).
    pub fn plural(self) -> &'static str {
        match self {
            Self::Model => "models",
            Self::Dataset => "datasets",
        }
    }

    /// The Hub's singular name (`model`, `dataset`), as `type` in repo creation.
    pub fn singular(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Dataset => "dataset",
        }
    }

    /// The prefix of the kind's web and Git URLs: `` for models, `datasets/` for datasets.
    pub fn url_prefix(self) -> &'static str {
        match self {
            Self::Model => "",
            Self::Dataset => "datasets/",
        }
    }
}

/// A repo chosen at run time: a local directory if `name` is an existing path, otherwise a Hub repo.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyRepo {
    /// A directory on disk.
    Local(LocalRepo),
    /// A repo on the Hub (or in its cache, offline); boxed, it carries a client.
    Hub(Box<HubRepo>),
}

impl AnyRepo {
    /// Opens `name`: an existing directory is a [`LocalRepo`] (then `revision` must be `None`); anything else must
    /// be a Hub repo id `owner/name` of `kind`, read at `revision` (default `main`) with `settings`.
    pub fn open(name: &str, kind: RepoKind, revision: Option<&str>, settings: &HubSettings) -> Result<Self> {
        let path = Path::new(name);
        if path.is_dir() {
            if let Some(revision) = revision {
                return Err(HubError::InvalidRepoId {
                    id: format!("{name}@{revision} (a revision applies to Hub repos, not to local directories)"),
                });
            }
            return Ok(Self::Local(LocalRepo::new(path)));
        }
        Ok(Self::Hub(Box::new(HubRepo::new(settings, kind, name, revision)?)))
    }
}

impl Repo for AnyRepo {
    type Error = HubError;

    fn id(&self) -> String {
        match self {
            Self::Local(r) => r.id(),
            Self::Hub(r) => r.id(),
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        match self {
            Self::Local(r) => Ok(r.list()?),
            Self::Hub(r) => r.list(),
        }
    }

    fn get(&self, file: &str) -> Result<PathBuf> {
        match self {
            Self::Local(r) => Ok(r.get(file)?),
            Self::Hub(r) => r.get(file),
        }
    }
}
