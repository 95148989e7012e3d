//! Resolving `dataset_config.dataset_name` to files — a local file, a local directory or a Hub dataset repo — and
//! loading them with `sft-data`.

use std::path::{Path, PathBuf};

use sft_data::{DataConfig, DatasetSplits, SplitFiles, load_splits};
use sft_hub::{AnyRepo, HubSettings, Repo, RepoKind};

use crate::error::{Result, SftError};

/// Loads the splits of `config`'s data set.
///
/// - An existing file is the train split.
/// - An existing directory, or a Hub dataset repo (`owner/name`, at `dataset_config.revision`), is listed and its
///   data files are assigned to splits by name ([`SplitFiles::pick`]); Hub files are downloaded into the HF cache
///   (or read from it offline, per `hub`).
/// - A name that looks like a path (starts with `.`, `/` or `~`, or ends in a data-file extension) but does not
///   exist is an error naming the path, not a Hub lookup.
pub fn load_dataset(config: &DataConfig, hub: &HubSettings) -> Result<DatasetSplits> {
    let _span = tracing::info_span!("load_dataset", dataset = %config.dataset_name).entered();
    let name = config.dataset_name.as_str();
    let path = Path::new(name);
    if path.is_file() {
        reject_revision(config)?;
        return Ok(load_splits(config, &SplitFiles { train: vec![path.to_path_buf()], ..SplitFiles::default() })?);
    }
    if !path.exists() && looks_like_path(name) {
        return Err(SftError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory (dataset_name)"),
        });
    }
    if path.is_dir() {
        reject_revision(config)?;
    }
    let repo = AnyRepo::open(name, RepoKind::Dataset, config.revision.as_deref(), hub)?;
    let listing = repo.list()?;
    let picked = SplitFiles::pick(listing.clone());
    if picked.is_empty() {
        return Err(SftError::Config {
            path: PathBuf::from(repo.id()),
            key: "dataset_config.dataset_name".into(),
            message: format!("no .csv, .jsonl, .json or .parquet files; files found: {}", listing.join(", ")),
        });
    }
    let fetch = |files: Vec<String>| -> Result<Vec<PathBuf>> {
        files.iter().map(|f| repo.get(f).map_err(SftError::from)).collect()
    };
    tracing::info!(repo = %repo.id(), train = ?picked.train, validation = ?picked.validation, test = ?picked.test, "data files");
    let files =
        SplitFiles { train: fetch(picked.train)?, validation: fetch(picked.validation)?, test: fetch(picked.test)? };
    Ok(load_splits(config, &files)?)
}

fn reject_revision(config: &DataConfig) -> Result<()> {
    match &config.revision {
        Some(_) => Err(SftError::Config {
            path: PathBuf::from(&config.dataset_name),
            key: "dataset_config.revision".into(),
            message: "a revision applies to Hub dataset repos, not to local data".into(),
        }),
        None => Ok(()),
    }
}

fn looks_like_path(name: &str) -> bool {
    name.starts_with(['.', '/', '~']) || sft_data::DataFormat::from_path(Path::new(name)).is_some()
}
