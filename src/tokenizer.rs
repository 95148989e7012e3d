//! Loading the model's tokenizer through the `Repo` seam (a local directory or a Hub model repo).

use sft_hub::{AnyRepo, HubSettings, Repo, RepoKind};
use sft_tokenize::{SftTokenizer, SpecialTokenOverrides};

use crate::error::{Result, SftError};

/// Loads the tokenizer of `model_name` (a local directory or a Hub model repo id): `tokenizer.json`, and
/// `tokenizer_config.json` / `chat_template.jinja` when the repo has them. `overrides` are the run config's
/// `training_args.eos_token` / `pad_token`.
pub fn load_tokenizer(model_name: &str, hub: &HubSettings, overrides: &SpecialTokenOverrides) -> Result<SftTokenizer> {
    let _span = tracing::info_span!("load_tokenizer", model = %model_name).entered();
    let repo = AnyRepo::open(model_name, RepoKind::Model, None, hub)?;
    let files = repo.list()?;
    let has = |name: &str| files.iter().any(|f| f == name);
    if !has("tokenizer.json") {
        return Err(SftError::Config {
            path: repo.id().into(),
            key: "model_name".into(),
            message: format!("no tokenizer.json in the model repo; files found: {}", files.join(", ")),
        });
    }
    let tokenizer_json = repo.get("tokenizer.json")?;
    let config = if has("tokenizer_config.json") { Some(repo.get("tokenizer_config.json")?) } else { None };
    let template = if has("chat_template.jinja") { Some(repo.get("chat_template.jinja")?) } else { None };
    Ok(SftTokenizer::from_files(&tokenizer_json, config.as_deref(), template.as_deref(), overrides)?)
}
