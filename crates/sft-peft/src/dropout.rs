//! `lora_dropout`: inverted dropout on an adapter's input, from a fast seedable generator.
//!
//! Burn's `Dropout` draws each element from the backend generator (ChaCha20 on flex), which took ~10% of a
//! training step of the tiny model. This one draws from SplitMix64 on the host, 32 bits per element, and multiplies
//! by the resulting `{0, 1 / (1 − p)}` mask. The state is per thread, so the masks of a training loop depend only on
//! its seed and the order of its forward passes, whatever other threads do; a trainer seeds it before every
//! micro-batch ([`seed_dropout`], [`seed_dropout_tokens`]).
//!
//! Two ways to draw:
//! - **one stream** ([`seed_dropout`]): the elements in row-major order from one generator, so a mask depends on
//!   the tensor's layout;
//! - **per token** ([`seed_dropout_tokens`]): each row of the input (one token's features) from its own generator,
//!   seeded by (the seed, which dropout call this is since seeding, the token's key). A token's mask then depends
//!   on what the token is, not where it sits: the same examples laid out padded (`[batch, seq]`) or padding-free
//!   (one packed row of the real tokens) draw the same mask for every real token, so a trainer may compute a
//!   micro-batch either way (and different dtypes or devices may choose differently) and still train the same.

use std::cell::RefCell;
use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;
use sft_rand::{SplitMix64, mix};

/// This thread's dropout state.
struct Stream {
    /// The one-stream generator.
    generator: SplitMix64,
    /// The seed of the per-token draws.
    seed: u64,
    /// Dropout calls since seeding (the per-token draws' call index).
    calls: u64,
    /// The key of each row (token) of the inputs, when drawing per token.
    tokens: Option<Arc<[u64]>>,
}

thread_local! {
    static STATE: RefCell<Stream> =
        RefCell::new(Stream { generator: SplitMix64::new(0), seed: 0, calls: 0, tokens: None });
}

/// Restarts this thread's dropout from `seed`, drawing masks as one stream in row-major order.
pub fn seed_dropout(seed: u64) {
    STATE.with(|s| {
        *s.borrow_mut() = Stream { generator: SplitMix64::new(seed), seed, calls: 0, tokens: None };
    });
}

/// Restarts this thread's dropout from `seed`, drawing each token's mask from its own generator: `tokens` holds one
/// key per row of the next forward pass's inputs (`batch × seq` for a `[batch, seq, features]` input, in row-major
/// order), and a token's mask in the `n`-th dropout call is a function of (`seed`, `n`, its key) alone. Keys should
/// be unique among the real tokens of a micro-batch (an example's ordinal and the token's index in it, say);
/// padding rows may share any key. An input whose row count differs from `tokens.len()` is drawn as one stream.
pub fn seed_dropout_tokens(seed: u64, tokens: Vec<u64>) {
    STATE.with(|s| {
        *s.borrow_mut() = Stream { generator: SplitMix64::new(seed), seed, calls: 0, tokens: Some(tokens.into()) };
    });
}

/// `x` with each element zeroed with probability `p` and the rest scaled by `1 / (1 − p)`, when `x` is on an
/// autodiff device (training) and `p > 0`; `x` unchanged otherwise (Burn's `Dropout` rule).
pub(crate) fn dropout<const D: usize>(x: Tensor<D>, p: f64) -> Tensor<D> {
    match mask(x.dims(), p, &x.device()) {
        None => x,
        Some(mask) if x.dtype() == DType::F32 => x * mask,
        Some(mask) => {
            let dtype = x.dtype();
            x * mask.cast(dtype)
        }
    }
}

