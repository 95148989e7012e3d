//! Padding and packing collation.

use sft_tokenize::TokenizedExample;

use crate::batch::{Batch, IGNORE_INDEX, PackedPositions};

/// The batching seam: examples (or packed rows of examples) in, a padded host-side batch out.
pub trait Collate {
    /// One example per row, right-padded to the longest.
    fn collate(&self, examples: &[&TokenizedExample]) -> Batch;
}

/// Right-padding collator, `DataCollatorForSeq2Seq`-compatible: pads `input_ids` with the pad id, `attention_mask`
/// with 0 and `labels` with -100 to the longest row, rounded up to `pad_to_multiple_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collator {
    /// The pad token id.
    pub pad_id: u32,
    /// Round the padded length up to a multiple of this (`None` or 1: no rounding).
    pub pad_to_multiple_of: Option<usize>,
}

impl Collator {
    fn padded_len(&self, longest: usize) -> usize {
        match self.pad_to_multiple_of {
            Some(m) if m > 1 => longest.div_ceil(m) * m,
            _ => longest,
        }
    }

    fn allocate(&self, rows: usize, seq_len: usize) -> Batch {
        let n = rows * seq_len;
        Batch {
            batch_size: rows,
            seq_len,
            input_ids: vec![self.pad_id; n],
            attention_mask: vec![0; n],
            labels: vec![IGNORE_INDEX; n],
            packing: None,
            num_supervised: 0,
            num_tokens: 0,
        }
    }

    /// Packed rows: each row holds several examples back to back. Positions restart at 0 for each example,
    /// sequence ids number the examples of a row from 1, and the first token of every example is unlabelled, so
    /// that neither attention (with a block-diagonal mask) nor the loss crosses an example boundary.
    pub fn collate_packed(&self, rows: &[Vec<&TokenizedExample>]) -> Batch {
        let longest = rows.iter().map(|r| r.iter().map(|e| e.len()).sum::<usize>()).max().unwrap_or(0);
        let seq_len = self.padded_len(longest);
        let mut batch = self.allocate(rows.len(), seq_len);
        let mut positions = PackedPositions {
            position_ids: vec![0; rows.len() * seq_len],
            sequence_ids: vec![0; rows.len() * seq_len],
        };
        for (b, row) in rows.iter().enumerate() {
            let mut at = b * seq_len;
            for (k, example) in row.iter().enumerate() {
                let n = example.len();
                fill_row(&mut batch, at, example);
                for (t, (p, s)) in positions.position_ids[at..at + n]
                    .iter_mut()
                    .zip(&mut positions.sequence_ids[at..at + n])
                    .enumerate()
                {
                    *p = t as u32;
                    *s = k as u32 + 1;
                }
                if n > 0 && batch.labels[at] != IGNORE_INDEX {
                    batch.labels[at] = IGNORE_INDEX;
                    batch.num_supervised -= 1;
                }
                at += n;
            }
        }
        batch.packing = Some(positions);
        batch
    }
}

impl Collate for Collator {
    fn collate(&self, examples: &[&TokenizedExample]) -> Batch {
        let longest = examples.iter().map(|e| e.len()).max().unwrap_or(0);
        let seq_len = self.padded_len(longest);
        let mut batch = self.allocate(examples.len(), seq_len);
        for (b, example) in examples.iter().enumerate() {
            fill_row(&mut batch, b * seq_len, example);
        }
        batch
    }
}

/// Writes `example` at flat offset `at`: ids, attention 1, labels where the mask is set.
fn fill_row(batch: &mut Batch, at: usize, example: &TokenizedExample) {
    let n = example.len();
    batch.input_ids[at..at + n].copy_from_slice(&example.input_ids);
    batch.attention_mask[at..at + n].fill(1);
    let mut supervised = 0;
    for ((label, &id), &m) in batch.labels[at..at + n].iter_mut().zip(&example.input_ids).zip(&example.loss_mask) {
        if m {
            *label = i64::from(id);
            supervised += 1;
        }
    }
    batch.num_supervised += supervised;
    batch.num_tokens += n;
}
