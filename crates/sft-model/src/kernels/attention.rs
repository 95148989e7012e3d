//! Causal grouped-query attention over variable-length segments of a token sequence, forward and backward.
//!
//! Tokens are the rows of `[tokens, heads × d]` matrices. A *segment* is a run of rows that attend causally
//! among themselves (one example of a padded row, or of a packed one); rows outside every segment (padding) get
//! zero output and gradient. Work is split into (segment, key/value head) tasks, each of which owns its query heads'
//! rows and its key/value head's rows, so no two tasks write the same output. The forward keeps the
//! probabilities `P` of every (segment, head), `[len, len]`, for the backward.

use rayon::prelude::*;

use super::gemm::{Triangle, matmul, transpose};

/// The shape of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heads {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (a divisor of `heads`).
    pub kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
}

/// Copies head `h`'s `[len, d]` block of the rows `start..start + len` out of a `[tokens, n × d]` matrix.
#[inline(always)]
fn gather(x: &[f32], n: usize, d: usize, h: usize, start: usize, len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(len * d);
    for t in start..start + len {
        out.extend_from_slice(&x[(t * n + h) * d..(t * n + h + 1) * d]);
    }
    out
}

/// Writes a `[len, d]` block back as head `h` of rows `start..`.
fn scatter(block: &[f32], x: &mut [f32], n: usize, d: usize, h: usize, start: usize) {
    for (r, row) in block.chunks_exact(d).enumerate() {
        let t = start + r;
        x[(t * n + h) * d..(t * n + h + 1) * d].copy_from_slice(row);
    }
}

/// Row-wise softmax of the lower triangle of the `[len, len]` scores (times `scale`); the upper triangle is set
/// to 0. Maximum and sum are taken over sixteen lanes so that every loop vectorises.
#[inline(always)]
fn causal_softmax(s: &mut [f32], len: usize, scale: f32) {
    for (i, row) in s.chunks_exact_mut(len).enumerate() {
        let (live, future) = row.split_at_mut(i + 1);
        let mut lanes = [f32::NEG_INFINITY; 16];
        let mut chunks = live.chunks_exact_mut(16);
        for c in chunks.by_ref() {
            for l in 0..16 {
                c[l] *= scale;
                lanes[l] = lanes[l].max(c[l]);
            }
        }
        for (l, v) in chunks.into_remainder().iter_mut().enumerate() {
            *v *= scale;
            lanes[l] = lanes[l].max(*v);
        }
        let max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in live.iter_mut() {
            *v = super::exp::exp(*v - max);
        }
        let mut sums = [0f32; 16];
        let chunks = live.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..16 {
                sums[l] += c[l];
            }
        }
        for (l, v) in rest.iter().enumerate() {
            sums[l] += v;
        }
        let inv = 1.0 / super::sum16(sums);
        live.iter_mut().for_each(|v| *v *= inv);
        future.iter_mut().for_each(|v| *v = 0.0);
    }
}

/// The length of the flat probabilities buffer of `segments` with `heads` query heads: Σ heads · len².
pub(crate) fn probs_len(segments: &[(usize, usize)], heads: usize) -> usize {
    segments.iter().map(|&(_, len)| heads * len * len).sum()
}

/// The (segment, key/value head) tasks in order, with the offset of each task's probabilities in the flat buffer
/// (segment-major, then query head: head `h` of segment `s` at `Σ_{s' < s} heads · len_{s'}² + h · len_s²`).
fn tasks(segments: &[(usize, usize)], heads: usize, kv_heads: usize) -> Vec<(usize, usize, usize)> {
    let group = heads / kv_heads.max(1);
    let mut offset = 0;
    let mut out = Vec::with_capacity(segments.len() * kv_heads);
    for (s, &(_, len)) in segments.iter().enumerate() {
        for g in 0..kv_heads {
            out.push((s, g, offset + g * group * len * len));
        }
        offset += heads * len * len;
    }
    out
}

