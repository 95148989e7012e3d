use serde_json::{Value, json};
use sft_data::Position;

use crate::{fixture, read};

#[test]
fn every_format_loads_the_same_records() {
    let csv = read("legal_test.csv");
    assert_eq!(csv.len(), 32);
    for other in ["legal_test.jsonl", "legal_test.json", "legal_test.parquet"] {
        let records = read(other);
        assert_eq!(records.len(), csv.len(), "{other}");
        for (a, b) in csv.iter().zip(&records) {
            assert_eq!(a.fields, b.fields, "{other}: {}", b.location);
        }
    }
    // Column order is the header's.
    let columns: Vec<&String> = csv[0].fields.keys().collect();
    assert_eq!(columns, ["Instruction", "Input", "Output"]);
}

#[test]
fn csv_reads_what_pythons_csv_module_reads() {
    let expected: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("tricky.expected.json")).unwrap()).unwrap();
    let records = read("tricky.csv");
    let got: Vec<Value> = records.iter().map(|r| Value::Object(r.fields.clone())).collect();
    assert_eq!(got, expected);
}

#[test]
fn locations_give_rows_and_lines() {
    let records = read("tricky.csv");
    // Row 0 spans lines 2-3 (a quoted CRLF), so row 1 starts on line 4.
    assert_eq!(records[0].location.position, Position::Row { row: 0, line: Some(2) });
    assert_eq!(records[1].location.position, Position::Row { row: 1, line: Some(4) });
    assert!(records[1].location.to_string().ends_with("tricky.csv: row 1 (line 4)"));
    let parquet = read("legal_test.parquet");
    assert_eq!(parquet[25].location.position, Position::Row { row: 25, line: None }, "numbered across row groups");
    let json = read("legal_test.json");
    assert_eq!(json[3].location.position, Position::Element(3));
}

#[test]
fn parquet_lists_of_structs_become_messages() {
    let jsonl = read("chat.jsonl");
    let parquet = read("chat.parquet");
    assert_eq!(jsonl.len(), 2);
    for (a, b) in jsonl.iter().zip(&parquet) {
        assert_eq!(a.fields, b.fields);
    }
    assert_eq!(parquet[1].fields["messages"][3], json!({"role": "assistant", "content": "OK."}));
}
