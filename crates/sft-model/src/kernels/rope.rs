//! Rotary embeddings in transformers' rotate-half convention on `[tokens, heads × head_dim]` rows, and the
//! transposed rotation that carries gradients back.

use rayon::prelude::*;

/// `y = x ⊙ cos + rotate_half(x) ⊙ sin` per head, `rotate_half(x) = [−x₂, x₁]` for the halves `x₁`, `x₂` of a
/// head; `x` is `[tokens, heads × d]`, `cos`/`sin` `[tokens, d]`. With `inverse`, the transposed rotation
/// (`dx = dy ⊙ cos + rotate_halfᵀ(dy ⊙ sin)`), which maps an output gradient to the input gradient.
pub(crate) fn rotate(x: &[f32], cos: &[f32], sin: &[f32], d: usize, inverse: bool) -> Vec<f32> {
    let width = x.len() / cos.len().max(1) * d;
    let mut out = vec![0f32; x.len()];
    if width == 0 {
        return out;
    }
    let rows = super::rows_per_task(width);
    out.par_chunks_mut(width * rows).zip(x.par_chunks(width * rows)).enumerate().for_each(|(chunk, (out, x))| {
        super::vectorized(
            #[inline(always)]
            || {
                for (r, (out, x)) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)).enumerate() {
                    let t = chunk * rows + r;
                    let (c, s) = (&cos[t * d..(t + 1) * d], &sin[t * d..(t + 1) * d]);
                    for (out, x) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                        rotate_head(x, c, s, out, inverse);
                    }
                }
            },
        )
    });
    out
}

#[inline(always)]
fn rotate_head(x: &[f32], c: &[f32], s: &[f32], out: &mut [f32], inverse: bool) {
    let h = x.len() / 2;
    let (x1, x2) = x.split_at(h);
    let (c1, c2) = c.split_at(h);
    let (s1, s2) = s.split_at(h);
    let (o1, o2) = out.split_at_mut(h);
    if inverse {
        for i in 0..h {
            o1[i] = x1[i] * c1[i] + x2[i] * s2[i];
            o2[i] = x2[i] * c2[i] - x1[i] * s1[i];
        }
    } else {
        for i in 0..h {
            o1[i] = x1[i] * c1[i] + -x2[i] * s1[i];
            o2[i] = x2[i] * c2[i] + x1[i] * s2[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{data, max_diff};

    #[test]
    fn the_inverse_is_the_transpose() {
        // <rotate(x), y> = <x, rotate⁻ᵀ(y)> for any x, y: the inverse flag gives the adjoint.
        let (t, heads, d) = (7, 3, 8);
        let angles = data(t * d / 2, 1, 2.0);
        let mut cos = vec![0f32; t * d];
        let mut sin = vec![0f32; t * d];
        for p in 0..t {
            for i in 0..d / 2 {
                let a = angles[p * d / 2 + i];
                for half in [0, d / 2] {
                    cos[p * d + half + i] = a.cos();
                    sin[p * d + half + i] = a.sin();
                }
            }
        }
        let (x, y) = (data(t * heads * d, 2, 1.0), data(t * heads * d, 3, 1.0));
        let rx = rotate(&x, &cos, &sin, d, false);
        let ry = rotate(&y, &cos, &sin, d, true);
        let lhs: f64 = rx.iter().zip(&y).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        let rhs: f64 = x.iter().zip(&ry).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
        // A rotation: the inverse undoes it.
        assert!(max_diff(&rotate(&rx, &cos, &sin, d, true), &x) < 1e-5);
        // rotate_half by hand for one head.
        let h = d / 2;
        for i in 0..h {
            let expected = x[i] * cos[i] - x[i + h] * sin[i];
            assert!((rx[i] - expected).abs() < 1e-6);
        }
    }
}
