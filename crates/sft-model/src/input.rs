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
    /// `[batch, 1, seq, keys]`, true where query `i` may not attend to key `j`: the future (`j > i`), padding keys
    /// (`attention_mask[j] == 0`), and keys of another packed example (`sequence_ids[i] != sequence_ids[j]`).
    /// `None` for a [`padding_free`](Self::padding_free) input, whose `segments` say the same: the model builds
    /// the mask from them ([`mask`](Self::mask)) only where the fused attention does not run.
    pub blocked: Option<Tensor<4, Bool>>,
    /// The same mask as runs of the flat `batch × seq` token axis, `(first token, length)`: each run of real tokens
    /// (`attention_mask` 1) of one example (`sequence_ids`) attends causally within itself. `None` when the mask
    /// is not of that form (an example split by padding, or a cache: `past > 0`); then only `blocked` describes it.
    /// The fused attention of [`crate::fused`] reads this; padding tokens outside every run get a zero attention
    /// output there (their hidden states are never read by real tokens, and carry no loss).
    pub segments: Option<Vec<(usize, usize)>>,
}

impl ModelInput {
    /// Builds the input of a `[batch, seq]` batch from row-major host vectors (the layout of `sft-collate`'s
    /// `Batch`). `attention_mask` (1 = real token) defaults to all ones, `position_ids` to `0..seq` per row;
    /// `sequence_ids` (packing) restricts attention to tokens of the same example.
    pub fn new(
        input_ids: &[u32],
        shape: [usize; 2],
        attention_mask: Option<&[u8]>,
        position_ids: Option<&[u32]>,
        sequence_ids: Option<&[u32]>,
        device: &Device,
    ) -> Result<Self> {
        Self::with_past(input_ids, shape, 0, attention_mask, position_ids, sequence_ids, device)
    }

