//! Resolving `dataset_config.dataset_name` to files — a local file, a local directory or a Hub dataset repo — and
//! loading them with `sft-data`.

use std::path::{Path, PathBuf};

use sft_data::{DataConfig, DatasetSplits, SplitFiles, load_splits};
use sft_hub::{AnyRepo, HubSettings, RepoKind};

use crate::error::{Result, SftError};

/// Loads the splits of `config`'s data set.
///
/// - An existing file is the train split.
/// - An existing directory, or a Hub dataset repo (`owner/name`, at `dataset_config.revision`), is read with
///   [`SplitFiles::from_repo`]: its data files are assigned to splits by name; Hub files are downloaded into the HF
///   cache (or read from it offline, per `hub`).
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
    let files = SplitFiles::from_repo(&repo).map_err(|e| SftError::at_key("dataset_config.dataset_name", e))?;
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