/// `softmax(q·kᵀ · scale) · v` per head, causal within each `(start, len)` segment. `q` is `[tokens, heads × d]`,
/// `k`/`v` `[tokens, kv_heads × d]` (query head `h` reads key/value head `h / (heads / kv_heads)`). Returns the
/// output `[tokens, heads × d]`; with `probs` (of [`probs_len`] elements) it also keeps the probabilities of each
/// (segment, head), `[len, len]` row-major, for [`backward`].
pub(crate) fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    segments: &[(usize, usize)],
    shape: Heads,
    scale: f32,
    probs: Option<&mut [f32]>,
) -> Vec<f32> {
    let Heads { heads, kv_heads, head_dim: d } = shape;
    let group = heads / kv_heads.max(1);
    let tasks = tasks(segments, heads, kv_heads);
    // Each task writes its query heads' probabilities into its own part of `probs`, or into a scratch block.
    let chunks: Vec<Option<&mut [f32]>> = match probs {
        Some(buffer) => {
            let mut chunks = Vec::with_capacity(tasks.len());
            let mut rest = buffer;
            for &(s, _, _) in &tasks {
                let len = segments[s].1;
                let (chunk, tail) = rest.split_at_mut(group * len * len);
                chunks.push(Some(chunk));
                rest = tail;
            }
            chunks
        }
        None => tasks.iter().map(|_| None).collect(),
    };
    let results: Vec<Vec<f32>> = tasks
        .par_iter()
        .zip(chunks)
        .map(|(&(s, g, _), mut chunk)| {
            let (start, len) = segments[s];
            super::vectorized(
                #[inline(always)]
                || {
                    let kg = gather(k, kv_heads, d, g, start, len);
                    let mut kt = vec![0f32; len * d];
                    transpose(&kg, len, d, &mut kt);
                    let vg = gather(v, kv_heads, d, g, start, len);
                    let mut outputs = vec![0f32; group * len * d];
                    let mut scratch = if chunk.is_some() { Vec::new() } else { vec![0f32; len * len] };
                    for (i, o) in outputs.chunks_exact_mut(len * d).enumerate() {
                        let qh = gather(q, heads, d, g * group + i, start, len);
                        let p: &mut [f32] = match chunk.as_deref_mut() {
                            Some(c) => &mut c[i * len * len..(i + 1) * len * len],
                            None => &mut scratch,
                        };
                        // Writes the lower triangle; the softmax zeroes the rest.
                        matmul(&qh, &kt, p, [len, d, len], Triangle::LowerC, false);
                        causal_softmax(p, len, scale);
                        matmul(p, &vg, o, [len, len, d], Triangle::LowerA, false);
                    }
                    outputs
                },
            )
        })
        .collect();
    let tokens = q.len() / (heads * d).max(1);
    let mut out = vec![0f32; tokens * heads * d];
    for (&(s, g, _), outputs) in tasks.iter().zip(results) {
        let (start, len) = segments[s];
        for (i, o) in outputs.chunks_exact(len * d).enumerate() {
            scatter(o, &mut out, heads, d, g * group + i, start);
        }
    }
    out
}

/// What one (segment, key/value head) task of the backward produced.
struct BackwardTask {
    dq: Vec<Vec<f32>>,
    dk: Vec<f32>,
    dv: Vec<f32>,
}

