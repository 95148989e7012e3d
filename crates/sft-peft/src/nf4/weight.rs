//! `Nf4Weight`: a weight quantized exactly as bitsandbytes' `quantize_4bit(quant_type="nf4", blocksize=64)`, on
//! the host.
//!
//! Layout (bitsandbytes'): the `[out, in]` weight is flattened row-major and cut into blocks of 64 consecutive
//! elements (a block may straddle two rows); each block keeps its f32 absmax; each element becomes the NF4 code
//! nearest to `x · (1 / absmax)`; codes are packed two per byte, the even element in the high nibble, an odd
//! count padded with code 7 (zero). With double quantization the absmax are themselves quantized: minus their mean
//! (`offset`), in blocks of 256, to the nearest entry of the 8-bit dynamic map, with an f32 absmax per block.

use super::codebook::{NF4, dynamic_map, midpoints, nearest};

/// Elements per quantization block.
pub const BLOCKSIZE: usize = 64;
/// Absmax values per block of the double quantization.
pub const NESTED_BLOCKSIZE: usize = 256;

/// The per-block scales of an NF4 weight.
#[derive(Debug, Clone, PartialEq)]
pub enum Absmax {
    /// One f32 per block.
    F32(Vec<f32>),
    /// Double quantization: `absmax[b] = DYNAMIC[codes[b]] · nested[b / 256] + offset`.
    Double {
        /// 8-bit codes into the dynamic map, one per block.
        codes: Vec<u8>,
        /// f32 absmax of `absmax − offset` per block of 256 blocks.
        nested: Vec<f32>,
        /// The mean of the absmax, subtracted before quantizing.
        offset: f32,
    },
}

/// An NF4-quantized `[out, in]` weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Nf4Weight {
    /// `[out, in]`.
    pub shape: [usize; 2],
    /// `ceil(n / 2)` bytes, two codes each (even element high).
    pub packed: Vec<u8>,
    /// Per-block scales.
    pub absmax: Absmax,
}

impl Nf4Weight {
    /// Quantizes a row-major `[out, in]` f32 weight; `double_quant` compresses the absmax as
    /// `bnb_4bit_use_double_quant` does. The offset of double quantization is the correctly rounded mean of the
    /// absmax (bitsandbytes' torch reduction can differ from it in the last bit).
    pub fn quantize(values: &[f32], shape: [usize; 2], double_quant: bool) -> Self {
        let n = values.len();
        debug_assert_eq!(n, shape[0] * shape[1]);
        let bounds = midpoints(&NF4);
        let mut absmax = Vec::with_capacity(n.div_ceil(BLOCKSIZE));
        let mut codes = Vec::with_capacity(n + 1);
        for block in values.chunks(BLOCKSIZE) {
            let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            absmax.push(max);
            let scale = max.max(1e-38);
            let full = block.len() == BLOCKSIZE;
            let inverse = 1.0 / scale;
            codes.extend(block.iter().map(|&v| {
                // Full blocks multiply by the reciprocal (bitsandbytes' kernels); a trailing partial block divides.
                let s = if full { v * inverse } else { v / scale };
                nearest(&bounds, s.clamp(-1.0, 1.0))
            }));
        }
        if n % 2 == 1 {
            codes.push(nearest(&bounds, 0.0));
        }
        let packed = codes.chunks_exact(2).map(|c| (c[0] << 4) | c[1]).collect();
        let absmax = if double_quant { double_quantize(&absmax, None) } else { Absmax::F32(absmax) };
        Self { shape, packed, absmax }
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    /// Whether the weight is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The f32 absmax of every block (reconstructed with double quantization: `DYNAMIC[code] · nested + offset`,
    /// two f32 operations in that order).
    pub fn absmax_values(&self) -> Vec<f32> {
        match &self.absmax {
            Absmax::F32(v) => v.clone(),
            Absmax::Double { codes, nested, offset } => {
                let map = dynamic_map();
                codes
                    .iter()
                    .enumerate()
                    .map(|(b, &c)| map[usize::from(c)] * nested[b / NESTED_BLOCKSIZE] + offset)
                    .collect()
            }
        }
    }

    /// The 4-bit code of every element, in flat order.
    pub fn codes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.packed.iter().flat_map(|&b| [b >> 4, b & 0x0f]).collect();
        out.truncate(self.len());
        out
    }

    /// The dequantized weight, row-major `[out, in]`: `NF4[code] · absmax[block]` (one f32 multiply, as
    /// bitsandbytes' `dequantize_4bit`).
    pub fn dequantize(&self) -> Vec<f32> {
        let absmax = self.absmax_values();
        self.codes().iter().enumerate().map(|(k, &c)| NF4[usize::from(c)] * absmax[k / BLOCKSIZE]).collect()
    }

    /// Bytes the quantized weight occupies: packed codes plus scales (plus the double quantization's nested
    /// scales and offset). About 0.5625 bytes a weight, or 0.5159 with double quantization.
    pub fn bytes(&self) -> usize {
        self.packed.len()
            + match &self.absmax {
                Absmax::F32(v) => 4 * v.len(),
                Absmax::Double { codes, nested, .. } => codes.len() + 4 * nested.len() + 4,
            }
    }
}

/// bitsandbytes' double quantization: 8-bit blockwise quantization (blocks of 256) of `absmax − offset`, where
/// `offset` is the given value or, by default, the correctly rounded mean of `absmax` (bitsandbytes' torch
/// reduction may differ from it in the last bit). Uses the exact nearest-entry rule (bitsandbytes' CPU kernel
/// approximates it and rarely picks a neighbouring code).
pub fn double_quantize(absmax: &[f32], offset: Option<f32>) -> Absmax {
    let offset = offset
        .unwrap_or_else(|| (absmax.iter().map(|&a| f64::from(a)).sum::<f64>() / absmax.len().max(1) as f64) as f32);
    let map = dynamic_map();
    let bounds = midpoints(&map);
    let centred: Vec<f32> = absmax.iter().map(|&a| a - offset).collect();
    let mut nested = Vec::with_capacity(centred.len().div_ceil(NESTED_BLOCKSIZE));
    let mut codes = Vec::with_capacity(centred.len());
    for block in centred.chunks(NESTED_BLOCKSIZE) {
        let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        nested.push(max);
        let scale = max.max(1e-38);
        codes.extend(block.iter().map(|&c| nearest(&bounds, (c / scale).clamp(-1.0, 1.0))));
    }
    Absmax::Double { codes, nested, offset }
}
