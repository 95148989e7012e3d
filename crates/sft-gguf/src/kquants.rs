//! ggml's "K-quants" of 256-value super-blocks, Q4_K, Q5_K and Q6_K (the types of llama.cpp's Q4_K_M mixture), and
//! the 32-value Q5_0 that llama.cpp falls back to where a row is not a whole number of super-blocks.
//!
//! Written by hand: a K-quant file is only as good as its agreement with llama.cpp, and that agreement is byte for
//! byte here — the same least-squares search for each block's scale and minimum, in the same f32 arithmetic and
//! order, so the bytes equal those of llama.cpp's quantizer (`llama_model_quantize` without an importance matrix;
//! checked by `scripts/gguf/check_quantize.py` and the golden blocks in this crate's tests). The Rust crates that
//! carry K-quants do so as part of a whole tensor library (candle), not as a format encoder.
//!
//! Layouts (bytes, in order): Q4_K `d` f16, `dmin` f16, 12 bytes of eight 6-bit scales and eight 6-bit minimums,
//! 128 bytes of 4-bit codes (144); Q5_K the same with 32 bytes of fifth bits before the codes (176); Q6_K 128 bytes
//! of low 4 bits, 64 bytes of high 2 bits, sixteen i8 scales, `d` f16 (210); Q5_0 `d` f16, 4 bytes of fifth bits,
//! 16 bytes of 4-bit codes (22). A value decodes as `d · scale_j · q − dmin · min_j` (Q4_K, Q5_K),
//! `d · scale_j · (q − 32)` (Q6_K), `d · (q − 16)` (Q5_0).

use half::f16;
use rayon::prelude::*;

use crate::types::GgmlType;

/// Values per super-block.
pub(crate) const QK_K: usize = 256;

