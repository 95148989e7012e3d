//! Properties on random examples: random prompt/completion text through the reference tokenizer, then padding and
//! packing.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use sft_collate::{Collate, Collator, IGNORE_INDEX, Sampling, batch_plan, pack_best_fit_decreasing};
use sft_data::{Example, Location, Position, Segments};
use sft_tokenize::{EncodeOptions, Encoder, Masking, SftTokenizer, TokenizedExample, TruncationMode};

fn tokenizer() -> &'static SftTokenizer {
    static TOKENIZER: OnceLock<SftTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(sft_testkit::reference_tokenizer)
}

/// Tokenizes random segments (completion-only masking, max_length 96); drops are skipped.
fn encode(segments: Vec<(String, String)>, masking: Masking) -> Vec<TokenizedExample> {
    let options = EncodeOptions { max_length: 96, truncation_mode: TruncationMode::KeepStart, masking };
    let examples: Vec<Example> = segments
        .into_iter()
        .enumerate()
        .map(|(row, (prompt, completion))| Example {
            segments: Segments::Completion { prompt, completion },
            location: Location::new(Arc::from(std::path::Path::new("random")), Position::Row { row, line: None }),
        })
        .collect();
    Encoder::new(tokenizer(), &options).encode_all(&examples).unwrap().examples
}

fn own_labels(e: &TokenizedExample) -> Vec<i64> {
    e.input_ids.iter().zip(&e.loss_mask).map(|(&id, &m)| if m { i64::from(id) } else { IGNORE_INDEX }).collect()
}

fn segments() -> impl Strategy<Value = Vec<(String, String)>> {
    let text = "[a-zA-Z0-9 ,.\\n#é€-]{0,120}";
    prop::collection::vec((text, text), 1..24)
}

fn masking() -> impl Strategy<Value = Masking> {
    prop_oneof![Just(Masking::CompletionOnly), Just(Masking::FullSequence)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn padding_preserves_supervision_and_never_labels_padding(
        segments in segments(), masking in masking(), multiple in prop::option::of(1usize..16)
    ) {
        let examples = encode(segments, masking);
        let refs: Vec<&TokenizedExample> = examples.iter().collect();
        let batch = Collator { pad_id: 2, pad_to_multiple_of: multiple }.collate(&refs);
        let supervised: usize = examples.iter().map(TokenizedExample::num_supervised).sum();
        prop_assert_eq!(batch.num_supervised, supervised);
        prop_assert_eq!(batch.labels.iter().filter(|&&l| l != IGNORE_INDEX).count(), supervised);
        if let Some(m) = multiple { prop_assert_eq!(batch.seq_len % m, 0); }
        for (b, e) in examples.iter().enumerate() {
            let n = e.len();
            prop_assert_eq!(&batch.row(&batch.input_ids, b)[..n], &e.input_ids[..]);
            prop_assert_eq!(&batch.row(&batch.labels, b)[..n], &own_labels(e)[..]);
            prop_assert!(batch.row(&batch.attention_mask, b)[n..].iter().all(|&a| a == 0));
            prop_assert!(batch.row(&batch.labels, b)[n..].iter().all(|&l| l == IGNORE_INDEX), "padding carries no loss");
            prop_assert!(batch.row(&batch.input_ids, b)[n..].iter().all(|&t| t == 2));
        }
    }

    #[test]
    fn packing_keeps_examples_independent(segments in segments(), masking in masking(), capacity in 96usize..400) {
        let examples = encode(segments, masking);
        let lengths: Vec<usize> = examples.iter().map(TokenizedExample::len).collect();
        let bins = pack_best_fit_decreasing(&lengths, capacity).unwrap();
        let mut placed: Vec<usize> = bins.iter().flatten().copied().collect();
        placed.sort_unstable();
        prop_assert_eq!(placed, (0..examples.len()).collect::<Vec<_>>(), "every example packed exactly once");
        prop_assert!(bins.iter().all(|b| b.iter().map(|&i| lengths[i]).sum::<usize>() <= capacity));

        let rows: Vec<Vec<&TokenizedExample>> = bins.iter().map(|b| b.iter().map(|&i| &examples[i]).collect()).collect();
        let batch = Collator { pad_id: 2, pad_to_multiple_of: Some(8) }.collate_packed(&rows);
        let packing = batch.packing.as_ref().unwrap();
        let supervised: usize = examples.iter().map(TokenizedExample::num_supervised).sum();
        prop_assert_eq!(batch.num_supervised, supervised, "supervision preserved (first tokens never carry loss)");
        prop_assert_eq!(batch.labels.iter().filter(|&&l| l != IGNORE_INDEX).count(), supervised);
        for (b, bin) in bins.iter().enumerate() {
            let labels = batch.row(&batch.labels, b);
            let ids = batch.row(&batch.input_ids, b);
            let positions = batch.row(&packing.position_ids, b);
            let sequences = batch.row(&packing.sequence_ids, b);
            let mut at = 0;
            for (k, &i) in bin.iter().enumerate() {
                let e = &examples[i];
                let n = e.len();
                // Each example's labels are exactly its own, computed alone: nothing depends on its neighbours.
                prop_assert_eq!(&labels[at..at + n], &own_labels(e)[..]);
                prop_assert_eq!(labels[at], IGNORE_INDEX, "the first token is never predicted from the previous example");
                prop_assert_eq!(&ids[at..at + n], &e.input_ids[..]);
                prop_assert!(positions[at..at + n].iter().enumerate().all(|(t, &p)| p as usize == t), "positions restart");
                prop_assert!(sequences[at..at + n].iter().all(|&s| s as usize == k + 1));
                at += n;
            }
            prop_assert!(sequences[at..].iter().all(|&s| s == 0) && labels[at..].iter().all(|&l| l == IGNORE_INDEX));
        }
    }

    #[test]
    fn batch_plans_cover_every_row(lengths in prop::collection::vec(1usize..300, 0..200), size in 1usize..20, seed in any::<u64>()) {
        for sampling in [Sampling::Sequential, Sampling::Shuffle { seed }, Sampling::GroupByLength { seed }] {
            let mut rows: Vec<usize> = batch_plan(&lengths, size, sampling, 0).into_iter().flatten().collect();
            rows.sort_unstable();
            prop_assert_eq!(rows, (0..lengths.len()).collect::<Vec<_>>());
        }
    }
}
