//! A collated batch on the host: plain vectors, row-major `[batch_size, seq_len]`.

/// The label of a position that carries no loss, as PyTorch's `CrossEntropyLoss(ignore_index=-100)` expects.
/// This crate is the only place the convention exists; upstream stages carry typed masks.
pub const IGNORE_INDEX: i64 = -100;

/// A batch of examples, right-padded, with Hugging Face semantics.
///
/// Every tensor-shaped field is row-major `[batch_size, seq_len]`. `labels[b, t]` is the token the model must
/// predict at position `t` (from its output at `t - 1`), or [`IGNORE_INDEX`]; the shift happens in the loss.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// Rows.
    pub batch_size: usize,
    /// Columns (the longest row, rounded up to `pad_to_multiple_of`).
    pub seq_len: usize,
    /// Token ids; padding is the pad id.
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u8>,
    /// Targets, [`IGNORE_INDEX`] where no loss is taken (masked prompt tokens, the first token of each example,
    /// padding).
    pub labels: Vec<i64>,
    /// Present for packed batches: positions and sequence membership.
    pub packing: Option<PackedPositions>,
    /// Number of labels that are not [`IGNORE_INDEX`].
    pub num_supervised: usize,
    /// Number of real (non-padding) tokens.
    pub num_tokens: usize,
}

/// Where packed examples start and end inside each row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackedPositions {
    /// Position of each token within its own example, restarting at 0 (RoPE positions); 0 on padding.
    pub position_ids: Vec<u32>,
    /// 1-based index of the example each token belongs to within its row; 0 on padding. Attention is allowed only
    /// between tokens with the same non-zero sequence id (and causally).
    pub sequence_ids: Vec<u32>,
}

impl Batch {
    /// The `[batch_size, seq_len]` shape.
    pub fn shape(&self) -> [usize; 2] {
        [self.batch_size, self.seq_len]
    }

    /// Row `b` of a row-major field.
    pub fn row<'a, T>(&self, field: &'a [T], b: usize) -> &'a [T] {
        &field[b * self.seq_len..(b + 1) * self.seq_len]
    }

    /// The same examples without padding: one packed row of the `num_tokens` real tokens, row after row (TRL's
    /// `padding_free`). Each token keeps its RoPE position (its column, or its packed position) and its example
    /// (a new sequence id per example of each row), so attention sees exactly what it saw in the padded batch.
    /// A label is kept where the token before it in the new row is the token before it in the old one (same
    /// example, no padding between); so the supervised pairs are the padded batch's, except pairs predicted from
    /// a padding position or across examples, which the padded batch should not have had (a caller can compare
    /// the supervised counts after the causal shift to tell).
    pub fn padding_free(&self) -> Batch {
        let n = self.num_tokens;
        let (mut input_ids, mut labels) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut position_ids, mut sequence_ids) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut next_id = 0u32;
        for b in 0..self.batch_size {
            // (the example's id in the old row, the column) of the last real token.
            let mut previous: Option<(u32, usize)> = None;
            for c in 0..self.seq_len {
                let i = b * self.seq_len + c;
                if self.attention_mask[i] == 0 {
                    continue;
                }
                let (position, example) = match &self.packing {
                    Some(p) => (p.position_ids[i], p.sequence_ids[i]),
                    None => (c as u32, 1),
                };
                let continues = previous.is_some_and(|(e, col)| e == example && col + 1 == c);
                if previous.is_none_or(|(e, _)| e != example) {
                    next_id += 1;
                }
                input_ids.push(self.input_ids[i]);
                labels.push(if continues { self.labels[i] } else { IGNORE_INDEX });
                position_ids.push(position);
                sequence_ids.push(next_id);
                previous = Some((example, c));
            }
        }
        let len = input_ids.len();
        Batch {
            batch_size: 1,
            seq_len: len,
            input_ids,
            attention_mask: vec![1; len],
            num_supervised: labels.iter().filter(|&&l| l != IGNORE_INDEX).count(),
            labels,
            packing: Some(PackedPositions { position_ids, sequence_ids }),
            num_tokens: len,
        }
    }

    /// A key per position, row-major, that names the token whatever the layout: `(e << 32) | i` for the `i`-th real
    /// token of the `e`-th example (examples counted row-major from 0: a new one at each row start and each change
    /// of `sequence_ids`), [`PADDING_KEY`] for padding. The real tokens of [`padding_free`](Self::padding_free)'s
    /// batch carry the keys they had here, in the same order (what per-token dropout masks are drawn from).
    pub fn token_keys(&self) -> Vec<u64> {
        let mut keys = Vec::with_capacity(self.input_ids.len());
        // The ordinal of the current example; None before the first real token.
        let mut example: Option<u64> = None;
        for b in 0..self.batch_size {
            // (sequence id, index within the example) of the last real token of this row.
            let mut previous: Option<(u32, u64)> = None;
            for c in 0..self.seq_len {
                let i = b * self.seq_len + c;
                if self.attention_mask[i] == 0 {
                    keys.push(PADDING_KEY);
                    continue;
                }
                let id = self.packing.as_ref().map_or(0, |p| p.sequence_ids[i]);
                let index = match previous {
                    Some((last, index)) if last == id => index + 1,
                    _ => {
                        example = Some(example.map_or(0, |e| e + 1));
                        0
                    }
                };
                keys.push((example.unwrap_or(0) << 32) | index);
                previous = Some((id, index));
            }
        }
        keys
    }
}

