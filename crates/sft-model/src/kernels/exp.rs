//! `exp` for f32 that LLVM vectorises: libm's `expf` is a scalar call (it was 8% of a training step's samples).
//!
//! Cody–Waite range reduction `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, then Cephes' `expf` polynomial for `e^r`
//! (coefficients from Cephes, relative error below 2e-7 on the reduced range), and `2^n` assembled from the
//! exponent bits. No branches, so a loop of it vectorises.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split into a part exact in f32 and the rest (Cephes' `C1`, `C2`).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2²³: adding it rounds a float of magnitude below 2²² to an integer held in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;
/// Below this, `e^x` is under f32's smallest normal number: the result is 0.
const MIN_X: f32 = -87.336_55;
/// Above this, `2^n` would overflow its exponent field.
const MAX_X: f32 = 88.3;

/// `e^x`, within 2 ulp of the exact value on [−87.3, 88.3]; 0 below (and for −∞), `e^88.3` above, NaN for NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let clamped = x.clamp(MIN_X, MAX_X);
    let shifted = clamped * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r2 + r + 1.0;
    // The low bits of `shifted` hold n + 2²² (two's complement in the mantissa); 2^n has exponent field n + 127.
    let biased = shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    let value = e_r * f32::from_bits(biased << 23);
    if x < MIN_X { 0.0 } else { value }
}

/// `1 / (1 + e^−x)`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_two_ulp_of_exp_over_the_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = f64::from(x).exp();
            let ours = f64::from(crate::kernels::vectorized(
                #[inline(always)]
                || exp(x),
            ));
            worst = worst.max(((ours - exact) / exact).abs());
            x += 0.001_37;
        }
        // 2 ulp of f32 is 2.4e-7 relative.
        assert!(worst < 2.4e-7, "relative error {worst}");
    }

    #[test]
    fn edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(200.0).is_finite() && exp(200.0) > 1e38);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7 && (0.0..1e-38).contains(&sigmoid(-200.0)) && sigmoid(200.0) == 1.0);
    }

    #[test]
    fn a_slice_loop_gives_the_scalar_values() {
        let xs = crate::kernels::tests::data(1000, 3, 10.0);
        let mut ys = xs.clone();
        crate::kernels::vectorized(
            #[inline(always)]
            || ys.iter_mut().for_each(|v| *v = exp(*v)),
        );
        for (x, y) in xs.iter().zip(&ys) {
            assert_eq!(*y, exp(*x));
        }
    }
}
