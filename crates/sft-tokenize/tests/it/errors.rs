//! Bad input: clear errors or counted drops, never a panic.

use sft_data::Segments;
use sft_tokenize::{
    DropReason, Encode, EncodeOptions, Encoder, Masking, Outcome, SftTokenizer, SpecialTokenOverrides, TokenizeError,
    TruncationMode,
};

use crate::{example, fixture, tokenizer};

fn options() -> EncodeOptions {
    EncodeOptions { max_length: 512, truncation_mode: TruncationMode::KeepStart, masking: Masking::CompletionOnly }
}

#[test]
fn an_empty_completion_is_dropped_and_counted() {
    let tokenizer = tokenizer();
    let options = options();
    let encoder = Encoder::new(&tokenizer, &options);
    let empty = example(
        4,
        Segments::Completion { prompt: "### Instruction\nx\n\n### Output\n".into(), completion: "  ".into() },
    );
    assert_eq!(encoder.encode(&empty).unwrap(), Outcome::Dropped(DropReason::EmptyCompletion));
    let good = example(
        5,
        Segments::Completion { prompt: "### Instruction\nx\n\n### Output\n".into(), completion: "y".into() },
    );
    let split = encoder.encode_all(&[empty, good]).unwrap();
    assert_eq!((split.report.kept, split.report.num_dropped()), (1, 1));
    assert_eq!(split.report.dropped_examples[0].0.to_string(), "test.csv: row 4");
}

#[test]
fn a_prompt_longer_than_max_length_is_dropped() {
    let tokenizer = tokenizer();
    let options = EncodeOptions { max_length: 8, ..options() };
    let long = example(0, Segments::Completion { prompt: "word ".repeat(50), completion: "answer".into() });
    assert_eq!(
        Encoder::new(&tokenizer, &options).encode(&long).unwrap(),
        Outcome::Dropped(DropReason::NoSupervisedTokens)
    );
}

#[test]
fn a_tokenizer_file_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tokenizer.json");
    std::fs::write(&bad, "{\"version\": \"1.0\", \"model\": 42}").unwrap();
    let err = SftTokenizer::from_files(&bad, None, None, &SpecialTokenOverrides::default()).unwrap_err();
    assert!(matches!(err, TokenizeError::TokenizerFile { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{}: not a valid tokenizer.json", bad.display())), "{err}");
    let err =
        SftTokenizer::from_dir(dir.path().join("nowhere").as_path(), &SpecialTokenOverrides::default()).unwrap_err();
    // Listing the directory fails: the error names it.
    assert!(matches!(err, TokenizeError::Repo(sft_repo::RepoError::Fetch { file: None, .. })), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{}: ", dir.path().join("nowhere").display())), "{err}");
}

#[test]
fn a_special_token_missing_from_the_vocabulary() {
    let overrides = SpecialTokenOverrides { pad_token: Some("<|nope|>".into()), ..Default::default() };
    let err =
        SftTokenizer::from_files(&fixture("tokenizer.json"), Some(&fixture("tokenizer_config.json")), None, &overrides)
            .unwrap_err();
    assert_eq!(err.to_string(), "training_args.pad_token: `<|nope|>` is not in the tokenizer's vocabulary");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokenizer_config.json");
    std::fs::write(&config, r#"{"bos_token": "<s>", "eos_token": "<|end_of_text|>"}"#).unwrap();
    let err =
        SftTokenizer::from_files(&fixture("tokenizer.json"), Some(&config), None, &SpecialTokenOverrides::default())
            .unwrap_err();
    assert_eq!(err.to_string(), format!("{}: bos_token: `<s>` is not in the tokenizer's vocabulary", config.display()));
}

#[test]
fn no_pad_token_falls_back_to_eos_and_no_eos_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokenizer_config.json");
    std::fs::write(&config, r#"{"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|end_of_text|>"}"#)
        .unwrap();
    let t =
        SftTokenizer::from_files(&fixture("tokenizer.json"), Some(&config), None, &SpecialTokenOverrides::default())
            .unwrap();
    assert!(t.special().pad_is_eos_fallback);
    assert_eq!(t.special().pad.id, t.special().eos.id);
    assert_eq!(t.special().bos.as_ref().map(|b| b.id), Some(0), "AddedToken objects are read");

    let err = SftTokenizer::from_files(&fixture("tokenizer.json"), None, None, &SpecialTokenOverrides::default())
        .unwrap_err();
    assert!(err.to_string().starts_with("training_args.eos_token: the tokenizer names no EOS token"), "{err}");
    let overrides = SpecialTokenOverrides { eos_token: Some("<|end_of_text|>".into()), ..Default::default() };
    let t = SftTokenizer::from_files(&fixture("tokenizer.json"), None, None, &overrides).unwrap();
    assert_eq!(t.special().eos.id, 1);
}