/// The key of a padding position in [`Batch::token_keys`].
pub const PADDING_KEY: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    /// Row 0: one example of 3 and a pad; row 1: two packed examples (2 + 1) and a pad.
    fn packed() -> Batch {
        Batch {
            batch_size: 2,
            seq_len: 4,
            input_ids: vec![5, 6, 7, 0, 8, 9, 10, 0],
            attention_mask: vec![1, 1, 1, 0, 1, 1, 1, 0],
            labels: vec![IGNORE_INDEX, 6, 7, IGNORE_INDEX, IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX],
            packing: Some(PackedPositions {
                position_ids: vec![0, 1, 2, 0, 0, 1, 0, 0],
                sequence_ids: vec![1, 1, 1, 0, 1, 1, 2, 0],
            }),
            num_supervised: 3,
            num_tokens: 6,
        }
    }

    #[test]
    fn padding_free_keeps_every_real_token_its_position_example_and_label() {
        let flat = packed().padding_free();
        assert_eq!(flat.shape(), [1, 6]);
        assert_eq!(flat.input_ids, [5, 6, 7, 8, 9, 10]);
        assert_eq!(flat.labels, [IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9, IGNORE_INDEX]);
        let packing = flat.packing.clone().unwrap_or_default();
        assert_eq!(packing.position_ids, [0, 1, 2, 0, 1, 0]);
        assert_eq!(packing.sequence_ids, [1, 1, 1, 2, 2, 3]);
        assert_eq!((flat.num_supervised, flat.num_tokens), (3, 6));
    }

    #[test]
    fn a_label_after_padding_is_not_kept() {
        // Left padding: the first real token's label would be predicted from the pad before it.
        let batch = Batch {
            batch_size: 1,
            seq_len: 3,
            input_ids: vec![0, 4, 5],
            attention_mask: vec![0, 1, 1],
            labels: vec![IGNORE_INDEX, 4, 5],
            packing: None,
            num_supervised: 2,
            num_tokens: 2,
        };
        let flat = batch.padding_free();
        assert_eq!(flat.labels, [IGNORE_INDEX, 5]);
        assert_eq!(flat.packing.unwrap_or_default().position_ids, [1, 2]);
        assert_eq!(flat.num_supervised, 1);
    }

    #[test]
    fn token_keys_name_example_and_index_and_survive_padding_free() {
        let key = |e: u64, i: u64| (e << 32) | i;
        let batch = packed();
        let keys = batch.token_keys();
        let pad = PADDING_KEY;
        assert_eq!(keys, [key(0, 0), key(0, 1), key(0, 2), pad, key(1, 0), key(1, 1), key(2, 0), pad]);
        let real: Vec<u64> = keys.into_iter().filter(|&k| k != pad).collect();
        assert_eq!(batch.padding_free().token_keys(), real);
        // Unpacked rows: one example each, whatever the padding.
        let rows = Batch {
            batch_size: 3,
            seq_len: 2,
            input_ids: vec![1, 0, 0, 0, 3, 4],
            attention_mask: vec![1, 0, 0, 0, 1, 1],
            labels: vec![IGNORE_INDEX; 6],
            ..Default::default()
        };
        assert_eq!(rows.token_keys(), [key(0, 0), pad, pad, pad, key(1, 0), key(1, 1)]);
        assert_eq!(rows.padding_free().token_keys(), [key(0, 0), key(1, 0), key(1, 1)]);
    }
}
