//! Model inputs built from host-side batches: ids, positions and the attention mask.

use burn::prelude::*;

use crate::error::{ModelError, Result};

/// What one forward pass reads.
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// Token ids `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// RoPE positions `[batch, seq]`.
    pub position_ids: Tensor<2, Int>,
    /// `[batch, 1, seq, seq]`, true where query `i` may not attend to key `j`: the future (`j > i`), padding keys
    /// (`attention_mask[j] == 0`), and keys of another packed example (`sequence_ids[i] != sequence_ids[j]`).
    pub blocked: Tensor<4, Bool>,
}

impl ModelInput {
    /// Builds the input of a `[batch, seq]` batch from row-major host vectors (the layout of `sft-collate`'s
    /// `Batch`). `attention_mask` (1 = real token) defaults to all ones, `position_ids` to `0..seq` per row;
    /// `sequence_ids` (packing) restricts attention to tokens of the same example.
    pub fn new(
        input_ids: &[u32],
        [batch, seq]: [usize; 2],
        attention_mask: Option<&[u8]>,
        position_ids: Option<&[u32]>,
        sequence_ids: Option<&[u32]>,
        device: &Device,
    ) -> Result<Self> {
        let n = batch * seq;
        for (name, len) in [
            ("input_ids", Some(input_ids.len())),
            ("attention_mask", attention_mask.map(<[u8]>::len)),
            ("position_ids", position_ids.map(<[u32]>::len)),
            ("sequence_ids", sequence_ids.map(<[u32]>::len)),
        ] {
            if let Some(len) = len
                && len != n
            {
                return Err(ModelError::Input(format!("{name} has {len} entries, expected {batch} × {seq}")));
            }
        }
        let ids: Vec<i64> = input_ids.iter().map(|&t| i64::from(t)).collect();
        let positions: Vec<i64> = match position_ids {
            Some(p) => p.iter().map(|&t| i64::from(t)).collect(),
            None => (0..batch).flat_map(|_| 0..seq as i64).collect(),
        };
        let mut blocked = vec![false; batch * seq * seq];
        for b in 0..batch {
            for i in 0..seq {
                let row = &mut blocked[(b * seq + i) * seq..(b * seq + i + 1) * seq];
                for (j, cell) in row.iter_mut().enumerate() {
                    let future = j > i;
                    let padding = attention_mask.is_some_and(|m| m[b * seq + j] == 0);
                    let other = sequence_ids.is_some_and(|s| s[b * seq + i] != s[b * seq + j]);
                    *cell = future || padding || other;
                }
            }
        }
        Ok(Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            position_ids: Tensor::from_data(TensorData::new(positions, [batch, seq]), device),
            blocked: Tensor::from_data(TensorData::new(blocked, [batch, 1, seq, seq]), device),
        })
    }
}
