//! A split's batches for a training or evaluation loop: tokenized examples, optionally packed into rows, drawn per
//! epoch by a seeded plan and collated on the host.

use sft_tokenize::TokenizedExample;

use crate::batch::Batch;
use crate::collator::Collator;
use crate::config::Rows;
use crate::error::{CollateError, Result};
use crate::plan::{Sampling, batch_plan};

/// A split ready for batching. A *unit* is one example, or with packing one row of examples packed up to
/// `max_length` tokens (best-fit decreasing, fixed for the run); each epoch's plan shuffles units into
/// micro-batches of `batch_size`.
#[derive(Debug, Clone)]
pub struct BatchSource<'a> {
    examples: &'a [TokenizedExample],
    units: Vec<Vec<usize>>,
    rows: Rows,
    collator: Collator,
    batch_size: usize,
    sampling: Sampling,
}

impl<'a> BatchSource<'a> {
    /// Batches of `batch_size` units of `examples`, drawn by `sampling`; the units are the rows `rows` arranges
    /// (one example each, or packed). Empty examples are an error, as is an empty split.
    pub fn new(
        examples: &'a [TokenizedExample],
        collator: Collator,
        batch_size: usize,
        sampling: Sampling,
        rows: Rows,
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
        let lengths: Vec<usize> = examples.iter().map(TokenizedExample::len).collect();
        let units = rows.arrange(&lengths)?;
        Ok(Self { examples, units, rows, collator, batch_size, sampling })
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

    /// The padded batches of `epoch`, in the order of [`plan`](Self::plan) (one per micro-batch; the last may hold
    /// fewer units). Collated as they are drawn.
    pub fn batches(&self, epoch: u64) -> impl ExactSizeIterator<Item = Batch> + '_ {
        self.plan(epoch).into_iter().map(move |units| self.collate(&units))
    }

    /// The padded host batch of `units`.
    pub fn collate(&self, units: &[usize]) -> Batch {
        let rows: Vec<Vec<&TokenizedExample>> =
            units.iter().map(|&u| self.units[u].iter().map(|&i| &self.examples[i]).collect()).collect();
        self.rows.collate(&self.collator, &rows)
    }
}
