//! Bad input: each case is a clear error naming the file and the line/row/key, never a panic.

use sft_data::{DataConfig, DataError, FileSource, RecordSource, SplitFiles, SplitSize, load_splits};

use crate::{fixture, legal, temp_file};

fn load_one(path: std::path::PathBuf, config: &DataConfig) -> Result<sft_data::DatasetSplits, DataError> {
    load_splits(config, &SplitFiles { train: vec![path], ..SplitFiles::default() })
}

#[test]
fn missing_column_lists_the_columns_found() {
    let config = DataConfig { output_column: "Response".into(), ..legal() };
    let err = load_one(fixture("legal_test.csv"), &config).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DataError::MissingColumn { .. }), "{err:?}");
    assert!(message.contains("legal_test.csv: row 0 (line 2)"), "{message}");
    assert!(message.contains("missing column `Response` (set by `dataset_config.output_column`)"), "{message}");
    assert!(message.ends_with("columns found: Instruction, Input, Output"), "{message}");
}

#[test]
fn empty_files_are_errors() {
    for (name, bytes) in [
        ("empty.csv", &b""[..]),
        ("header_only.csv", b"Instruction,Input,Output\n"),
        ("empty.jsonl", b"\n\n"),
        ("empty.json", b"[]"),
    ] {
        let (_dir, path) = temp_file(name, bytes);
        let err = FileSource::new(&path).unwrap().records().unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains(name) && err.to_string().ends_with("the file holds no records"), "{err}");
    }
}

#[test]
fn ragged_csv_row_names_its_line() {
    let (_dir, path) = temp_file("ragged.csv", b"Instruction,Input,Output\na,b,c\n\"multi\nline\",x\n");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(matches!(err, DataError::RaggedRow { expected: 3, found: 2, .. }), "{err:?}");
    assert!(
        err.to_string().ends_with("ragged.csv: row 1 (line 3): expected 3 fields as in the header, found 2"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_names_row_and_column() {
    let (_dir, path) = temp_file("latin1.csv", b"Instruction,Input,Output\nok,,fine\nna\xefve,,x\n");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(matches!(err, DataError::InvalidUtf8 { .. }), "{err:?}");
    assert!(err.to_string().contains("latin1.csv: row 1 (line 3): invalid UTF-8 (column `Instruction`"), "{err}");

    let (_dir, path) = temp_file("latin1.jsonl", b"{\"a\": \"ok\"}\n{\"a\": \"na\xefve\"}\n");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(err.to_string().contains("latin1.jsonl: row 1 (line 2): invalid UTF-8"), "{err}");
}

#[test]
fn malformed_json_line_names_its_line() {
    let (_dir, path) = temp_file("bad.jsonl", b"{\"a\": 1}\n\n{\"a\": 2,}\n");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(matches!(err, DataError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("bad.jsonl: row 1 (line 3): malformed JSON"), "{err}");

    let (_dir, path) = temp_file("scalar.jsonl", b"[1, 2]\n");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(err.to_string().ends_with("scalar.jsonl: row 0 (line 1): expected a JSON object, found a list of 2 items"));

    let (_dir, path) = temp_file("bad.json", b"[\n {\"a\": 1},\n {\"a\": }\n]");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(err.to_string().contains("bad.json: malformed JSON") && err.to_string().contains("line 3"), "{err}");

    let (_dir, path) = temp_file("object.json", b"{\"a\": [1]}");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(err.to_string().contains("expected a JSON array of objects"), "{err}");
}

#[test]
fn wrong_cell_types_name_the_column() {
    let (_dir, path) = temp_file("typed.jsonl", b"{\"Instruction\": \"a\", \"Input\": null, \"Output\": 3}\n");
    let err = load_one(path, &legal()).unwrap_err();
    assert!(err.to_string().ends_with("typed.jsonl: row 0 (line 1): column `Output`: expected text, found number 3"));

    let (_dir, path) = temp_file("chat.jsonl", b"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
    let err = load_one(path, &DataConfig::new("chat")).unwrap_err();
    assert!(err.to_string().contains("at least one assistant message"), "{err}");

    let (_dir, path) = temp_file("chat2.jsonl", b"{\"messages\": [{\"role\": \"user\"}]}\n");
    let err = load_one(path, &DataConfig::new("chat")).unwrap_err();
    assert!(err.to_string().contains("column `messages[0].content`: expected text, found null"), "{err}");
}

#[test]
fn unsupported_extension_and_missing_file() {
    let err = FileSource::new("data.xlsx").unwrap_err();
    assert!(err.to_string().starts_with("data.xlsx: unsupported data file type"), "{err}");
    let err = FileSource::new("/nonexistent/d.csv").unwrap().records().unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().starts_with("/nonexistent/d.csv: "), "{err}");
}

#[test]
fn held_out_fractions_must_leave_training_rows() {
    let config = DataConfig {
        validation_size: Some(SplitSize::Fraction(0.5)),
        test_size: Some(SplitSize::Fraction(0.5)),
        ..legal()
    };
    let err = config.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataset_config.validation_size + dataset_config.test_size: 0.5 + 0.5 leaves nothing to train on; expected a sum < 1"
    );
    let config =
        DataConfig { validation_size: Some(SplitSize::Count(20)), test_size: Some(SplitSize::Count(12)), ..legal() };
    let err = load_one(fixture("legal_test.csv"), &config).unwrap_err();
    assert!(err.to_string().contains("20 validation + 12 test rows leave no training rows out of 32"), "{err}");
}

#[test]
fn carving_a_split_the_source_provides_is_an_error() {
    let config = DataConfig { test_size: Some(SplitSize::Fraction(0.1)), ..legal() };
    let files = SplitFiles {
        train: vec![fixture("legal_test.csv")],
        test: vec![fixture("legal_test.jsonl")],
        ..SplitFiles::default()
    };
    let err = load_splits(&config, &files).unwrap_err();
    assert!(err.to_string().starts_with("dataset_config.test_size: the data set already has this split"), "{err}");
}

#[test]
fn bad_templates_fail_at_validation() {
    let mut config = legal();
    config.prompt_template.prompt = "### Instruction\n{instruction}\n### Output\n".into();
    let err = config.validate().unwrap_err();
    assert!(err.to_string().starts_with("dataset_config.prompt_template.prompt: must contain `{input}`"), "{err}");
    config.prompt_template.prompt = "{instruction} {input} {output}".into();
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("unknown placeholder `{output}`"), "{err}");
}
