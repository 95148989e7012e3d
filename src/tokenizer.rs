//! Loading the model's tokenizer through the `Repo` seam (a local directory or a Hub model repo).

use sft_hub::{AnyRepo, HubSettings, RepoKind};
use sft_tokenize::{SftTokenizer, SpecialTokenOverrides};

use crate::error::{Result, SftError};

/// Loads the tokenizer of `model_name` (a local directory or a Hub model repo id) with
/// [`SftTokenizer::from_repo`]. `overrides` are the run config's `training_args.eos_token` / `pad_token`.
pub fn load_tokenizer(model_name: &str, hub: &HubSettings, overrides: &SpecialTokenOverrides) -> Result<SftTokenizer> {
    let _span = tracing::info_span!("load_tokenizer", model = %model_name).entered();
    let repo = AnyRepo::open(model_name, RepoKind::Model, None, hub)?;
    SftTokenizer::from_repo(&repo, overrides).map_err(|e| SftError::at_key("model_name", e))
}
