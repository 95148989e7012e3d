//! # sft-rand
//!
//! The seeded random stream shared by the sft-rs crates. The algorithms are fixed here so a seed selects the same
//! rows, weights and samples in every release and on every backend: SplitMix64 (Steele, Lea & Flood 2014, the
//! generator of Java's `SplittableRandom`), unbiased bounded draws by Lemire's multiply-and-reject method,
//! Fisher–Yates permutations from the last position down, uniform doubles from the top 53 bits, normals by
//! Box–Muller.
#![deny(missing_docs)]

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
        self.state = self.state.wrapping_add(GOLDEN);
        finalise(self.state)
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

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` samples of N(0, std²) by Box–Muller (pairs from two uniforms), rounded to f32.
    pub fn normals(&mut self, n: usize, std: f64) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = 1.0 - self.uniform(); // (0, 1]
            let u2 = self.uniform();
            let r = (-2.0 * u1.ln()).sqrt() * std;
            let t = 2.0 * std::f64::consts::PI * u2;
            out.push((r * t.cos()) as f32);
            out.push((r * t.sin()) as f32);
        }
        out.truncate(n);
        out
    }

    /// `n` samples of U(low, high), rounded to f32.
    pub fn uniforms(&mut self, n: usize, low: f64, high: f64) -> Vec<f32> {
        (0..n).map(|_| (low + (high - low) * self.uniform()) as f32).collect()
    }
}

/// SplitMix64's increment, the golden ratio as a 64-bit fraction.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function of a state.
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from `seed` and `index`: SplitMix64's output function of `seed ^ (index + 1) · φ` (so `mix(s, 0)`
/// is the first output of `SplitMix64::new(s)` when `s` is 0). The seeds of optimizer steps and micro-batches, and
/// of each token's dropout stream.
pub fn mix(seed: u64, index: u64) -> u64 {
    finalise(seed ^ index.wrapping_add(1).wrapping_mul(GOLDEN))
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
    fn mix_is_the_output_function_of_the_xored_increment() {
        // seed 0, index 0: the state after one increment, whose output is the reference's first value.
        assert_eq!(mix(0, 0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(0, 1), finalise(2u64.wrapping_mul(GOLDEN)));
        assert_ne!(mix(1, 0), mix(0, 0));
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

    #[test]
    fn normals_and_uniforms_have_the_right_moments() {
        let moments = |x: &[f32]| {
            let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
            let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / x.len() as f64;
            (mean, var.sqrt())
        };
        let (mean, std) = moments(&SplitMix64::new(3).normals(100_000, 0.02));
        assert!(mean.abs() < 0.02 * 0.02, "{mean}");
        assert!((std - 0.02).abs() < 0.02 * 0.01, "{std}");
        // U(-1, 1): mean 0, standard deviation 1/√3.
        let u = SplitMix64::new(5).uniforms(100_000, -1.0, 1.0);
        assert!(u.iter().all(|v| (-1.0..1.0).contains(v)));
        let (mean, std) = moments(&u);
        assert!(mean.abs() < 0.01 && (std - 1.0 / 3f64.sqrt()).abs() < 0.005, "{mean} {std}");
    }
}
