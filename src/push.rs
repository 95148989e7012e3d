//! After training: the model card (`README.md`, as PEFT writes one beside every adapter) and the push of an adapter
//! directory to the Hub (transformers' `Trainer.push_to_hub`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sft_hub::{CommitInfo, HubSettings, HubUploader, RepoKind};
use sft_train::{RUN_CONFIG_FILE, TRAINER_STATE};

use crate::error::{Result, SftError};

/// The model card's file name.
pub const MODEL_CARD: &str = "README.md";

/// What is pushed of an output directory: everything but checkpoints and hidden or temporary files (transformers
/// ignores `checkpoint-*` and `_*` the same way).
pub fn is_pushed(path_in_repo: &str) -> bool {
    let first = path_in_repo.split('/').next().unwrap_or_default();
    !(first.starts_with(sft_train::CHECKPOINT_PREFIX)
        || path_in_repo.split('/').any(|part| part.starts_with('.') || part.starts_with('_'))
        || path_in_repo.ends_with(".tmp"))
}

/// The model card of the adapter in `dir`: YAML metadata the Hub reads (`library_name: peft`, `base_model`, tags),
/// the adapter's LoRA settings, the final metrics from `trainer_state.json` and the run config from
/// `run_config.json` when they exist. The run config holds no secrets (tokens come only from the environment).
pub fn model_card(dir: &Path, name: &str) -> Result<String> {
    let read_json = |file: &str| -> Result<Option<serde_json::Value>> {
        let path = dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| SftError::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SftError::Io { path, source }),
        }
    };
    let adapter = read_json(sft_peft::ADAPTER_CONFIG)?.ok_or_else(|| SftError::Config {
        path: dir.join(sft_peft::ADAPTER_CONFIG),
        key: "(file)".into(),
        message: "is missing: not a PEFT adapter directory".into(),
    })?;
    let base = adapter["base_model_name_or_path"].as_str().unwrap_or_default().to_owned();
    let hub_base = !base.is_empty() && !Path::new(&base).exists() && base.split('/').count() == 2;
    let mut card = String::from("---\n");
    if hub_base {
        let _ = writeln!(card, "base_model: {base}");
    }
    card.push_str("library_name: peft\npipeline_tag: text-generation\ntags:\n");
    if hub_base {
        let _ = writeln!(card, "- base_model:adapter:{base}");
    }
    card.push_str("- lora\n- sft\n- sft-rs\n---\n\n");
    let _ = writeln!(card, "# {name}\n");
    let targets = adapter["target_modules"].to_string();
    let _ = writeln!(
        card,
        "A LoRA adapter (r = {}, lora_alpha = {}, target_modules = {targets}) for `{base}`, fine-tuned with \
         [sft-rs](https://github.com/sft-rs/sft-rs) (supervised fine-tuning in Rust on Burn). The files are PEFT's: \
         load them with `PeftModel.from_pretrained(base_model, \"<this repo>\")`.\n",
        adapter["r"], adapter["lora_alpha"]
    );
    if let Some(state) = read_json(TRAINER_STATE)? {
        card.push_str("## Results\n\n| step | epoch | training loss | eval loss |\n|---|---|---|---|\n");
        let mut rows: BTreeMap<u64, [Option<f64>; 3]> = BTreeMap::new();
        for entry in state["log_history"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(step) = entry["step"].as_f64() else { continue };
            let row = rows.entry(step as u64).or_default();
            row[0] = row[0].or(entry["epoch"].as_f64());
            row[1] = row[1].or(entry[sft_train::keys::LOSS].as_f64());
            row[2] = row[2].or(entry[sft_train::keys::EVAL_LOSS].as_f64());
        }
        let cell = |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        // As transformers' card: a row per evaluation (with the training loss last logged by then) and the last step.
        let last = rows.keys().next_back().copied();
        let mut train_loss = None;
        for (step, [epoch, loss, eval]) in &rows {
            train_loss = loss.or(train_loss);
            if eval.is_none() && Some(*step) != last {
                continue;
            }
            let loss = &train_loss;
            let _ = writeln!(card, "| {step} | {} | {} | {} |", cell(*epoch, 2), cell(*loss, 4), cell(*eval, 4));
        }
        let best = match (state["best_metric"].as_f64(), state["best_global_step"].as_u64()) {
            (Some(metric), Some(step)) => format!("; best metric {metric:.4} at step {step}"),
            _ => String::new(),
        };
        let _ = writeln!(
            card,
            "\n{} optimizer steps, {} input tokens seen{best}.\n",
            state["global_step"], state["num_input_tokens_seen"]
        );
    }
    if let Some(config) = read_json(RUN_CONFIG_FILE)? {
        let pretty = serde_json::to_string_pretty(&config).unwrap_or_default();
        let _ = writeln!(card, "## Training configuration\n\nThe sft-rs run config:\n\n```json\n{pretty}\n```\n");
    }
    let _ = writeln!(card, "## Framework versions\n\n- sft-rs {}\n- PEFT adapter format", env!("CARGO_PKG_VERSION"));
    Ok(card)
}

