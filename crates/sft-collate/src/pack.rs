//! Best-fit-decreasing packing of examples into rows of at most `capacity` tokens.

use std::collections::BTreeMap;

use crate::error::{CollateError, Result};

/// Packs items of the given `lengths` into bins of `capacity`, best fit decreasing: items in order of decreasing
/// length (ties by index), each into the open bin with the least room that still fits it, else a new bin.
///
/// Returns the bins as lists of item indices, each bin's items in the order they were placed (longest first);
/// bins in order of creation. Deterministic; `O(n log n)`. Every item must fit in an empty bin.
pub fn pack_best_fit_decreasing(lengths: &[usize], capacity: usize) -> Result<Vec<Vec<usize>>> {
    if capacity == 0 {
        return Err(CollateError::Invalid {
            key: "dataset_config.max_length",
            message: "packing needs a length > 0".into(),
        });
    }
    if let Some((index, &len)) = lengths.iter().enumerate().find(|(_, l)| **l > capacity) {
        return Err(CollateError::TooLong { index, len, capacity });
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut bins: Vec<Vec<usize>> = Vec::new();
    // Remaining room → bins with that room (ascending bin index for determinism).
    let mut by_room: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for item in order {
        let len = lengths[item];
        let tightest = by_room.range_mut(len..).next().map(|(&room, open)| (room, open.remove(0)));
        let (bin, room_left) = match tightest {
            Some((room, bin)) => {
                if by_room.get(&room).is_some_and(Vec::is_empty) {
                    by_room.remove(&room);
                }
                bins[bin].push(item);
                (bin, room - len)
            }
            None => {
                bins.push(vec![item]);
                (bins.len() - 1, capacity - len)
            }
        };
        if room_left > 0 {
            let open = by_room.entry(room_left).or_default();
            let at = open.partition_point(|&b| b < bin);
            open.insert(at, bin);
        }
    }
    Ok(bins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_fit_by_hand() {
        // Sorted: 7(i1), 5(i0), 4(i3), 3(i2), 2(i4), 1(i5), capacity 10.
        // 7 → bin0 (room 3); 5 → bin1 (room 5); 4 → bin1 (room 1, best fit of {3, 5}); 3 → bin0 (room 0);
        // 2 → new bin2 (room 8: neither 0 nor 1 fits); 1 → bin1 (room 1 is the tightest that fits).
        let bins = pack_best_fit_decreasing(&[5, 7, 3, 4, 2, 1], 10).unwrap();
        assert_eq!(bins, vec![vec![1, 2], vec![0, 3, 5], vec![4]]);
    }

    #[test]
    fn too_long_items_are_errors() {
        let err = pack_best_fit_decreasing(&[3, 11], 10).unwrap_err();
        assert_eq!(err.to_string(), "example 1 has 11 tokens, more than the packing length 10");
    }
}
