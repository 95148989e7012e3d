//! Strided f32 matrix products through the `gemm` crate (the one flex's matmul calls), for the fused projections.
//!
//! Flex's matmul allocates its output zeroed and then copies it once more to align it, and Burn's `linear` makes a
//! transposed weight contiguous (a copy of the whole weight) before every product. Calling `gemm` on the
//! operands' own strides, into a buffer the caller owns, does neither. `gemm`'s entry point is `unsafe` (raw
//! pointers and strides); [`matmul`] is the one safe wrapper, which checks that every element the strides reach
//! lies inside its slice.

/// A matrix over a slice: element `(i, j)` at `data[i · rs + j · cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `[rows, cols]` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Whether every element the strides reach is inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1)
                .checked_mul(self.rs)
                .zip((self.cols - 1).checked_mul(self.cs))
                .and_then(|(r, c)| r.checked_add(c))
                .is_some_and(|last| last < self.data.len())
    }
}

/// Products of at least this many multiply-adds run on rayon's pool (flex's threshold: 192³).
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// `dst = alpha · lhs · rhs` (`accumulate`: `dst += alpha · lhs · rhs`) with `dst` row-major `[lhs.rows, rhs.cols]`.
/// Panics when the shapes disagree or a view reaches outside its slice (a caller bug, never user data).
pub(crate) fn matmul(dst: &mut [f32], lhs: View<'_>, rhs: View<'_>, alpha: f32, accumulate: bool) {
    let (m, n) = check(lhs, rhs);
    assert!(dst.len() >= m * n, "matmul: [{m}, {n}] into {}", dst.len());
    if lhs.cols == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: `dst` holds `m × n` elements and is borrowed mutably, so it aliases neither input.
    #[allow(unsafe_code)]
    unsafe {
        gemm_into(dst.as_mut_ptr(), lhs, rhs, alpha, accumulate);
    }
}

/// `alpha · lhs · rhs` as a new row-major `[lhs.rows, rhs.cols]` buffer, written once by `gemm` (never zeroed
/// first).
pub(crate) fn product(lhs: View<'_>, rhs: View<'_>, alpha: f32) -> Vec<f32> {
    let (m, n) = check(lhs, rhs);
    if lhs.cols == 0 {
        return vec![0.0; m * n];
    }
    let mut out = Vec::<f32>::with_capacity(m * n);
    // SAFETY: the buffer has capacity for `m × n` elements and is not shared. With `read_dst` false and `k > 0`,
    // `gemm` assigns every element of the `m × n` destination (it never reads it), so all `m × n` are
    // initialised when `set_len` runs.
    #[allow(unsafe_code)]
    unsafe {
        gemm_into(out.as_mut_ptr(), lhs, rhs, alpha, false);
        out.set_len(m * n);
    }
    out
}

/// The output shape `(m, n)` of `lhs · rhs`, after checking the inner dimensions and that both views stay inside
/// their slices.
fn check(lhs: View<'_>, rhs: View<'_>) -> (usize, usize) {
    assert!(rhs.rows == lhs.cols, "matmul shapes: [{}, {}] · [{}, {}]", lhs.rows, lhs.cols, rhs.rows, rhs.cols);
    assert!(lhs.in_bounds() && rhs.in_bounds(), "matmul: a strided view reaches outside its slice");
    (lhs.rows, rhs.cols)
}

/// `gemm` into the row-major `m × n` destination at `dst` (`accumulate`: added to what is there).
///
/// # Safety
/// `dst` must be valid for writes (and, with `accumulate`, reads) of `lhs.rows × rhs.cols` f32 and alias neither
/// input; the views must have passed [`check`].
#[allow(unsafe_code)]
unsafe fn gemm_into(dst: *mut f32, lhs: View<'_>, rhs: View<'_>, alpha: f32, accumulate: bool) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if m == 0 || n == 0 {
        return;
    }
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_WORK {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let stride = |s: usize| s as isize;
    // SAFETY: the caller guarantees `dst`; every element `lhs` and `rhs` reach through their strides lies inside
    // their slices (`check`), which outlive the call.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            stride(n),
            accumulate,
            lhs.data.as_ptr(),
            stride(lhs.cs),
            stride(lhs.rs),
            rhs.data.as_ptr(),
            stride(rhs.cs),
            stride(rhs.rs),
            1.0,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f64 product of two views.
    fn reference(lhs: View<'_>, rhs: View<'_>) -> Vec<f64> {
        let at = |v: &View<'_>, i: usize, j: usize| f64::from(v.data[i * v.rs + j * v.cs]);
        let mut out = vec![0.0; lhs.rows * rhs.cols];
        for i in 0..lhs.rows {
            for j in 0..rhs.cols {
                out[i * rhs.cols + j] = (0..lhs.cols).map(|p| at(&lhs, i, p) * at(&rhs, p, j)).sum();
            }
        }
        out
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        sft_rand::SplitMix64::new(seed).uniforms(n, -1.0, 1.0)
    }

    #[test]
    fn strided_products_equal_the_definition_and_accumulate() {
        // Small (one thread) and large enough for rayon, with transposed operands.
        for (m, k, n) in [(5, 7, 3), (260, 200, 190)] {
            let (a, b) = (values(m * k, 1), values(n * k, 2));
            let lhs = View::row_major(&a, m, k);
            let rhs = View::row_major(&b, n, k).t();
            let want = reference(lhs, rhs);
            let fresh = product(lhs, rhs, 2.0);
            let err = fresh.iter().zip(&want).map(|(x, y)| (f64::from(*x) - 2.0 * y).abs()).fold(0.0, f64::max);
            assert!(err < 1e-4, "product: {err}");
            let mut dst = vec![f32::NAN; m * n];
            matmul(&mut dst, lhs, rhs, 1.0, false);
            let err = dst.iter().zip(&want).map(|(x, y)| (f64::from(*x) - y).abs()).fold(0.0, f64::max);
            assert!(err < 1e-4, "[{m}, {k}] · [{k}, {n}]: {err}");
            // dst += 0.5 · lhs · rhs.
            matmul(&mut dst, lhs, rhs, 0.5, true);
            let err = dst.iter().zip(&want).map(|(x, y)| (f64::from(*x) - 1.5 * y).abs()).fold(0.0, f64::max);
            assert!(err < 1e-4, "accumulated: {err}");
        }
    }

    #[test]
    #[should_panic(expected = "outside its slice")]
    fn a_view_past_its_slice_is_refused() {
        let a = vec![0.0; 6];
        let mut dst = vec![0.0; 4];
        let view = View { data: &a, rows: 2, cols: 3, rs: 4, cs: 1 };
        matmul(&mut dst, View::row_major(&a, 2, 3), view.t(), 1.0, false);
    }
}
