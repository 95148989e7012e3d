use serde::Deserialize;
use sft_collate::{Collate, Collator, IGNORE_INDEX};

use crate::{fixture, reference_examples};

#[derive(Deserialize)]
struct Reference {
    test_csv_rows: Vec<usize>,
    shape: [usize; 2],
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u8>>,
    labels: Vec<Vec<i64>>,
}

#[test]
fn matches_data_collator_for_seq2seq_with_pad_to_multiple_of_8() {
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(fixture("collate_seq2seq_pad8.json")).unwrap()).unwrap();
    let examples = reference_examples();
    let rows: Vec<_> = reference.test_csv_rows.iter().map(|&r| &examples[r]).collect();
    let batch = Collator { pad_id: 2, pad_to_multiple_of: Some(8) }.collate(&rows);
    assert_eq!(batch.shape(), reference.shape);
    assert_eq!(batch.input_ids, reference.input_ids.concat());
    assert_eq!(batch.attention_mask, reference.attention_mask.concat());
    assert_eq!(batch.labels, reference.labels.concat());
    assert_eq!(batch.num_supervised, batch.labels.iter().filter(|&&l| l != IGNORE_INDEX).count());
    assert!(batch.packing.is_none());

    // Without pad_to_multiple_of: the first 195 columns.
    let plain = Collator { pad_id: 2, pad_to_multiple_of: None }.collate(&rows);
    assert_eq!(plain.shape(), [8, 195]);
    for b in 0..8 {
        assert_eq!(plain.row(&plain.labels, b), &reference.labels[b][..195]);
        assert_eq!(plain.row(&plain.input_ids, b), &reference.input_ids[b][..195]);
    }
}
