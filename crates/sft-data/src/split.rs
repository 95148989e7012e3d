//! Seeded train / validation / test splits, with `train_test_split`'s size semantics.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{DataError, Result};
use crate::rng::permutation;

/// The size of a held-out split, as `datasets.Dataset.train_test_split` takes it: a JSON float is a fraction of the
/// rows (strictly between 0 and 1), a JSON integer is a number of rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitSize {
    /// A fraction in (0, 1); the split gets `ceil(fraction × rows)` rows, as `train_test_split` rounds its test size.
    Fraction(f64),
    /// An absolute number of rows.
    Count(usize),
}

impl SplitSize {
    /// The number of rows this size means out of `rows`.
    pub fn rows(self, rows: usize) -> usize {
        match self {
            // `rows` is far below 2^52, so the product is exact enough for `ceil`.
            Self::Fraction(f) => (f * rows as f64).ceil() as usize,
            Self::Count(c) => c,
        }
    }
}

impl<'de> Deserialize<'de> for SplitSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(deserializer)?;
        if let Some(count) = n.as_u64() {
            return usize::try_from(count).map(Self::Count).map_err(de::Error::custom);
        }
        match n.as_f64() {
            Some(f) if n.is_f64() && f > 0.0 && f < 1.0 => Ok(Self::Fraction(f)),
            _ => Err(de::Error::custom(format!(
                "expected a fraction strictly between 0 and 1 or a non-negative whole number of rows, found {n}"
            ))),
        }
    }
}

impl Serialize for SplitSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match *self {
            Self::Fraction(f) => serializer.serialize_f64(f),
            Self::Count(c) => serializer.serialize_u64(c as u64),
        }
    }
}

/// Which rows of a pool go where. Indices refer to the pool passed to [`split_indices`]; each list is in ascending
/// (source) order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitIndices {
    /// Rows to train on.
    pub train: Vec<usize>,
    /// Rows held out for evaluation during training.
    pub validation: Vec<usize>,
    /// Rows held out for the final test.
    pub test: Vec<usize>,
}

/// Samples and splits `rows` rows, deterministically for a given `seed`.
///
/// 1. The rows are shuffled once with [`permutation`]`(rows, seed)`.
/// 2. `sample_size`, when set, keeps the first `sample_size` rows of that order (all rows if there are fewer, with
///    a warning): a uniform random sample.
/// 3. Of the `m` rows kept, the first `test_size.rows(m)` go to test, the next `validation_size.rows(m)` to
///    validation and the rest to train; both fractions are of `m`, so 0.1 + 0.1 gives 80/10/10.
/// 4. Each split is returned in source order.
///
/// At least one training row must remain; otherwise the error names the sizes.
pub fn split_indices(
    rows: usize,
    sample_size: Option<usize>,
    validation_size: Option<SplitSize>,
    test_size: Option<SplitSize>,
    seed: u64,
) -> Result<SplitIndices> {
    let mut order = permutation(rows, seed);
    if let Some(sample) = sample_size {
        if sample > rows {
            tracing::warn!(sample_size = sample, rows, "sample_size exceeds the number of rows; using all rows");
        }
        order.truncate(sample);
    }
    let m = order.len();
    let n_test = test_size.map_or(0, |s| s.rows(m));
    let n_validation = validation_size.map_or(0, |s| s.rows(m));
    if n_test + n_validation >= m {
        return Err(DataError::invalid_config(
            "dataset_config.validation_size + dataset_config.test_size",
            format!("{n_validation} validation + {n_test} test rows leave no training rows out of {m}"),
        ));
    }
    let sorted = |slice: &[usize]| {
        let mut v = slice.to_vec();
        v.sort_unstable();
        v
    };
    Ok(SplitIndices {
        test: sorted(&order[..n_test]),
        validation: sorted(&order[n_test..n_test + n_validation]),
        train: sorted(&order[n_test + n_validation..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_sizes_round_up_like_train_test_split() {
        assert_eq!(SplitSize::Fraction(0.1).rows(368), 37);
        assert_eq!(SplitSize::Fraction(0.25).rows(4), 1);
        assert_eq!(SplitSize::Fraction(0.2).rows(10), 2);
        assert_eq!(SplitSize::Count(5).rows(368), 5);
    }

    #[test]
    fn sizes_deserialise_from_floats_and_integers() {
        let parse = |s: &str| serde_json::from_str::<SplitSize>(s);
        assert_eq!(parse("0.1").ok(), Some(SplitSize::Fraction(0.1)));
        assert_eq!(parse("20").ok(), Some(SplitSize::Count(20)));
        for bad in ["1.0", "0.0", "-3", "1.5", "-0.1"] {
            assert!(parse(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn splits_partition_the_sample() {
        let s = split_indices(400, Some(100), Some(SplitSize::Fraction(0.1)), Some(SplitSize::Count(15)), 3)
            .expect("valid sizes");
        assert_eq!((s.train.len(), s.validation.len(), s.test.len()), (75, 10, 15));
        let mut all: Vec<usize> = s.train.iter().chain(&s.validation).chain(&s.test).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 100, "no row in two splits");
        assert!(s.train.windows(2).all(|w| w[0] < w[1]), "source order");
    }

    #[test]
    fn no_training_rows_left_is_an_error() {
        let err = split_indices(10, None, Some(SplitSize::Count(5)), Some(SplitSize::Count(5)), 0).unwrap_err();
        assert!(err.to_string().contains("validation_size"), "{err}");
        assert!(split_indices(10, None, Some(SplitSize::Count(4)), Some(SplitSize::Count(5)), 0).is_ok());
    }
}
