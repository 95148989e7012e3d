//! `lora_dropout`: inverted dropout on an adapter's input, from a fast seedable generator.
//!
//! Burn's `Dropout` draws each element from the backend generator (ChaCha20 on flex), which took ~10% of a
//! training step of the tiny model. This one draws from a thread-local SplitMix64 on the host, 32 bits per element,
//! and multiplies by the resulting `{0, 1 / (1 − p)}` mask. The generator is per thread, so the masks of a
//! training loop depend only on its seed and the order of its forward passes, whatever other threads do; a
//! trainer seeds it before every step ([`seed_dropout`]).

use std::cell::RefCell;

use burn::prelude::*;
use burn::tensor::DType;
use sft_rand::SplitMix64;

thread_local! {
    static GENERATOR: RefCell<SplitMix64> = RefCell::new(SplitMix64::new(0));
}

/// Restarts this thread's dropout generator from `seed`.
pub fn seed_dropout(seed: u64) {
    GENERATOR.with(|g| *g.borrow_mut() = SplitMix64::new(seed));
}

/// `x` with each element zeroed with probability `p` and the rest scaled by `1 / (1 − p)`, when `x` is on an
/// autodiff device (training) and `p > 0`; `x` unchanged otherwise (Burn's `Dropout` rule).
pub(crate) fn dropout<const D: usize>(x: Tensor<D>, p: f64) -> Tensor<D> {
    if p <= 0.0 || !x.device().is_autodiff() {
        return x;
    }
    if p >= 1.0 {
        return x.zeros_like();
    }
    let dims = x.dims();
    let n: usize = dims.iter().product();
    let keep = (1.0 / (1.0 - p)) as f32;
    // An element is dropped when its 32 random bits fall below p · 2³².
    let threshold = (p * 4_294_967_296.0) as u64;
    let mut mask = Vec::with_capacity(n + 1);
    GENERATOR.with(|g| {
        let mut g = g.borrow_mut();
        while mask.len() < n {
            let bits = g.next_u64();
            for half in [bits & 0xffff_ffff, bits >> 32] {
                mask.push(if half < threshold { 0.0 } else { keep });
            }
        }
    });
    mask.truncate(n);
    let mask = Tensor::<D>::from_data(TensorData::new(mask, dims), (&x.device(), DType::F32));
    let mask = if x.dtype() == DType::F32 { mask } else { mask.cast(x.dtype()) };
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_p_scales_the_rest_and_repeats_for_a_seed() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::ones([200, 500], &device);
        let draw = || {
            seed_dropout(9);
            dropout(x.clone(), 0.1).inner().into_data().try_to_vec::<f32>().unwrap_or_default()
        };
        let (a, b) = (draw(), draw());
        assert_eq!(a, b, "same seed, same mask");
        let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
        assert!((dropped - 0.1).abs() < 0.005, "{dropped}");
        let keep = (1.0 / 0.9) as f32;
        assert!(a.iter().all(|&v| v == 0.0 || v == keep));
        // Inference (no autodiff) and p = 0 leave x alone.
        let plain = Tensor::<2>::ones([2, 3], &Device::flex());
        assert_eq!(dropout(plain, 0.5).into_data().try_to_vec::<f32>().unwrap_or_default(), vec![1.0; 6]);
    }
}