/// The gradients of [`forward`] with respect to `q`, `k` and `v` for the output gradient `dout`, from the inputs and
/// the probabilities the forward returned.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dout: &[f32],
    segments: &[(usize, usize)],
    shape: Heads,
    scale: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Heads { heads, kv_heads, head_dim: d } = shape;
    let group = heads / kv_heads.max(1);
    let tasks = tasks(segments, heads, kv_heads);
    let results: Vec<BackwardTask> = tasks
        .par_iter()
        .map(|&(s, g, offset)| {
            let (start, len) = segments[s];
            super::vectorized(
                #[inline(always)]
                || {
                    let kg = gather(k, kv_heads, d, g, start, len);
                    let vg = gather(v, kv_heads, d, g, start, len);
                    let mut vt = vec![0f32; len * d];
                    transpose(&vg, len, d, &mut vt);
                    let mut task = BackwardTask {
                        dq: Vec::with_capacity(group),
                        dk: vec![0f32; len * d],
                        dv: vec![0f32; len * d],
                    };
                    let mut transposed = vec![0f32; len * len];
                    for (i, h) in (g * group..(g + 1) * group).enumerate() {
                        let p = &probs[offset + i * len * len..offset + (i + 1) * len * len];
                        let qh = gather(q, heads, d, h, start, len);
                        let doh = gather(dout, heads, d, h, start, len);
                        // dV += Pᵀ · dO
                        transpose(p, len, len, &mut transposed);
                        matmul(&transposed, &doh, &mut task.dv, [len, len, d], Triangle::UpperA, true);
                        // dP = dO · Vᵀ (lower triangle), dS = P ⊙ (dP − Σ_j P ⊙ dP) · scale
                        let mut ds = vec![0f32; len * len];
                        matmul(&doh, &vt, &mut ds, [len, d, len], Triangle::LowerC, false);
                        for (i, (ds_row, p_row)) in ds.chunks_exact_mut(len).zip(p.chunks_exact(len)).enumerate() {
                            let live = i + 1;
                            let delta = super::dot(&ds_row[..live], &p_row[..live]);
                            for (x, &pv) in ds_row[..live].iter_mut().zip(&p_row[..live]) {
                                *x = pv * (*x - delta) * scale;
                            }
                            ds_row[live..].iter_mut().for_each(|x| *x = 0.0);
                        }
                        // dQ = dS · K, dK += dSᵀ · Q
                        let mut dq = vec![0f32; len * d];
                        matmul(&ds, &kg, &mut dq, [len, len, d], Triangle::LowerA, false);
                        task.dq.push(dq);
                        transpose(&ds, len, len, &mut transposed);
                        matmul(&transposed, &qh, &mut task.dk, [len, len, d], Triangle::UpperA, true);
                    }
                    task
                },
            )
        })
        .collect();
    let tokens = q.len() / (heads * d).max(1);
    let mut dq = vec![0f32; tokens * heads * d];
    let mut dk = vec![0f32; tokens * kv_heads * d];
    let mut dv = vec![0f32; tokens * kv_heads * d];
    for (&(s, g, _), task) in tasks.iter().zip(results) {
        let start = segments[s].0;
        for (i, block) in task.dq.iter().enumerate() {
            scatter(block, &mut dq, heads, d, g * group + i, start);
        }
        scatter(&task.dk, &mut dk, kv_heads, d, g, start);
        scatter(&task.dv, &mut dv, kv_heads, d, g, start);
    }
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{data, max_diff};

    /// Attention in f64 by the definition: for each segment and head, softmax over keys `j ≤ i` of the segment.
    fn reference(q: &[f32], k: &[f32], v: &[f32], segments: &[(usize, usize)], shape: Heads, scale: f64) -> Vec<f64> {
        let Heads { heads, kv_heads, head_dim: d } = shape;
        let tokens = q.len() / (heads * d);
        let mut out = vec![0f64; tokens * heads * d];
        for &(start, len) in segments {
            for h in 0..heads {
                let g = h / (heads / kv_heads);
                for i in 0..len {
                    let qi = &q[((start + i) * heads + h) * d..][..d];
                    let scores: Vec<f64> = (0..=i)
                        .map(|j| {
                            let kj = &k[((start + j) * kv_heads + g) * d..][..d];
                            qi.iter().zip(kj).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() * scale
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                    for (j, s) in scores.iter().enumerate() {
                        let p = (s - max).exp() / z;
                        let vj = &v[((start + j) * kv_heads + g) * d..][..d];
                        for c in 0..d {
                            out[((start + i) * heads + h) * d + c] += p * f64::from(vj[c]);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn forward_and_gradients_equal_the_definition() {
        let shape = Heads { heads: 4, kv_heads: 2, head_dim: 8 };
        // Two segments with a padding row between them and one after.
        let segments = [(0, 7), (8, 19)];
        let tokens = 28;
        let (q, k, v) = (data(tokens * 32, 1, 1.0), data(tokens * 16, 2, 1.0), data(tokens * 16, 3, 1.0));
        let scale = 1.0 / 8f32.sqrt();
        let mut probs = vec![f32::NAN; probs_len(&segments, 4)];
        let out = forward(&q, &k, &v, &segments, shape, scale, Some(&mut probs));
        assert_eq!(out, forward(&q, &k, &v, &segments, shape, scale, None), "keeping P changes nothing");
        let expected = reference(&q, &k, &v, &segments, shape, f64::from(scale));
        let worst = out.iter().zip(&expected).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-5, "forward differs by {worst}");
        assert!(out[7 * 32..8 * 32].iter().chain(&out[27 * 32..]).all(|&x| x == 0.0), "padding rows are zero");

        // Gradients of Σ out ⊙ w against central differences of the f64 reference.
        let w = data(tokens * 32, 4, 1.0);
        let (dq, dk, dv) = backward(&q, &k, &v, &probs, &w, &segments, shape, scale);
        let loss = |q: &[f32], k: &[f32], v: &[f32]| -> f64 {
            reference(q, k, v, &segments, shape, f64::from(scale)).iter().zip(&w).map(|(a, b)| a * f64::from(*b)).sum()
        };
        let h = 1e-3f32;
        let numeric = |which: usize, i: usize| -> f32 {
            let mut inputs = [q.clone(), k.clone(), v.clone()];
            inputs[which][i] += h;
            let plus = loss(&inputs[0], &inputs[1], &inputs[2]);
            inputs[which][i] -= 2.0 * h;
            let minus = loss(&inputs[0], &inputs[1], &inputs[2]);
            ((plus - minus) / (2.0 * f64::from(h))) as f32
        };
        for (which, grad) in [(0, &dq), (1, &dk), (2, &dv)] {
            let n = grad.len();
            let numeric: Vec<f32> = (0..n).map(|i| numeric(which, i)).collect();
            let worst = max_diff(grad, &numeric);
            assert!(worst < 2e-3, "gradient {which} differs by {worst}");
        }
    }
}
