//! `BatchSource` over `Rows`: one example per row is the plain collator's batch (the identity), packing groups
//! examples into rows of at most `max_length` tokens, and `batches` is the plan collated in order.

use sft_collate::{BatchSource, Collate, Collator, Rows, Sampling};

use crate::reference_examples;

#[test]
fn one_example_per_row_is_the_plain_collators_batch() {
    let examples = reference_examples();
    let collator = Collator { pad_id: 2, pad_to_multiple_of: Some(8) };
    let source = BatchSource::new(&examples, collator, 4, Sampling::Sequential, Rows::OnePerExample).unwrap();
    let batches: Vec<_> = source.batches(0).collect();
    assert_eq!(batches.len(), examples.len().div_ceil(4));
    for (batch, chunk) in batches.iter().zip(examples.chunks(4)) {
        let refs: Vec<_> = chunk.iter().collect();
        assert_eq!(batch, &collator.collate(&refs));
        assert!(batch.packing.is_none());
    }
}

#[test]
fn packed_rows_hold_every_example_once_within_max_length_and_batches_follow_the_plan() {
    let examples = reference_examples();
    let max_length = 512;
    let collator = Collator { pad_id: 2, pad_to_multiple_of: None };
    let rows = Rows::Packed { max_length };
    let source = BatchSource::new(&examples, collator, 2, Sampling::Shuffle { seed: 3 }, rows).unwrap();
    let lengths: Vec<usize> = examples.iter().map(|e| e.len()).collect();
    let arranged = rows.arrange(&lengths).unwrap();
    let mut seen: Vec<usize> = arranged.iter().flatten().copied().collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..examples.len()).collect::<Vec<_>>(), "every example in exactly one row");
    assert!(arranged.iter().all(|row| row.iter().map(|&i| lengths[i]).sum::<usize>() <= max_length));
    assert!(arranged.len() < examples.len(), "packing put several examples in a row");
    // `batches` is `plan` collated in order; packed batches carry per-example positions.
    for epoch in [0, 1] {
        let batches: Vec<_> = source.batches(epoch).collect();
        let expected: Vec<_> = source.plan(epoch).iter().map(|units| source.collate(units)).collect();
        assert_eq!(batches, expected);
        assert!(batches.iter().all(|b| b.packing.is_some() && b.seq_len <= max_length));
        let tokens: usize = batches.iter().map(|b| b.num_tokens).sum();
        assert_eq!(tokens, lengths.iter().sum::<usize>(), "epoch {epoch}: every token once");
    }
}
