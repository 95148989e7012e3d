//! The seeded shuffle behind sampling and splitting.
//!
//! The algorithm is fixed here, not borrowed from a crate whose implementation may change between versions, so a
//! seed selects the same rows in every release: SplitMix64 (Steele, Lea & Flood 2014, the generator Java's
//! `SplittableRandom` uses) drives a Fisher–Yates shuffle from the last position down, with unbiased bounded draws
//! by Lemire's multiply-and-reject method.

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment, output through a mixing function.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is `mix(seed + 0x9E3779B97F4A7C15)`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..bound` (`bound > 0`), without modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}

/// The permutation of `0..n` for `seed`: Fisher–Yates, `for i in (1..n).rev() { swap(i, below(i + 1)) }`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // Outputs of the reference C implementation (Vigna, prng.di.unimi.it/splitmix64.c) for seed 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn permutation_is_a_deterministic_permutation() {
        let a = permutation(1000, 7);
        assert_eq!(a, permutation(1000, 7));
        assert_ne!(a, permutation(1000, 8));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(a, sorted, "a shuffle of 1000 items that leaves them in order is astronomically unlikely");
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = SplitMix64::new(42);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.below(6) as usize] += 1;
        }
        // Each bucket expects 10,000 with a standard deviation of ~91; 5 sigma bounds.
        for c in counts {
            assert!((9_540..=10_460).contains(&c), "{counts:?}");
        }
    }
}
