//! The errors of the seam. Written by hand (no `thiserror`) to keep the crate free of dependencies.

use std::error::Error;
use std::fmt;
use std::path::PathBuf;

/// A loader's view of a repo's failure: the repo's id, the file (none for the listing), and the implementation's
/// error; or a file the layout needs that the repo does not have.
///
/// `Fetch` is transparent: it displays as the implementation's error (which names the repo and the file) and
/// `source()` continues with that error's source; the error itself is the `source` field (downcast it for the
/// implementation's variants).
#[derive(Debug)]
#[non_exhaustive]
pub enum RepoError {
    /// Listing the repo or fetching one of its files failed.
    Fetch {
        /// The repo's [`crate::Repo::id`].
        repo: String,
        /// The file asked for; `None` for the listing.
        file: Option<String>,
        /// The implementation's error.
        source: Box<dyn Error + Send + Sync>,
    },
    /// The repo has no file the layout requires.
    Missing {
        /// The repo's [`crate::Repo::id`].
        repo: String,
        /// What was looked for, e.g. `tokenizer.json` or `model.safetensors or model.safetensors.index.json`.
        what: String,
        /// Every file the repo has, for the message.
        found: Vec<String>,
    },
}

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch { source, .. } => write!(f, "{source}"),
            Self::Missing { repo, what, found } => {
                write!(f, "{repo}: no {what}; files found: ")?;
                if found.is_empty() { f.write_str("none") } else { f.write_str(&found.join(", ")) }
            }
        }
    }
}

impl Error for RepoError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Fetch { source, .. } => source.source(),
            Self::Missing { .. } => None,
        }
    }
}

/// An error of [`crate::LocalRepo`].
#[derive(Debug)]
#[non_exhaustive]
pub enum LocalRepoError {
    /// A file or directory could not be read.
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The directory has no such file, or the path leaves the directory.
    NotFound {
        /// The repo directory.
        dir: PathBuf,
        /// The file asked for.
        file: String,
    },
}

impl fmt::Display for LocalRepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::NotFound { dir, file } => write!(f, "{}: no file `{file}`", dir.display()),
        }
    }
}

impl Error for LocalRepoError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::NotFound { .. } => None,
        }
    }
}
