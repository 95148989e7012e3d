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
}
