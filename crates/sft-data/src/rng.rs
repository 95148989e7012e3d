//! The seeded shuffle behind sampling and splitting: `sft-rand`'s SplitMix64 + Fisher–Yates, re-exported so a
//! seed selects the same rows in every release.

pub use sft_rand::{SplitMix64, permutation};
