//! A small register-tiled matrix product for the per-head products of attention (sequence × head_dim blocks,
//! a few hundred rows), run inside one rayon task each: the `gemm` crate's entry points are `unsafe` and tuned for
//! large products, and per-head calls through flex's matmul would each allocate and schedule.
//!
//! `C = A · B` with `A` `[m, k]`, `B` `[k, n]` and `C` `[m, n]`, all row-major and contiguous. Tiles of 4 rows ×
//! 16 columns keep their accumulators in vector registers; [`Triangle`] skips the zero half of causal blocks.

/// Which entries of a product are known to be zero (causal attention blocks, square `m = k` or `m = n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Triangle {
    /// A full product (used by the tests as the reference shape).
    #[cfg_attr(not(test), allow(dead_code))]
    Full,
    /// `A[i][p] = 0` for `p > i` (lower-triangular `A`, e.g. the probabilities `P`): row `i` sums `p ≤ i`.
    LowerA,
    /// `A[i][p] = 0` for `p < i` (upper-triangular `A`, e.g. `Pᵀ`): row `i` sums `p ≥ i`.
    UpperA,
    /// Only `C[i][j]` with `j ≤ i` are wanted (the scores `Q·Kᵀ` of causal attention); others are left as they
    /// were, or partly written where a tile straddles the diagonal.
    LowerC,
}

const MR: usize = 4;
const NR: usize = 16;

/// `C = A · B` (`accumulate`: `C += A · B`). Panics if a slice is shorter than its shape (a caller bug).
#[inline(always)]
pub(crate) fn matmul(a: &[f32], b: &[f32], c: &mut [f32], [m, k, n]: [usize; 3], triangle: Triangle, accumulate: bool) {
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    for i0 in (0..m).step_by(MR) {
        let rows = MR.min(m - i0);
        let (p_start, p_end) = match triangle {
            Triangle::LowerA => (0, (i0 + rows).min(k)),
            Triangle::UpperA => (i0.min(k), k),
            Triangle::Full | Triangle::LowerC => (0, k),
        };
        let j_end = match triangle {
            Triangle::LowerC => (i0 + rows).min(n),
            _ => n,
        };
        for j0 in (0..j_end).step_by(NR) {
            let cols = NR.min(n - j0);
            let mut acc = [[0f32; NR]; MR];
            if rows == MR && cols == NR {
                full_tile(a, b, k, n, i0, j0, p_start, p_end, &mut acc);
            } else {
                for (r, row) in acc.iter_mut().enumerate().take(rows) {
                    let a_row = &a[(i0 + r) * k..(i0 + r + 1) * k];
                    for p in p_start..p_end {
                        let av = a_row[p];
                        let b_row = &b[p * n + j0..p * n + j0 + cols];
                        for (l, bv) in b_row.iter().enumerate() {
                            row[l] += av * bv;
                        }
                    }
                }
            }
            for (r, row) in acc.iter().enumerate().take(rows) {
                let out = &mut c[(i0 + r) * n + j0..(i0 + r) * n + j0 + cols];
                if accumulate {
                    out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
                } else {
                    out.copy_from_slice(&row[..cols]);
                }
            }
        }
    }
}

/// One full 4 × 16 tile over `p_start..p_end`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn full_tile(
    a: &[f32],
    b: &[f32],
    k: usize,
    n: usize,
    i0: usize,
    j0: usize,
    p_start: usize,
    p_end: usize,
    acc: &mut [[f32; NR]; MR],
) {
    let rows: [&[f32]; MR] = std::array::from_fn(|r| &a[(i0 + r) * k + p_start..(i0 + r) * k + p_end]);
    for (q, p) in (p_start..p_end).enumerate() {
        let Some(b_row) = b[p * n + j0..].first_chunk::<NR>() else { return };
        for r in 0..MR {
            let av = rows[r][q];
            for l in 0..NR {
                acc[r][l] += av * b_row[l];
            }
        }
    }
}

/// `[rows, cols]` row-major → `[cols, rows]`.
#[inline(always)]
pub(crate) fn transpose(x: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    const B: usize = 16;
    for i0 in (0..rows).step_by(B) {
        for j0 in (0..cols).step_by(B) {
            for i in i0..(i0 + B).min(rows) {
                for j in j0..(j0 + B).min(cols) {
                    out[j * rows + i] = x[i * cols + j];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{data, max_diff};

    fn naive(a: &[f32], b: &[f32], [m, k, n]: [usize; 3]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j])).sum::<f64>() as f32;
            }
        }
        c
    }

    fn lower(mut x: Vec<f32>, cols: usize) -> Vec<f32> {
        for (i, row) in x.chunks_mut(cols).enumerate() {
            row.iter_mut().skip(i + 1).for_each(|v| *v = 0.0);
        }
        x
    }

    #[test]
    fn products_of_every_edge_shape_equal_the_naive_one() {
        for shape in [[1, 1, 1], [3, 5, 7], [4, 16, 16], [9, 33, 17], [37, 64, 50], [64, 32, 64]] {
            let [m, k, n] = shape;
            let (a, b) = (data(m * k, 1, 1.0), data(k * n, 2, 1.0));
            let mut c = data(m * n, 3, 1.0);
            let before = c.clone();
            crate::kernels::vectorized(
                #[inline(always)]
                || matmul(&a, &b, &mut c, shape, Triangle::Full, false),
            );
            assert!(max_diff(&c, &naive(&a, &b, shape)) < 1e-4, "{shape:?}");
            crate::kernels::vectorized(
                #[inline(always)]
                || matmul(&a, &b, &mut c, shape, Triangle::Full, true),
            );
            let twice: Vec<f32> = naive(&a, &b, shape).iter().map(|v| 2.0 * v).collect();
            assert!(max_diff(&c, &twice) < 2e-4, "{shape:?} accumulated");
            assert_ne!(c, before);
        }
    }

    #[test]
    fn triangles_skip_only_zeros() {
        for l in [1, 5, 16, 21, 40] {
            let d = 8;
            // LowerA: a lower-triangular [l, l] times [l, d].
            let a = lower(data(l * l, 4, 1.0), l);
            let b = data(l * d, 5, 1.0);
            let mut c = vec![0f32; l * d];
            matmul(&a, &b, &mut c, [l, l, d], Triangle::LowerA, false);
            assert!(max_diff(&c, &naive(&a, &b, [l, l, d])) < 1e-4, "LowerA {l}");
            // UpperA: the transpose of a lower-triangular matrix.
            let mut at = vec![0f32; l * l];
            transpose(&a, l, l, &mut at);
            matmul(&at, &b, &mut c, [l, l, d], Triangle::UpperA, false);
            assert!(max_diff(&c, &naive(&at, &b, [l, l, d])) < 1e-4, "UpperA {l}");
            // LowerC: the lower triangle of [l, d] times [d, l].
            let (q, kt) = (data(l * d, 6, 1.0), data(d * l, 7, 1.0));
            let mut s = vec![0f32; l * l];
            matmul(&q, &kt, &mut s, [l, d, l], Triangle::LowerC, false);
            let full = naive(&q, &kt, [l, d, l]);
            assert!(max_diff(&lower(s, l), &lower(full, l)) < 1e-4, "LowerC {l}");
        }
    }

    #[test]
    fn transpose_moves_every_element() {
        let x: Vec<f32> = (0..35).map(|v| v as f32).collect();
        let mut t = vec![0f32; 35];
        transpose(&x, 5, 7, &mut t);
        for i in 0..5 {
            for j in 0..7 {
                assert_eq!(t[j * 5 + i], x[i * 7 + j]);
            }
        }
    }
}
