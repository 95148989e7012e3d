//! RMSNorm over the last dimension, forward and backward, rows in parallel.

use rayon::prelude::*;

/// `y = x / √(mean(x²) + eps) ⊙ γ` for `x` `[rows, width]`; returns `y` and each row's `1 / √(mean(x²) + eps)`.
pub(crate) fn forward(x: &[f32], gamma: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    let rows = x.len() / width.max(1);
    let mut y = vec![0f32; x.len()];
    let mut rstd = vec![0f32; rows];
    if width == 0 {
        return (y, rstd);
    }
    let per = super::rows_per_task(width);
    y.par_chunks_mut(width * per).zip(rstd.par_chunks_mut(per)).zip(x.par_chunks(width * per)).for_each(
        |((y, rstd), x)| {
            super::vectorized(
                #[inline(always)]
                || {
                    for ((y, r), x) in y.chunks_exact_mut(width).zip(rstd.iter_mut()).zip(x.chunks_exact(width)) {
                        *r = 1.0 / (super::sum_squares(x) / width as f32 + eps).sqrt();
                        for ((y, x), g) in y.iter_mut().zip(x).zip(gamma) {
                            *y = x * *r * g;
                        }
                    }
                },
            )
        },
    );
    (y, rstd)
}

/// The gradients of [`forward`] for an output gradient `dy`: `dx = r ⊙ (γ ⊙ dy) − x · r³ · Σ(γ ⊙ dy ⊙ x) / width`
/// per row, and with `gamma_grad` also `dγ = Σ_rows dy ⊙ x · r`.
pub(crate) fn backward(
    x: &[f32],
    gamma: &[f32],
    rstd: &[f32],
    dy: &[f32],
    gamma_grad: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let width = gamma.len();
    let mut dx = vec![0f32; x.len()];
    if width == 0 {
        return (dx, gamma_grad.then(Vec::new));
    }
    let per = super::rows_per_task(width);
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(width * per)
        .zip(x.par_chunks(width * per))
        .zip(dy.par_chunks(width * per))
        .zip(rstd.par_chunks(per))
        .map(|(((dx, x), dy), rstd)| {
            super::vectorized(
                #[inline(always)]
                || {
                    let mut dgamma = if gamma_grad { vec![0f32; width] } else { Vec::new() };
                    for (((dx, x), dy), &r) in
                        dx.chunks_exact_mut(width).zip(x.chunks_exact(width)).zip(dy.chunks_exact(width)).zip(rstd)
                    {
                        let coefficient = super::dot3(gamma, dy, x) * r * r * r / width as f32;
                        for (((dx, x), dy), g) in dx.iter_mut().zip(x).zip(dy).zip(gamma) {
                            *dx = r * g * dy - x * coefficient;
                        }
                        if gamma_grad {
                            for ((d, x), dy) in dgamma.iter_mut().zip(x).zip(dy) {
                                *d += dy * x * r;
                            }
                        }
                    }
                    dgamma
                },
            )
        })
        .collect();
    let dgamma = gamma_grad.then(|| {
        let mut total = vec![0f32; width];
        for part in &partials {
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        }
        total
    });
    (dx, dgamma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{data, max_diff};

    #[test]
    fn gradients_equal_finite_differences() {
        let (rows, width, eps) = (3, 37, 1e-5);
        let x = data(rows * width, 1, 1.0);
        let gamma = data(width, 2, 1.0);
        let w = data(rows * width, 3, 1.0);
        let loss = |x: &[f32], g: &[f32]| -> f64 {
            let (y, _) = forward(x, g, eps);
            y.iter().zip(&w).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum()
        };
        let (y, rstd) = forward(&x, &gamma, eps);
        for r in 0..rows {
            let row = &x[r * width..(r + 1) * width];
            let ms: f64 = row.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / width as f64;
            let expected = f64::from(row[5]) / (ms + f64::from(eps)).sqrt() * f64::from(gamma[5]);
            assert!((f64::from(y[r * width + 5]) - expected).abs() < 1e-5);
        }
        let (dx, dgamma) = backward(&x, &gamma, &rstd, &w, true);
        let h = 1e-2f32;
        let numeric = |i: usize, of_gamma: bool| {
            let (mut xp, mut gp) = (x.clone(), gamma.clone());
            let (mut xm, mut gm) = (x.clone(), gamma.clone());
            if of_gamma {
                gp[i] += h;
                gm[i] -= h;
            } else {
                xp[i] += h;
                xm[i] -= h;
            }
            ((loss(&xp, &gp) - loss(&xm, &gm)) / (2.0 * f64::from(h))) as f32
        };
        let nx: Vec<f32> = (0..x.len()).map(|i| numeric(i, false)).collect();
        let ng: Vec<f32> = (0..width).map(|i| numeric(i, true)).collect();
        assert!(max_diff(&dx, &nx) < 2e-3, "{}", max_diff(&dx, &nx));
        assert!(max_diff(&dgamma.unwrap_or_default(), &ng) < 2e-3);
    }
}
