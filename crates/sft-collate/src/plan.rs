//! Which rows go in which batch, per epoch: in order, shuffled, or grouped by length.

use sft_rand::permutation;

/// How batches are drawn from the rows of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sampling {
    /// Rows in order (evaluation).
    Sequential,
    /// A fresh permutation each epoch, seeded by `seed + epoch` (training).
    Shuffle {
        /// Base seed (`training_args.seed`).
        seed: u64,
    },
    /// Like transformers' `LengthGroupedSampler` (`group_by_length`): shuffle, cut into mega-batches of
    /// `50 × batch_size`, sort each by decreasing length, and put the batch with the longest row first (so an
    /// out-of-memory error shows at the first step).
    GroupByLength {
        /// Base seed.
        seed: u64,
    },
}

/// Splits rows `0..lengths.len()` into batches of `batch_size` for `epoch` (the last batch may be smaller).
pub fn batch_plan(lengths: &[usize], batch_size: usize, sampling: Sampling, epoch: u64) -> Vec<Vec<usize>> {
    let n = lengths.len();
    let batch_size = batch_size.max(1);
    let order: Vec<usize> = match sampling {
        Sampling::Sequential => (0..n).collect(),
        Sampling::Shuffle { seed } => permutation(n, seed.wrapping_add(epoch)),
        Sampling::GroupByLength { seed } => {
            let mut order = permutation(n, seed.wrapping_add(epoch));
            for mega in order.chunks_mut(50 * batch_size) {
                mega.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
            }
            order
        }
    };
    let mut batches: Vec<Vec<usize>> = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    if matches!(sampling, Sampling::GroupByLength { .. })
        && let Some(longest) =
            (0..batches.len()).max_by_key(|&i| (batches[i].iter().map(|&r| lengths[r]).max(), std::cmp::Reverse(i)))
    {
        batches.swap(0, longest);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_once_per_epoch() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 300 + 1).collect();
        for sampling in [Sampling::Sequential, Sampling::Shuffle { seed: 1 }, Sampling::GroupByLength { seed: 1 }] {
            let plan = batch_plan(&lengths, 16, sampling, 3);
            let mut rows: Vec<usize> = plan.iter().flatten().copied().collect();
            rows.sort_unstable();
            assert_eq!(rows, (0..1000).collect::<Vec<_>>(), "{sampling:?}");
            assert!(plan.iter().all(|b| b.len() <= 16));
        }
    }

    #[test]
    fn epochs_differ_and_length_groups_are_tight() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 300 + 1).collect();
        let a = batch_plan(&lengths, 16, Sampling::Shuffle { seed: 1 }, 0);
        assert_ne!(a, batch_plan(&lengths, 16, Sampling::Shuffle { seed: 1 }, 1));
        assert_eq!(a, batch_plan(&lengths, 16, Sampling::Shuffle { seed: 1 }, 0));
        let spread = |plan: &[Vec<usize>]| -> usize {
            plan.iter()
                .map(|b| {
                    b.iter().map(|&r| lengths[r]).max().unwrap_or(0) - b.iter().map(|&r| lengths[r]).min().unwrap_or(0)
                })
                .sum()
        };
        let grouped = batch_plan(&lengths, 16, Sampling::GroupByLength { seed: 1 }, 0);
        assert!(spread(&grouped) * 5 < spread(&a), "grouping cuts padding: {} vs {}", spread(&grouped), spread(&a));
        assert_eq!(grouped[0].iter().map(|&r| lengths[r]).max(), Some(300), "longest batch first");
    }
}
