//! A directory on disk seen as a repo.

use std::path::{Component, Path, PathBuf};

use crate::Repo;
use crate::error::LocalRepoError;

/// A local directory: `list` walks it recursively (hidden files and folders skipped, symlinks followed), `get`
/// joins the path.
#[derive(Debug, Clone)]
pub struct LocalRepo {
    dir: PathBuf,
}

impl LocalRepo {
    /// The repo rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Repo for LocalRepo {
    type Error = LocalRepoError;

    fn id(&self) -> String {
        self.dir.display().to_string()
    }

    fn list(&self) -> Result<Vec<String>, LocalRepoError> {
        list_dir(&self.dir)
    }

    /// `file` must be a relative path inside the directory (no `..`, no absolute path) naming an existing file.
    fn get(&self, file: &str) -> Result<PathBuf, LocalRepoError> {
        let relative = Path::new(file);
        let inside = relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let path = self.dir.join(relative);
        if !inside || !path.is_file() {
            return Err(LocalRepoError::NotFound { dir: self.dir.clone(), file: file.to_owned() });
        }
        Ok(path)
    }
}

/// The `/`-separated paths, relative to `dir`, of the non-hidden files under `dir` (recursively, following
/// symlinks), sorted.
pub fn list_dir(dir: &Path) -> Result<Vec<String>, LocalRepoError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), LocalRepoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalRepoError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(io(&path))?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_recursively_and_refuses_to_escape() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/.hidden")).unwrap();
        std::fs::write(dir.path().join("data/train.csv"), "a").unwrap();
        std::fs::write(dir.path().join("data/.hidden/x.csv"), "a").unwrap();
        std::fs::write(dir.path().join("README.md"), "a").unwrap();
        std::fs::write(dir.path().join(".gitattributes"), "a").unwrap();
        let repo = LocalRepo::new(dir.path());
        assert_eq!(repo.list().unwrap(), ["README.md", "data/train.csv"]);
        assert_eq!(repo.get("data/train.csv").unwrap(), dir.path().join("data/train.csv"));
        assert!(matches!(repo.get("../etc/passwd"), Err(LocalRepoError::NotFound { .. })));
        assert!(matches!(repo.get("/etc/passwd"), Err(LocalRepoError::NotFound { .. })));
        let err = repo.get("missing.csv").unwrap_err();
        assert!(err.to_string().ends_with("no file `missing.csv`"), "{err}");
        assert!(matches!(list_dir(&dir.path().join("absent")), Err(LocalRepoError::Io { .. })));
    }
}