/// Round to nearest, halves to even, as ggml's `nearest_int` does (adding 1.5 · 2²³ and reading the mantissa);
/// exact for |v| < 2²², which every caller here stays within.
fn nearest_int(v: f32) -> i32 {
    ((v + 12_582_912.0f32).to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

fn f16_bits(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

fn f16_value(bytes: &[u8]) -> f32 {
    f16::from_le_bytes([bytes[0], bytes[1]]).to_f32()
}

/// A scale and a minimum for `x` with codes `0..=nmax` (`codes`), chosen by a weighted least-squares search over
/// `nstep + 1` candidate scales `(rmin + rdelta · is + nmax) / (max − min)`; returns `(scale, −min)`, `min ≤ 0`, and
/// leaves the best codes in `codes`. All-equal input: scale 0, codes 0.
fn scale_and_min(
    x: &[f32],
    weights: &[f32],
    nmax: i32,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    codes: &mut [u8],
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        min = if x[i] < min { x[i] } else { min };
        max = if x[i] > max { x[i] } else { max };
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        codes.fill(0);
        return (0.0, -min);
    }
    let code = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, nmax);
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        codes[i] = code(iscale, x[i], min) as u8;
        let diff = scale * f32::from(codes[i]) + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut trial = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = code(iscale, x[i], min);
            trial[i] = l as u8;
            let (w, l) = (weights[i], l as f32);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(trial[i]) + this_min - x[i];
                error += weights[i] * (diff * diff);
            }
            if error < best_error {
                codes[..n].copy_from_slice(&trial[..n]);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// A signed scale for 16 values with codes `−32..=31` (stored `+ 32` in `codes`), chosen among 19 candidates by
/// weighted (x²) least squares; 0 and codes 0 for an all-zero group.
fn symmetric_scale(x: &[f32], codes: &mut [u8]) -> f32 {
    const NMAX: i32 = 32;
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < 1e-15 {
        codes.fill(0);
        return 0.0;
    }
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-NMAX, NMAX - 1);
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for &v in x {
            let l = level(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let mut iscale = -(NMAX as f32) / max;
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = (level(iscale, v) + NMAX) as u8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        iscale = -(NMAX as f32 + 0.1f32 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (c, &v) in codes.iter_mut().zip(x) {
                *c = (level(iscale, v) + NMAX) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// The 12 bytes of eight 6-bit scales and eight 6-bit minimums of a Q4_K / Q5_K super-block.
fn pack_scales(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut out = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
            out[j - 4] |= (ls[j] >> 4) << 6;
            out[j] |= (lm[j] >> 4) << 6;
        }
    }
    out
}

/// Sub-block `j`'s 6-bit scale and minimum from the 12 packed bytes.
fn unpack_scale(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// One Q4_K (`bits` 4) or Q5_K (`bits` 5) super-block of 256 values: eight sub-blocks of 32, each with its own
/// scale and minimum (searched), quantized to 6 bits against the super-block's largest; the codes then recomputed
/// against the quantized scales.
fn encode_k_block(x: &[f32], bits: u32, out: &mut Vec<u8>) {
    let (nmax, rmin, nstep) = if bits == 4 { (15, -1.0f32, 20) } else { (31, -0.5f32, 15) };
    let mut codes = [0u8; QK_K];
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let sub = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in sub {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|i| av_x + sub[i].abs());
        (scales[j], mins[j]) = scale_and_min(sub, &weights, nmax, rmin, 0.1, nstep, &mut codes[32 * j..32 * j + 32]);
        max_scale = if scales[j] > max_scale { scales[j] } else { max_scale };
        max_min = if mins[j] > max_min { mins[j] } else { max_min };
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    for j in 0..8 {
        // ggml stores the rounded value in a uint8_t (wrapping), then caps it at 63.
        ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    let packed = pack_scales(&ls, &lm);
    let (d, dmin) = (f16_bits(max_scale / 63.0), f16_bits(max_min / 63.0));
    for j in 0..8 {
        let (sc, m) = unpack_scale(j, &packed);
        let scale = f16_value(&d) * f32::from(sc);
        if scale == 0.0 {
            continue; // the searched codes stay
        }
        let offset = f16_value(&dmin) * f32::from(m);
        for i in 32 * j..32 * j + 32 {
            codes[i] = nearest_int((x[i] + offset) / scale).clamp(0, nmax) as u8;
        }
    }
    out.extend(d);
    out.extend(dmin);
    out.extend(packed);
    if bits == 5 {
        let mut high = [0u8; 32];
        for (pair, chunk) in codes.chunks(64).enumerate() {
            for l in 0..32 {
                high[l] |= (chunk[l] >> 4) << (2 * pair) | (chunk[l + 32] >> 4) << (2 * pair + 1);
            }
        }
        out.extend(high);
    }
    for chunk in codes.chunks(64) {
        out.extend((0..32).map(|l| (chunk[l] & 0xF) | ((chunk[l + 32] & 0xF) << 4)));
    }
}

/// `values` (a multiple of 256) encoded super-block by super-block with `encode` (`block_bytes` each): runs of 64
/// super-blocks on rayon's threads, concatenated in order, so the bytes do not depend on the thread count.
fn per_super_block(values: &[f32], block_bytes: usize, encode: impl Fn(&[f32], &mut Vec<u8>) + Sync) -> Vec<u8> {
    let runs: Vec<Vec<u8>> = values
        .par_chunks(QK_K * 64)
        .map(|run| {
            let mut out = Vec::with_capacity(run.len() / QK_K * block_bytes);
            run.chunks(QK_K).for_each(|block| encode(block, &mut out));
            out
        })
        .collect();
    runs.concat()
}

/// `values` (a multiple of 256) as Q4_K.
pub(crate) fn encode_q4_k(values: &[f32]) -> Vec<u8> {
    per_super_block(values, GgmlType::Q4_K.block_bytes(), |block, out| encode_k_block(block, 4, out))
}

/// `values` (a multiple of 256) as Q5_K.
pub(crate) fn encode_q5_k(values: &[f32]) -> Vec<u8> {
    per_super_block(values, GgmlType::Q5_K.block_bytes(), |block, out| encode_k_block(block, 5, out))
}

/// `values` (a multiple of 256) as Q6_K.
pub(crate) fn encode_q6_k(values: &[f32]) -> Vec<u8> {
    per_super_block(values, GgmlType::Q6_K.block_bytes(), encode_q6_k_block)
}

/// One Q6_K super-block: sixteen groups of 16, each with a signed scale (searched), quantized to i8 against the
/// largest; the codes then recomputed against the quantized scales.
fn encode_q6_k_block(x: &[f32], out: &mut Vec<u8>) {
    let mut codes = [0u8; QK_K];
    let mut scales = [0.0f32; 16];
    let (mut max_scale, mut max_abs) = (0.0f32, 0.0f32);
    for g in 0..16 {
        scales[g] = symmetric_scale(&x[16 * g..16 * g + 16], &mut codes[16 * g..16 * g + 16]);
        if scales[g].abs() > max_abs {
            max_abs = scales[g].abs();
            max_scale = scales[g];
        }
    }
    if max_abs < 1e-15 {
        out.extend([0u8; 210]);
        return;
    }
    let iscale = -128.0f32 / max_scale;
    let d = f16_bits(1.0 / iscale);
    let quantized: [i8; 16] = std::array::from_fn(|g| nearest_int(iscale * scales[g]).min(127) as i8);
    for (g, &quantized) in quantized.iter().enumerate() {
        let scale = f16_value(&d) * f32::from(quantized);
        if scale == 0.0 {
            continue; // the searched codes stay
        }
        for i in 16 * g..16 * g + 16 {
            codes[i] = (nearest_int(x[i] / scale).clamp(-32, 31) + 32) as u8;
        }
    }
    let (mut low, mut high) = ([0u8; 128], [0u8; 64]);
    for (half, chunk) in codes.chunks(128).enumerate() {
        for l in 0..32 {
            let q = [chunk[l], chunk[l + 32], chunk[l + 64], chunk[l + 96]];
            low[64 * half + l] = (q[0] & 0xF) | ((q[2] & 0xF) << 4);
            low[64 * half + l + 32] = (q[1] & 0xF) | ((q[3] & 0xF) << 4);
            high[32 * half + l] = (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
        }
    }
    out.extend(low);
    out.extend(high);
    out.extend(quantized.iter().map(|&s| s as u8));
    out.extend(d);
}

/// `values` (a multiple of 32) as Q5_0: per block `d = m / −16` (`m` the value of largest magnitude, the first on
/// ties) and 5-bit codes `min(31, trunc(x · (1 / d) + 16.5))`, in f32 as ggml's reference computes them.
pub(crate) fn encode_q5_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / 32 * 22);
    for block in values.chunks(32) {
        let m = block.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = m / -16.0;
        let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
        // In [0.5, 32.5] before the cast: truncation is the floor; 32 (the largest value's own code) is capped.
        let code = |v: f32| ((v * inverse + 16.5) as i8 as u8).min(31);
        let mut high = 0u32;
        let mut low = [0u8; 16];
        for j in 0..16 {
            let (a, b) = (code(block[j]), code(block[16 + j]));
            low[j] = (a & 0xF) | ((b & 0xF) << 4);
            high |= u32::from(a >> 4) << j | u32::from(b >> 4) << (j + 16);
        }
        out.extend(f16_bits(d));
        out.extend(high.to_le_bytes());
        out.extend(low);
    }
    out
}

/// The values of Q4_K (`bits` 4) or Q5_K (`bits` 5) super-blocks.
fn decode_k(bytes: &[u8], bits: u32) -> Vec<f32> {
    let block_bytes = if bits == 4 { 144 } else { 176 };
    let mut out = Vec::with_capacity(bytes.len() / block_bytes * QK_K);
    for block in bytes.chunks_exact(block_bytes) {
        let (d, dmin) = (f16_value(&block[0..2]), f16_value(&block[2..4]));
        let scales = &block[4..16];
        let (high, low) = if bits == 4 { (&[][..], &block[16..]) } else { (&block[16..48], &block[48..]) };
        for pair in 0..4 {
            for nibble in 0..2 {
                let (sc, m) = unpack_scale(2 * pair + nibble, scales);
                let (scale, offset) = (d * f32::from(sc), dmin * f32::from(m));
                for l in 0..32 {
                    let mut q = (low[32 * pair + l] >> (4 * nibble)) & 0xF;
                    if bits == 5 {
                        q |= ((high[l] >> (2 * pair + nibble)) & 1) << 4;
                    }
                    out.push(scale * f32::from(q) - offset);
                }
            }
        }
    }
    out
}

/// The values of Q4_K super-blocks.
pub(crate) fn decode_q4_k(bytes: &[u8]) -> Vec<f32> {
    decode_k(bytes, 4)
}

/// The values of Q5_K super-blocks.
pub(crate) fn decode_q5_k(bytes: &[u8]) -> Vec<f32> {
    decode_k(bytes, 5)
}

/// The values of Q6_K super-blocks.
pub(crate) fn decode_q6_k(bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bytes.len() / 210 * QK_K);
    for block in bytes.chunks_exact(210) {
        let (low, high, scales, d) = (&block[..128], &block[128..192], &block[192..208], f16_value(&block[208..]));
        let mut values = [0.0f32; QK_K];
        for half in 0..2 {
            for l in 0..32 {
                let h = high[32 * half + l];
                let (lo, hi) = (low[64 * half + l], low[64 * half + l + 32]);
                let q = [
                    (lo & 0xF) | ((h & 3) << 4),
                    (hi & 0xF) | (((h >> 2) & 3) << 4),
                    (lo >> 4) | (((h >> 4) & 3) << 4),
                    (hi >> 4) | (((h >> 6) & 3) << 4),
                ];
                for (k, &q) in q.iter().enumerate() {
                    let i = 128 * half + 32 * k + l;
                    let scale = f32::from(scales[i / 16] as i8);
                    values[i] = d * scale * f32::from(q as i8 - 32);
                }
            }
        }
        out.extend(values);
    }
    out
}

/// The values of Q5_0 blocks.
pub(crate) fn decode_q5_0(bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bytes.len() / 22 * 32);
    for block in bytes.chunks_exact(22) {
        let d = f16_value(&block[..2]);
        let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        let code = |j: usize, q: u8| f32::from(i16::from(q | (((high >> j) & 1) as u8) << 4) - 16) * d;
        out.extend((0..16).map(|j| code(j, block[6 + j] & 0xF)));
        out.extend((0..16).map(|j| code(j + 16, block[6 + j] >> 4)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_halves_to_even() {
        assert_eq!([0.5, 1.5, 2.5, -0.5, -1.5, 2.49, -7.6].map(nearest_int), [0, 2, 2, 0, -2, 2, -8]);
    }

    #[test]
    fn scales_pack_and_unpack() {
        let ls = [0, 1, 17, 63, 32, 45, 2, 63];
        let lm = [63, 5, 0, 31, 63, 16, 9, 1];
        let packed = pack_scales(&ls, &lm);
        for j in 0..8 {
            assert_eq!(unpack_scale(j, &packed), (ls[j], lm[j]), "sub-block {j}");
        }
    }
}