/// The f32 mask [`dropout`] multiplies an input of shape `dims` by on `device` (entries 0, with probability `p`,
/// or `1 / (1 − p)`), drawn from this thread's state; `None` where dropout does nothing (`p = 0`, or not an
/// autodiff device).
pub(crate) fn mask<const D: usize>(dims: [usize; D], p: f64, device: &Device) -> Option<Tensor<D>> {
    if p <= 0.0 || !device.is_autodiff() {
        return None;
    }
    if p >= 1.0 {
        return Some(Tensor::zeros(dims, (device, DType::F32)));
    }
    let n: usize = dims.iter().product();
    let width = dims[D - 1].max(1);
    let keep = (1.0 / (1.0 - p)) as f32;
    // An element is dropped when its 32 random bits fall below p · 2³².
    let threshold = (p * 4_294_967_296.0) as u64;
    let draw = |g: &mut SplitMix64, out: &mut [f32]| {
        for pair in out.chunks_mut(2) {
            let bits = g.next_u64();
            for (slot, half) in pair.iter_mut().zip([bits & 0xffff_ffff, bits >> 32]) {
                *slot = if half < threshold { 0.0 } else { keep };
            }
        }
    };
    let mut mask = vec![0f32; n];
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let call = s.calls;
        s.calls += 1;
        match s.tokens.clone() {
            // Each token's generator is its own, so the rows are drawn in parallel.
            Some(tokens) if tokens.len() * width == n => {
                let seed = mix(s.seed, call);
                mask.par_chunks_mut(width).zip(tokens.par_iter()).with_min_len(64).for_each(|(row, &key)| {
                    draw(&mut SplitMix64::new(mix(seed, key)), row);
                });
            }
            _ => draw(&mut s.generator, &mut mask),
        }
    });
    Some(Tensor::from_data(TensorData::new(mask, dims), (device, DType::F32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.inner().into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    #[test]
    fn drops_about_p_scales_the_rest_and_repeats_for_a_seed() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::ones([200, 500], &device);
        let draw = || {
            seed_dropout(9);
            values(dropout(x.clone(), 0.1))
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

    #[test]
    fn a_tokens_mask_depends_on_its_key_and_the_call_not_on_its_row() {
        let device = Device::flex().autodiff();
        let width = 300;
        // Two examples of 3 and 2 tokens: padded into [2, 4] (keys (example, index); padding u64::MAX), and
        // padding-free as one row of 5.
        let key = |e: u64, i: u64| (e << 32) | i;
        let padded = vec![key(0, 0), key(0, 1), key(0, 2), u64::MAX, key(1, 0), key(1, 1), u64::MAX, u64::MAX];
        let flat = vec![key(0, 0), key(0, 1), key(0, 2), key(1, 0), key(1, 1)];
        let calls = |keys: &[u64], batch: usize| {
            seed_dropout_tokens(5, keys.to_vec());
            let x = Tensor::<3>::ones([batch, keys.len() / batch, width], &device);
            [values(dropout(x.clone(), 0.2)), values(dropout(x, 0.2))]
        };
        let (padded, flat) = (calls(&padded, 2), calls(&flat, 1));
        let row = |v: &[f32], r: usize| v[r * width..(r + 1) * width].to_vec();
        for (p, f) in [(0, 0), (1, 1), (2, 2), (4, 3), (5, 4)] {
            for call in 0..2 {
                assert_eq!(row(&padded[call], p), row(&flat[call], f), "token row {p} / {f}, call {call}");
            }
        }
        // Each call and each token draws afresh, about p of each.
        assert_ne!(row(&flat[0], 0), row(&flat[1], 0));
        assert_ne!(row(&flat[0], 0), row(&flat[0], 1));
        let dropped = flat[0].iter().filter(|&&v| v == 0.0).count() as f64 / flat[0].len() as f64;
        assert!((dropped - 0.2).abs() < 0.03, "{dropped}");
        // A different seed, a different mask; the same seed, the same mask.
        seed_dropout_tokens(6, vec![key(0, 0)]);
        let other = values(dropout(Tensor::<3>::ones([1, 1, width], &device), 0.2));
        assert_ne!(other, row(&flat[0], 0));
        seed_dropout_tokens(5, vec![key(0, 0)]);
        let same = values(dropout(Tensor::<3>::ones([1, 1, width], &device), 0.2));
        assert_eq!(same, row(&flat[0], 0));
    }
}