    /// Like [`new`](Self::new) for `seq` new positions that follow `past` cached ones (incremental decoding).
    /// `input_ids` and `position_ids` cover the new positions (`batch × seq`); `attention_mask` and `sequence_ids`
    /// cover every key (`batch × (past + seq)`), and `blocked` is `[batch, 1, seq, past + seq]`. Without
    /// `position_ids`, positions are `past..past + seq`.
    pub fn with_past(
        input_ids: &[u32],
        [batch, seq]: [usize; 2],
        past: usize,
        attention_mask: Option<&[u8]>,
        position_ids: Option<&[u32]>,
        sequence_ids: Option<&[u32]>,
        device: &Device,
    ) -> Result<Self> {
        let keys = past + seq;
        for (name, len, expected) in [
            ("input_ids", Some(input_ids.len()), (batch, seq)),
            ("position_ids", position_ids.map(<[u32]>::len), (batch, seq)),
            ("attention_mask", attention_mask.map(<[u8]>::len), (batch, keys)),
            ("sequence_ids", sequence_ids.map(<[u32]>::len), (batch, keys)),
        ] {
            if let Some(len) = len
                && len != expected.0 * expected.1
            {
                return Err(ModelError::Input(format!(
                    "{name} has {len} entries, expected {} × {}",
                    expected.0, expected.1
                )));
            }
        }
        let ids: Vec<i64> = input_ids.iter().map(|&t| i64::from(t)).collect();
        let positions: Vec<i64> = match position_ids {
            Some(p) => p.iter().map(|&t| i64::from(t)).collect(),
            None => (0..batch).flat_map(|_| (past..keys).map(|p| p as i64)).collect(),
        };
        let mut blocked = Vec::with_capacity(batch * seq * keys);
        for b in 0..batch {
            for i in past..keys {
                blocked.extend((0..keys).map(|j| {
                    let future = j > i;
                    let padding = attention_mask.is_some_and(|m| m[b * keys + j] == 0);
                    let other = sequence_ids.is_some_and(|s| s[b * keys + i] != s[b * keys + j]);
                    future || padding || other
                }));
            }
        }
        let segments = if past == 0 { segments(batch, seq, attention_mask, sequence_ids) } else { None };
        Ok(Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            position_ids: Tensor::from_data(TensorData::new(positions, [batch, seq]), device),
            blocked: Some(Tensor::from_data(TensorData::new(blocked, [batch, 1, seq, keys]), device)),
            segments,
        })
    }

    /// The input of one packed row without padding (`sft-collate`'s `Batch::padding_free`): `input_ids`,
    /// `position_ids` and `sequence_ids` of the same length, each example's tokens contiguous. No `[seq, seq]`
    /// mask is built: the segments describe it. Errors when the lengths differ or an example's tokens are split.
    pub fn padding_free(
        input_ids: &[u32],
        position_ids: &[u32],
        sequence_ids: &[u32],
        device: &Device,
    ) -> Result<Self> {
        let tokens = input_ids.len();
        for (name, len) in [("position_ids", position_ids.len()), ("sequence_ids", sequence_ids.len())] {
            if len != tokens {
                return Err(ModelError::Input(format!("{name} has {len} entries, expected {tokens}")));
            }
        }
        let segments = segments(1, tokens, None, Some(sequence_ids))
            .ok_or_else(|| ModelError::Input("an example's tokens are not contiguous in the packed row".into()))?;
        let ids: Vec<i64> = input_ids.iter().map(|&t| i64::from(t)).collect();
        let positions: Vec<i64> = position_ids.iter().map(|&t| i64::from(t)).collect();
        Ok(Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [1, tokens]), device),
            position_ids: Tensor::from_data(TensorData::new(positions, [1, tokens]), device),
            blocked: None,
            segments: Some(segments),
        })
    }

    /// `blocked`, or the mask the segments describe (`[batch, 1, seq, seq]`: each segment causal within itself,
    /// everything else blocked); the plain causal mask when there is neither.
    pub fn mask(&self) -> Tensor<4, Bool> {
        if let Some(blocked) = &self.blocked {
            return blocked.clone();
        }
        let [batch, seq] = self.input_ids.dims();
        let mut owner = vec![usize::MAX; batch * seq];
        match &self.segments {
            Some(segments) => {
                for (s, &(start, len)) in segments.iter().enumerate() {
                    owner[start..start + len].fill(s);
                }
            }
            None => owner.fill(0),
        }
        let mut blocked = Vec::with_capacity(batch * seq * seq);
        for b in 0..batch {
            let row = &owner[b * seq..(b + 1) * seq];
            for i in 0..seq {
                blocked.extend((0..seq).map(|j| j > i || row[j] == usize::MAX || row[j] != row[i]));
            }
        }
        Tensor::from_data(TensorData::new(blocked, [batch, 1, seq, seq]), &self.input_ids.device())
    }
}

/// The runs of real tokens of one example per row (see [`ModelInput::segments`]); `None` when an example of a
/// row appears in two runs (split by padding), which runs cannot express.
fn segments(
    batch: usize,
    seq: usize,
    attention_mask: Option<&[u8]>,
    sequence_ids: Option<&[u32]>,
) -> Option<Vec<(usize, usize)>> {
    let mut runs = Vec::new();
    for b in 0..batch {
        let mut seen: Vec<u32> = Vec::new();
        let mut current: Option<(u32, usize)> = None;
        for t in 0..=seq {
            let token = (t < seq && attention_mask.is_none_or(|m| m[b * seq + t] != 0))
                .then(|| sequence_ids.map_or(0, |s| s[b * seq + t]));
            if let Some((id, start)) = current
                && token != Some(id)
            {
                runs.push((b * seq + start, t - start));
                current = None;
            }
            if let Some(id) = token
                && current.is_none()
            {
                if seen.contains(&id) {
                    return None;
                }
                seen.push(id);
                current = Some((id, t));
            }
        }
    }
    Some(runs)
}
