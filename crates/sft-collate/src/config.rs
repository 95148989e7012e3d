//! The batching keys of a run config (TRL's `SFTConfig` keeps them in `training_args`; the facade maps them here),
//! and how examples become rows.

use serde::{Deserialize, Serialize};
use sft_tokenize::TokenizedExample;

use crate::batch::Batch;
use crate::collator::{Collate, Collator};
use crate::error::{CollateError, Result};
use crate::pack::pack_best_fit_decreasing;
use crate::plan::Sampling;

/// How training batches are built. Names and defaults are TRL's / transformers'.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollateConfig {
    /// Pack several examples into each row of `max_length` tokens (best-fit decreasing), with positions
    /// restarting per example and attention blocked across examples.
    #[serde(default)]
    pub packing: bool,
    /// Round padded batch lengths up to a multiple of this.
    #[serde(default)]
    pub pad_to_multiple_of: Option<usize>,
    /// Batch examples of similar length together (transformers' `LengthGroupedSampler`).
    #[serde(default)]
    pub group_by_length: bool,
}

impl CollateConfig {
    /// Checks the values; an error names the key.
    pub fn validate(&self) -> Result<()> {
        if self.pad_to_multiple_of == Some(0) {
            return Err(CollateError::Invalid {
                key: "pad_to_multiple_of",
                message: "expected a whole number >= 1".into(),
            });
        }
        Ok(())
    }

    /// The collator for a tokenizer whose pad token is `pad_id`.
    pub fn collator(&self, pad_id: u32) -> Collator {
        Collator { pad_id, pad_to_multiple_of: self.pad_to_multiple_of }
    }

    /// The training split's sampling: length-grouped with `group_by_length`, else shuffled, seeded by `seed`.
    pub fn sampling(&self, seed: u64) -> Sampling {
        if self.group_by_length { Sampling::GroupByLength { seed } } else { Sampling::Shuffle { seed } }
    }

    /// How training examples become rows: packed into `max_length` tokens with `packing`, else one per row.
    pub fn rows(&self, max_length: usize) -> Rows {
        if self.packing { Rows::Packed { max_length } } else { Rows::OnePerExample }
    }
}

/// How a split's examples are arranged into rows (the *units* a batch plan draws). One example per row is the
/// identity; packing groups several per row. Either way a row is a list of examples, collated by
/// [`Rows::collate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Rows {
    /// Every example its own row.
    #[default]
    OnePerExample,
    /// Best-fit-decreasing packing into rows of at most `max_length` tokens, fixed for the run.
    Packed {
        /// Tokens per row.
        max_length: usize,
    },
}

impl Rows {
    /// The rows of examples with token counts `lengths`, as example indices.
    pub fn arrange(self, lengths: &[usize]) -> Result<Vec<Vec<usize>>> {
        match self {
            Self::OnePerExample => Ok((0..lengths.len()).map(|i| vec![i]).collect()),
            Self::Packed { max_length } => pack_best_fit_decreasing(lengths, max_length),
        }
    }

    /// The padded batch of `rows` (each a list of examples): packed rows carry per-example positions, rows of one
    /// example are the plain padded batch.
    pub fn collate(self, collator: &Collator, rows: &[Vec<&TokenizedExample>]) -> Batch {
        match self {
            Self::OnePerExample => {
                let examples: Vec<&TokenizedExample> = rows.iter().flat_map(|row| row.iter().copied()).collect();
                collator.collate(&examples)
            }
            Self::Packed { .. } => collator.collate_packed(rows),
        }
    }
}
