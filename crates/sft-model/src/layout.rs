//! The Hugging Face model layout, read through the `Repo` seam: `config.json`, and `model.safetensors` or
//! `model.safetensors.index.json` with the shards it names. The one place that knows these names for reading.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_repo::{Listing, LocalRepo, Repo};

use crate::checkpoint::Checkpoint;
use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::model::LlamaForCausalLM;

/// The model's configuration file.
pub const CONFIG_FILE: &str = "config.json";
/// The weights in one file.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The index of sharded weights (its `weight_map` names the shards).
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

impl LlamaConfig {
    /// Reads and checks the repo's `config.json` (an error listing the repo's files if it has none).
    pub fn from_repo<R: Repo + ?Sized>(repo: &Listing<'_, R>) -> Result<Self> {
        Self::from_file(&repo.require(CONFIG_FILE)?)
    }
}

impl Checkpoint {
    /// Opens the repo's weights: `model.safetensors`, else the shards named by `model.safetensors.index.json`
    /// (each fetched; a shard the index names but the repo lacks is an error naming the index). Neither file is
    /// an error listing the repo's files.
    pub fn from_repo<R: Repo + ?Sized>(repo: &Listing<'_, R>) -> Result<Self> {
        if repo.has(WEIGHTS_FILE) {
            return Self::open(&[repo.get(WEIGHTS_FILE)?]);
        }
        if !repo.has(WEIGHTS_INDEX_FILE) {
            return Err(repo.missing(&format!("{WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE}")).into());
        }
        let index = repo.get(WEIGHTS_INDEX_FILE)?;
        let shards = Self::shards(&index)?;
        if let Some(absent) = shards.iter().find(|shard| !repo.has(shard)) {
            return Err(ModelError::Checkpoint {
                path: index,
                message: format!("the index names shard `{absent}`, which does not exist"),
            });
        }
        let paths = shards.iter().map(|shard| repo.get(shard)).collect::<std::result::Result<Vec<_>, _>>()?;
        Self::open(&paths)
    }

    /// [`Checkpoint::from_repo`] on a local Hugging Face model directory.
    pub fn open_dir(dir: &std::path::Path) -> Result<Self> {
        Self::from_repo(&Listing::of(&LocalRepo::new(dir))?)
    }
}

impl LlamaForCausalLM {
    /// Loads the model of a repo (a directory, or a Hub repo through `sft_hub`) onto `device`, weights converted
    /// to `dtype`: [`LlamaConfig::from_repo`], then [`Checkpoint::from_repo`], then [`LlamaForCausalLM::load`];
    /// every tensor of the checkpoint must be used.
    pub fn from_repo<R: Repo + ?Sized>(repo: &R, device: &Device, dtype: FloatDType) -> Result<(LlamaConfig, Self)> {
        let listing = Listing::of(repo)?;
        let config = LlamaConfig::from_repo(&listing)?;
        let mut checkpoint = Checkpoint::from_repo(&listing)?;
        let model = Self::load(&config, &mut checkpoint, device, dtype)?;
        checkpoint.finish()?;
        Ok((config, model))
    }

    /// [`LlamaForCausalLM::from_repo`] on a local Hugging Face model directory.
    pub fn from_pretrained(dir: &std::path::Path, device: &Device, dtype: FloatDType) -> Result<(LlamaConfig, Self)> {
        Self::from_repo(&LocalRepo::new(dir), device, dtype)
    }
}
