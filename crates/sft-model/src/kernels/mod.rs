//! CPU kernels on plain `f32` slices behind the fused operations of [`crate::fused`] on flex.
//!
//! Written by hand because no maintained crate offers them: the training step of a decoder needs the backward
//! passes too (attention over variable-length causal segments with rotary embeddings, RMSNorm, SwiGLU, the
//! cross-entropy of a logits chunk), on slices, parallel and vectorised at the CPU's full width. Flex runs most
//! element-wise operations on one core with a separate pass (and allocation) per operation; these run each
//! fusion in one parallel pass.
//!
//! Vectorisation: the loops are written so that LLVM vectorises them (lane-wise accumulators, no data-dependent
//! branches), and [`vectorized`] compiles them for the widest instruction set the CPU has (AVX-512, AVX2 + FMA, or
//! the baseline), chosen at run time with `pulp`. Parallelism: rayon's global pool, the one flex's matmuls use.

pub(crate) mod attention;
pub(crate) mod blas;
pub(crate) mod cross_entropy;
pub(crate) mod exp;
pub(crate) mod gemm;
pub(crate) mod rms_norm;
pub(crate) mod rope;
pub(crate) mod swiglu;

/// Runs `f` compiled for the best SIMD instruction set of this CPU (detected once by `pulp`). Everything `f`
/// calls must be `#[inline(always)]` to be compiled for that instruction set too.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// Rows per rayon task for row-wise kernels of `width` elements: at least ~16k elements a task, so the scheduling
/// cost stays small next to the work.
pub(crate) fn rows_per_task(width: usize) -> usize {
    (16 * 1024 / width.max(1)).max(1)
}

/// Σ a·b with sixteen lane-wise partial sums (which LLVM keeps in vector registers), added in a fixed order.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (a_chunks, b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in a_rest.iter().zip(b_rest).enumerate() {
        acc[l] += x * y;
    }
    sum16(acc)
}

/// Σ a·b·c (lane-wise, as [`dot`]).
#[inline(always)]
pub(crate) fn dot3(a: &[f32], b: &[f32], c: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ac, bc, cc) = (a.chunks_exact(16), b.chunks_exact(16), c.chunks_exact(16));
    let (ar, br, cr) = (ac.remainder(), bc.remainder(), cc.remainder());
    for ((x, y), z) in ac.zip(bc).zip(cc) {
        for l in 0..16 {
            acc[l] += x[l] * y[l] * z[l];
        }
    }
    for (l, ((x, y), z)) in ar.iter().zip(br).zip(cr).enumerate() {
        acc[l] += x * y * z;
    }
    sum16(acc)
}

/// Σ a² (lane-wise, as [`dot`]).
#[inline(always)]
pub(crate) fn sum_squares(a: &[f32]) -> f32 {
    dot(a, a)
}

/// The sum of sixteen partial sums, pairwise.
#[inline(always)]
pub(crate) fn sum16(acc: [f32; 16]) -> f32 {
    let mut v = acc;
    for width in [8, 4, 2, 1] {
        for l in 0..width {
            v[l] += v[l + width];
        }
    }
    v[0]
}

#[cfg(test)]
pub(crate) mod tests {
    /// Deterministic normal-ish test data.
    pub(crate) fn data(n: usize, seed: u64, std: f64) -> Vec<f32> {
        sft_rand::SplitMix64::new(seed).normals(n, std)
    }

    /// max |a − b|.
    pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn dot_equals_the_f64_sum() {
        for n in [0, 1, 15, 16, 17, 64, 100] {
            let (a, b) = (data(n, 1, 1.0), data(n, 2, 1.0));
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            let ours = super::vectorized(
                #[inline(always)]
                || super::dot(&a, &b),
            );
            assert!((f64::from(ours) - exact).abs() <= 1e-5 * (1.0 + exact.abs()), "{n}: {ours} vs {exact}");
        }
    }
}
