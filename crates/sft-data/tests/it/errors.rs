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
    assert!(
        err.to_string().ends_with(
            "object.json: expected a JSON array of objects at the top level, found an object with keys `a`, none of \
             which holds a list of objects"
        ),
        "{err}"
    );
    let (_dir, path) = temp_file("wrapped.json", b"{\"version\": 2, \"data\": [{\"a\": 1}, {\"a\": 2}]}");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(
        err.to_string().ends_with(
            "wrapped.json: expected a JSON array of objects at the top level, found an object with keys `version`, \
             `data`; the records are under `data` (a list of 2 objects): write that list as the top level of the file"
        ),
        "{err}"
    );
    let (_dir, path) = temp_file("scalar.json", b"3");
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(err.to_string().ends_with("scalar.json: expected a JSON array of objects, found number 3"), "{err}");
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

/// `rows` (instruction, input, output; `None` = null) as a Parquet file of three nullable text columns.
fn parquet_bytes(rows: &[[Option<&str>; 3]]) -> Vec<u8> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use parquet::arrow::arrow_writer::ArrowWriter;

    let columns: Vec<(&str, ArrayRef)> = ["Instruction", "Input", "Output"]
        .iter()
        .enumerate()
        .map(|(c, name)| (*name, Arc::new(rows.iter().map(|r| r[c]).collect::<StringArray>()) as ArrayRef))
        .collect();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

#[test]
fn required_fields_that_are_blank_are_errors_in_every_format() {
    // Row 1 has an output of spaces, a tab and a newline; the input may be blank.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("blank.csv", b"Instruction,Input,Output\na,,b\nc, ,\" \t\n\"\n".to_vec(), "row 1 (line 3)"),
        (
            "blank.jsonl",
            b"{\"Instruction\": \"a\", \"Input\": \"\", \"Output\": \"b\"}\n{\"Instruction\": \"c\", \"Input\": \" \", \"Output\": \" \\t\\n\"}\n".to_vec(),
            "row 1 (line 2)",
        ),
        (
            "blank.json",
            b"[{\"Instruction\": \"a\", \"Input\": \"\", \"Output\": \"b\"},\n {\"Instruction\": \"c\", \"Input\": \" \", \"Output\": \" \\t\\n\"}]".to_vec(),
            "element 1",
        ),
        ("blank.parquet", parquet_bytes(&[[Some("a"), None, Some("b")], [Some("c"), Some(" "), Some(" \t\n")]]), "row 1"),
    ];
    for (name, bytes, position) in cases {
        let (_dir, path) = temp_file(name, &bytes);
        let err = load_one(path.clone(), &legal()).unwrap_err();
        assert!(matches!(err, DataError::EmptyField { found: "only whitespace", .. }), "{name}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: {position}: column `Output` (set by `dataset_config.output_column`) is only whitespace; every row \
                 needs it, so fill it in or remove the row",
                path.display()
            )
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}: the input is untouched");
    }
    // Null and empty are refused the same way, for the instruction too.
    let (_dir, path) = temp_file("null.jsonl", b"{\"Instruction\": null, \"Input\": \"x\", \"Output\": \"y\"}\n");
    let err = load_one(path, &legal()).unwrap_err();
    assert!(err.to_string().contains("column `Instruction` (set by `dataset_config.instruction_column`) is null"));
    let (_dir, path) = temp_file("empty.csv", b"Instruction,Input,Output\n,x,y\n");
    let err = load_one(path, &legal()).unwrap_err();
    assert!(
        err.to_string()
            .contains("row 0 (line 2): column `Instruction` (set by `dataset_config.instruction_column`) is empty")
    );
    // Prompt-completion text columns as well.
    let (_dir, path) = temp_file(
        "pc.jsonl",
        b"{\"prompt\": \"Q\", \"completion\": \"A\"}\n{\"prompt\": \"  \", \"completion\": \"A\"}\n",
    );
    let err = load_one(path, &DataConfig::new("pc")).unwrap_err();
    assert!(
        err.to_string()
            .contains("row 1 (line 2): column `prompt` (set by `dataset_config.prompt_column`) is only whitespace"),
        "{err}"
    );
    let (_dir, path) = temp_file("pc2.jsonl", b"{\"prompt\": \"Q\", \"completion\": null}\n");
    let err = load_one(path, &DataConfig::new("pc")).unwrap_err();
    assert!(
        err.to_string().contains("column `completion` (set by `dataset_config.completion_column`) is null"),
        "{err}"
    );
}

#[test]
fn parquet_type_errors_name_the_column_type_as_the_file_declares_it() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::arrow_writer::ArrowWriter;

    let columns: Vec<(&str, ArrayRef)> = vec![
        ("Instruction", Arc::new(StringArray::from(vec!["a", "b"]))),
        ("Input", Arc::new(StringArray::from(vec!["", ""]))),
        ("Output", Arc::new(Int64Array::from(vec![Some(1), Some(3)]))),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let (_dir, path) = temp_file("typed.parquet", &bytes);
    let err = load_one(path, &legal()).unwrap_err();
    assert!(err.to_string().ends_with("typed.parquet: row 0: column `Output`: expected text, found int64 1"), "{err}");
}

#[test]
fn a_parquet_file_that_makes_the_reader_panic_is_an_error() {
    // Found by the fuzz test: the `parquet` crate panics on this damaged copy of chat.parquet.
    let path = fixture("panics_parquet_reader.parquet");
    let before = std::fs::read(&path).unwrap();
    let err = FileSource::new(&path).unwrap().records().unwrap_err();
    assert!(matches!(err, DataError::Parse { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "{}: malformed Parquet: the reader stopped on an inconsistent file (",
            path.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
