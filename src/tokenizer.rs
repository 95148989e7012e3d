//! Loading the model's tokenizer through the `Repo` seam (a local directory or a Hub model repo), and what a
//! model family asks of the tokenized data (Gemma 3: BOS first).

use sft_hub::{AnyRepo, HubSettings, RepoKind};
use sft_tokenize::{EncodedSplit, SftTokenizer, SpecialTokenOverrides};

use crate::config::RunConfig;
use crate::error::{Result, SftError};

/// Loads the tokenizer of `model_name` (a local directory or a Hub model repo id) with
/// [`SftTokenizer::from_repo`]. `overrides` are the run config's `training_args.eos_token` / `pad_token`.
pub fn load_tokenizer(model_name: &str, hub: &HubSettings, overrides: &SpecialTokenOverrides) -> Result<SftTokenizer> {
    let _span = tracing::info_span!("load_tokenizer", model = %model_name).entered();
    let repo = AnyRepo::open(model_name, RepoKind::Model, None, hub)?;
    SftTokenizer::from_repo(&repo, overrides).map_err(|e| SftError::at_key("model_name", e))
}

/// Gemma 3 is trained with BOS first in every sequence: its tokenizer's post-processor adds it, or its chat
/// template writes it. A tokenizer that does neither (or a truncation that cut it) would fine-tune the model on
/// sequences it never saw, so the first such example is an error naming it, before any weight is read.
pub(crate) fn check_bos(
    config: &RunConfig,
    tokenizer: &SftTokenizer,
    split: &str,
    encoded: &EncodedSplit,
    examples: &[sft_data::Example],
) -> Result<()> {
    let Some(bos) = &tokenizer.special().bos else {
        return Err(config.error(
            "model_name",
            "Gemma 3 needs a BOS token first in every sequence, and the tokenizer has none (tokenizer_config.json \
             bos_token)",
        ));
    };
    for (example, &row) in encoded.examples.iter().zip(&encoded.rows) {
        if example.input_ids.first() != Some(&bos.id) {
            let place = examples.get(row).map_or_else(|| format!("{split} example {row}"), |e| e.location.to_string());
            return Err(config.error(
                "model_name",
                format!(
                    "Gemma 3 needs BOS (`{}`, id {}) first in every sequence, but {place} starts with id {:?}: the \
                     tokenizer's post-processor does not add it and the text does not begin with it (use the \
                     model's own tokenizer.json, or truncation_mode keep_start)",
                    bos.text,
                    bos.id,
                    example.input_ids.first()
                ),
            ));
        }
    }
    Ok(())
}