/// Writes [`model_card`] to `dir/README.md` (atomically).
pub fn write_model_card(dir: &Path, name: &str) -> Result<()> {
    let card = model_card(dir, name)?;
    sft_model::write_atomic(&dir.join(MODEL_CARD), card.as_bytes())?;
    Ok(())
}

/// The Hub keys of a run config (transformers' `TrainingArguments` keeps them in `training_args`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Push the final adapter to the Hub when training ends.
    #[serde(default)]
    pub push_to_hub: bool,
    /// Hub repo for `push_to_hub`; `<user>/<save_model_name>` by default.
    #[serde(default)]
    pub hub_model_id: Option<String>,
    /// Create the Hub repo as private.
    #[serde(default)]
    pub hub_private_repo: Option<bool>,
}

/// Where an adapter directory goes on the Hub, from the run config that trained it (transformers'
/// `hub_model_id` / `hub_private_repo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// `hub_model_id`: `owner/name`, or a bare `name` in the user's namespace; `None` for `default_name`.
    pub repo_id: Option<String>,
    /// The repo name without a `repo_id`: `save_model_name`, else the output directory's name.
    pub default_name: String,
    /// Create the repo as private (`hub_private_repo`).
    pub private: bool,
}

impl PushTarget {
    /// The target of the adapter in `dir` trained by `config` (read from its `run_config.json` by `sft push`):
    /// `hub_model_id`, [`default_repo_name`](crate::pipeline::default_repo_name) and `hub_private_repo`. Without a
    /// config: `dir`'s name, public.
    pub fn new(config: Option<&crate::config::RunConfig>, dir: &Path) -> Self {
        match config {
            Some(config) => Self {
                repo_id: config.hub.hub_model_id.clone(),
                default_name: crate::pipeline::default_repo_name(config),
                private: config.hub.hub_private_repo.unwrap_or(false),
            },
            None => Self {
                repo_id: None,
                default_name: dir.file_name().map_or("sft-adapter".into(), |n| n.to_string_lossy().into_owned()),
                private: false,
            },
        }
    }

    /// The repo's name without its namespace (the model card's title).
    pub fn name(&self) -> &str {
        match self.repo_id.as_deref() {
            Some(id) => id.rsplit('/').next().unwrap_or(id),
            None => &self.default_name,
        }
    }
}

/// Where a push goes: `repo_id` if given (`owner/name`, or a bare `name` in the user's namespace), else
/// `<user>/<default_name>`; the user is `HF_USERNAME`, else the token's owner (`whoami`).
pub fn resolve_repo_id(
    uploader: &HubUploader,
    hub: &HubSettings,
    repo_id: Option<&str>,
    default_name: &str,
) -> Result<String> {
    match repo_id {
        Some(id) if id.contains('/') => Ok(id.to_owned()),
        other => {
            let user = match &hub.username {
                Some(user) => user.clone(),
                None => uploader.whoami()?,
            };
            Ok(format!("{user}/{}", other.unwrap_or(default_name)))
        }
    }
}

/// Pushes the adapter directory `dir` to `target` (its repo id resolved by [`resolve_repo_id`]), creating the repo
/// (private when asked) if needed, with a model card written first when `dir` has none. Checkpoints and hidden
/// files stay local ([`is_pushed`]). Nothing in `dir` is changed besides the model card; a failed push can be
/// repeated, and uploads nothing twice.
pub fn push_adapter(dir: &Path, target: &PushTarget, hub: &HubSettings) -> Result<(String, CommitInfo)> {
    let _span = tracing::info_span!("upload", dir = %dir.display()).entered();
    let uploader = HubUploader::new(hub)?;
    let id = resolve_repo_id(&uploader, hub, target.repo_id.as_deref(), &target.default_name)?;
    if !dir.join(MODEL_CARD).is_file() {
        let name = id.rsplit('/').next().unwrap_or(&id);
        write_model_card(dir, name)?;
    }
    let files = sft_hub::folder_files(dir, |path| !is_pushed(path))?;
    uploader.create_repo(RepoKind::Model, &id, target.private)?;
    let info = uploader.upload_files(RepoKind::Model, &id, "main", &files, "Upload adapter trained with sft-rs")?;
    Ok((id, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_run_config_the_directory_names_the_repo() {
        let target = PushTarget::new(None, Path::new("/runs/legal-lora"));
        assert_eq!(target, PushTarget { repo_id: None, default_name: "legal-lora".into(), private: false });
        assert_eq!(target.name(), "legal-lora");
        let named = PushTarget { repo_id: Some("org/clauses".into()), ..target };
        assert_eq!(named.name(), "clauses", "the card is titled by the repo's name, not its namespace");
    }

    #[test]
    fn checkpoints_and_hidden_files_stay_local() {
        for kept in ["adapter_model.safetensors", "README.md", "runs/x/events.out.tfevents.1.h.2.0", "loss.png"] {
            assert!(is_pushed(kept), "{kept}");
        }
        for skipped in ["checkpoint-20/adapter_model.safetensors", ".env", "runs/.tmp-x", "_private", "a.json.tmp"] {
            assert!(!is_pushed(skipped), "{skipped}");
        }
    }
}
