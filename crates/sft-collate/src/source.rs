//! A split's batches for a training or evaluation loop: tokenized examples, optionally packed into rows, drawn per
//! epoch by a seeded plan and collated on the host.

use sft_tokenize::TokenizedExample;

use crate::batch::Batch;
use crate::collator::{Collate, Collator};
use crate::error::{CollateError, Result};
use crate::pack::pack_best_fit_decreasing;
use crate::plan::{Sampling, batch_plan};

/// A split ready for batching. A *unit* is one example, or with packing one row of examples packed up to
/// `max_length` tokens (best-fit decreasing, fixed for the run); each epoch's plan shuffles units into
/// micro-batches of `batch_size`.
#[derive(Debug, Clone)]
pub struct BatchSource<'a> {
    examples: &'a [TokenizedExample],
    units: Vec<Vec<usize>>,
    packed: bool,
    collator: Collator,
    batch_size: usize,
    sampling: Sampling,
}

impl<'a> BatchSource<'a> {
    /// Batches of `batch_size` units of `examples`, drawn by `sampling`; `packing = Some(max_length)` packs
    /// examples into rows of at most that many tokens first. Empty examples are an error, as is an empty split.
    pub fn new(
        examples: &'a [TokenizedExample],
        collator: Collator,
        batch_size: usize,
        sampling: Sampling,
        packing: Option<usize>,
    ) -> Result<Self> {
        if examples.is_empty() {
            return Err(CollateError::EmptySplit);
        }
        if let Some(i) = examples.iter().position(TokenizedExample::is_empty) {
            return Err(CollateError::EmptyExample { index: i });
        }
        if batch_size == 0 {
            return Err(CollateError::ZeroBatchSize);
        }
        let units = match packing {
            Some(max_length) => {
                let lengths: Vec<usize> = examples.iter().map(TokenizedExample::len).collect();
                pack_best_fit_decreasing(&lengths, max_length)?
            }
            None => (0..examples.len()).map(|i| vec![i]).collect(),
        };
        Ok(Self { examples, units, packed: packing.is_some(), collator, batch_size, sampling })
    }

    /// Micro-batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.units.len().div_ceil(self.batch_size)
    }

    /// The micro-batches of `epoch`, as unit indices (deterministic for the seed and epoch).
    pub fn plan(&self, epoch: u64) -> Vec<Vec<usize>> {
        let lengths: Vec<usize> = self.units.iter().map(|u| u.iter().map(|&i| self.examples[i].len()).sum()).collect();
        batch_plan(&lengths, self.batch_size, self.sampling, epoch)
    }

    /// The padded host batch of `units`.
    pub fn collate(&self, units: &[usize]) -> Batch {
        if self.packed {
            let rows: Vec<Vec<&TokenizedExample>> =
                units.iter().map(|&u| self.units[u].iter().map(|&i| &self.examples[i]).collect()).collect();
            self.collator.collate_packed(&rows)
        } else {
            let rows: Vec<&TokenizedExample> = units.iter().map(|&u| &self.examples[self.units[u][0]]).collect();
            self.collator.collate(&rows)
        }
    }
}
