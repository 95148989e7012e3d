//! SwiGLU's gate, `silu(gate) ⊙ up`, forward and backward, element-wise in parallel.

use rayon::prelude::*;

use super::exp::sigmoid;

const CHUNK: usize = 16 * 1024;

/// `silu(g) ⊙ u` with `silu(g) = g · σ(g)`.
pub(crate) fn forward(gate: &[f32], up: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; gate.len()];
    y.par_chunks_mut(CHUNK).zip(gate.par_chunks(CHUNK)).zip(up.par_chunks(CHUNK)).for_each(|((y, g), u)| {
        super::vectorized(
            #[inline(always)]
            || {
                for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
                    *y = g * sigmoid(g) * u;
                }
            },
        )
    });
    y
}

/// The gradients of [`forward`] for `dy`: `du = dy ⊙ silu(g)`, `dg = dy ⊙ u ⊙ σ(g)(1 + g(1 − σ(g)))`.
pub(crate) fn backward(gate: &[f32], up: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut dgate = vec![0f32; gate.len()];
    let mut dup = vec![0f32; gate.len()];
    dgate
        .par_chunks_mut(CHUNK)
        .zip(dup.par_chunks_mut(CHUNK))
        .zip(gate.par_chunks(CHUNK))
        .zip(up.par_chunks(CHUNK))
        .zip(dy.par_chunks(CHUNK))
        .for_each(|((((dg, du), g), u), dy)| {
            super::vectorized(
                #[inline(always)]
                || {
                    for ((((dg, du), &g), &u), &dy) in dg.iter_mut().zip(du.iter_mut()).zip(g).zip(u).zip(dy) {
                        let s = sigmoid(g);
                        *du = dy * g * s;
                        *dg = dy * u * s * (1.0 + g * (1.0 - s));
                    }
                },
            )
        });
    (dgate, dup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::data;

    #[test]
    fn values_and_gradients_match_the_formula_in_f64() {
        let n = 40_000;
        let (g, u, dy) = (data(n, 1, 4.0), data(n, 2, 1.0), data(n, 3, 1.0));
        let y = forward(&g, &u);
        let (dg, du) = backward(&g, &u, &dy);
        let h = 1e-6;
        for i in (0..n).step_by(97) {
            let (gi, ui) = (f64::from(g[i]), f64::from(u[i]));
            let silu = |g: f64| g / (1.0 + (-g).exp());
            assert!((f64::from(y[i]) - silu(gi) * ui).abs() < 1e-5 * (1.0 + (silu(gi) * ui).abs()));
            let numeric_dg = (silu(gi + h) - silu(gi - h)) / (2.0 * h) * ui * f64::from(dy[i]);
            assert!((f64::from(dg[i]) - numeric_dg).abs() < 1e-4 * (1.0 + numeric_dg.abs()), "dg at {i}");
            assert!((f64::from(du[i]) - silu(gi) * f64::from(dy[i])).abs() < 1e-5);
        }
    }
}
