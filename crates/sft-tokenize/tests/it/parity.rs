//! Exact parity with `transformers` on every test row, and the max_length = 64 truncation case.

use serde::Deserialize;
use sft_data::Segments;
use sft_tokenize::{DropReason, Encode, EncodeOptions, Encoder, Masking, Outcome, TruncationMode};

use crate::{example, fixture, labels, tokenizer};

#[derive(Deserialize)]
struct Row {
    row: usize,
    prompt: String,
    completion: String,
    n_prompt_tokens: usize,
    n_supervised: usize,
    input_ids: Vec<u32>,
    labels: Vec<i64>,
}

#[derive(Deserialize)]
struct Truncated {
    row: usize,
    n_supervised: usize,
    zero_supervised: bool,
    eos_kept: bool,
    input_ids: Vec<u32>,
    labels: Vec<i64>,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(fixture("test_masking.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn examples() -> Vec<sft_data::Example> {
    rows()
        .into_iter()
        .map(|r| example(r.row, Segments::Completion { prompt: r.prompt, completion: r.completion }))
        .collect()
}

fn options(max_length: usize, masking: Masking) -> EncodeOptions {
    EncodeOptions { max_length, truncation_mode: TruncationMode::KeepStart, masking }
}

#[test]
fn completion_only_matches_transformers_on_every_row() {
    let tokenizer = tokenizer();
    let options = options(512, Masking::CompletionOnly);
    let split = Encoder::new(&tokenizer, &options).encode_all(&examples()).unwrap();
    let rows = rows();
    assert_eq!(split.examples.len(), 32);
    for (row, got) in rows.iter().zip(&split.examples) {
        assert_eq!(got.input_ids, row.input_ids, "row {}", row.row);
        assert_eq!(labels(got), row.labels, "row {}", row.row);
        assert_eq!(got.num_supervised(), row.n_supervised, "row {}", row.row);
        assert!(!got.loss_mask[row.n_prompt_tokens - 1] && got.loss_mask[row.n_prompt_tokens], "row {}", row.row);
        assert_eq!(got.input_ids.iter().filter(|&&id| id == 0).count(), 1, "one BOS, row {}", row.row);
        assert_eq!(got.input_ids.last(), Some(&1), "EOS last, row {}", row.row);
        assert!(got.loss_mask.last().copied().unwrap_or(false), "EOS supervised, row {}", row.row);
    }
    assert_eq!(split.report.supervised_tokens, 1441, "the fixture's total");
    assert_eq!((split.report.truncated, split.report.boundary_merged, split.report.num_dropped()), (0, 0, 0));
}

#[test]
fn truncation_to_64_matches_and_drops_exactly_the_zero_supervision_rows() {
    let text = std::fs::read_to_string(fixture("test_masking_maxlen64.jsonl")).unwrap();
    let expected: Vec<Truncated> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let tokenizer = tokenizer();
    let options = options(64, Masking::CompletionOnly);
    let examples = examples();
    let split = Encoder::new(&tokenizer, &options).encode_all(&examples).unwrap();

    let zero: Vec<usize> = expected.iter().filter(|r| r.zero_supervised).map(|r| r.row).collect();
    assert_eq!(zero, [0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 15, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30]);
    let kept: Vec<usize> = expected.iter().filter(|r| !r.zero_supervised).map(|r| r.row).collect();
    assert_eq!(split.rows, kept, "exactly the rows with supervision are kept");
    assert_eq!(split.report.dropped.get(&DropReason::NoSupervisedTokens), Some(&zero.len()));
    for (row, got) in kept.iter().zip(&split.examples) {
        let r = &expected[*row];
        assert_eq!(got.input_ids, r.input_ids, "row {row}");
        assert_eq!(labels(got), r.labels, "row {row}");
        assert_eq!(got.num_supervised(), r.n_supervised, "row {row}");
        assert_eq!(got.input_ids.last() == Some(&1), r.eos_kept, "row {row}");
    }
    assert_eq!(expected[12].n_supervised, 1, "the one-token boundary case is kept");
    assert_eq!(split.report.truncated, kept.len() - 2, "rows 9 and 17 fit");
}

#[test]
fn marker_mode_finds_the_output_marker_in_text() {
    let tokenizer = tokenizer();
    let options = options(512, Masking::Marker { response_template: "### Output\n".into() });
    let split = Encoder::new(&tokenizer, &options).encode_all(&examples()).unwrap();
    for (row, got) in rows().iter().zip(&split.examples) {
        assert_eq!(labels(got), row.labels, "the marker ends every prompt, row {}", row.row);
    }
    let encoder = Encoder::new(&tokenizer, &options);
    let no_marker = example(0, Segments::Completion { prompt: "Instruction: x\n".into(), completion: "y".into() });
    assert_eq!(encoder.encode(&no_marker).unwrap(), Outcome::Dropped(DropReason::MarkerNotFound));
}

#[test]
fn full_sequence_supervises_every_predicted_token() {
    let tokenizer = tokenizer();
    let options = options(512, Masking::FullSequence);
    let split = Encoder::new(&tokenizer, &options).encode_all(&examples()).unwrap();
    for (row, got) in rows().iter().zip(&split.examples) {
        assert_eq!(got.input_ids, row.input_ids);
        assert!(!got.loss_mask[0], "nothing predicts position 0");
        assert_eq!(got.num_supervised(), got.len() - 1);
    }
}

#[test]
fn keep_end_truncation_keeps_the_completion() {
    let tokenizer = tokenizer();
    let options = EncodeOptions { truncation_mode: TruncationMode::KeepEnd, ..options(64, Masking::CompletionOnly) };
    let rows = rows();
    let split = Encoder::new(&tokenizer, &options).encode_all(&examples()).unwrap();
    for (&i, got) in split.rows.iter().zip(&split.examples) {
        let full = &rows[i].input_ids;
        let start = full.len().saturating_sub(64);
        assert_eq!(got.input_ids, full[start..], "row {i}");
        assert_eq!(got.input_ids.last(), Some(&1), "EOS kept");
    }
}

#[test]
fn a_token_merged_across_the_boundary_never_trains_the_prompt() {
    // Byte-level BPE attaches the space to the next word: "Hello world" tokenizes as "H", "el", "lo", " world", and
    // " world" straddles the prompt's end. The example is then built from the prompt's and completion's own tokens.
    let tokenizer = tokenizer();
    let options = options(512, Masking::CompletionOnly);
    let segments = Segments::Completion { prompt: "Hello ".into(), completion: "world".into() };
    let Outcome::Kept { example, boundary_merged, .. } =
        Encoder::new(&tokenizer, &options).encode(&example(0, segments)).unwrap()
    else {
        panic!("kept")
    };
    assert!(boundary_merged);
    let prompt_ids = tokenizer.ids("Hello ", true).unwrap();
    assert_eq!(example.input_ids[..prompt_ids.len()], prompt_ids, "the prompt exactly as inference sees it");
    let audit = sft_tokenize::MaskAudit::new(&tokenizer, &example).unwrap();
    let supervised: Vec<&str> = audit.spans.iter().filter(|s| s.supervised).map(|s| s.text.as_str()).collect();
    assert_eq!(supervised, ["world<|end_of_text|>"]);
}
