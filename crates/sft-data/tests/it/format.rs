use serde::Deserialize;
use sft_data::{DataConfig, Message, PromptFormat, PromptTemplate, RecordFormat, Segments, SplitFiles, load_splits};

use crate::{fixture, legal, read};

#[derive(Deserialize)]
struct Reference {
    row: usize,
    input: String,
    prompt: String,
    completion: String,
}

#[test]
fn template_matches_the_python_reference_byte_for_byte() {
    let references: Vec<Reference> = std::fs::read_to_string(fixture("test_masking.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records = read("legal_test.csv");
    let config = legal();
    let formatter = config.formatter(&records[0]).unwrap();
    let mut without_input = Vec::new();
    for reference in &references {
        let segments = formatter.format(&records[reference.row]).unwrap();
        let expected =
            Segments::Completion { prompt: reference.prompt.clone(), completion: reference.completion.clone() };
        assert_eq!(segments, expected, "row {}", reference.row);
        if reference.input.trim().is_empty() {
            without_input.push(reference.row);
        }
    }
    assert_eq!(without_input, [9, 10, 11, 16, 17, 19, 29], "both template branches are covered");
}

#[test]
fn rows_with_and_without_input_by_hand() {
    let config = legal();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv");
    std::fs::write(&path, "Instruction,Input,Output\n  Summarise.  ,\" The clause. \",Short.\nDraft one.,,\"Text\"\n")
        .unwrap();
    let files = SplitFiles { train: vec![path], ..SplitFiles::default() };
    let splits = load_splits(&config, &files).unwrap();
    assert_eq!(
        splits.train[0].segments,
        Segments::Completion {
            prompt: "### Instruction\nSummarise.\n\n### Input\nThe clause.\n\n### Output\n".into(),
            completion: "Short.".into(),
        }
    );
    assert_eq!(
        splits.train[1].segments,
        Segments::Completion {
            prompt: "### Instruction\nDraft one.\n\n### Output\n".into(),
            completion: "Text".into()
        }
    );
}

#[test]
fn custom_template() {
    let config = DataConfig {
        prompt_template: PromptTemplate {
            prompt: "<s>[INST] {instruction}\n{input} [/INST]".into(),
            prompt_no_input: "<s>[INST] {instruction} [/INST]".into(),
            completion: " {output}".into(),
        },
        ..legal()
    };
    config.validate().unwrap();
    let records = read("legal_test.csv");
    let Segments::Completion { prompt, completion } =
        config.formatter(&records[9]).unwrap().format(&records[9]).unwrap()
    else {
        panic!("instruction data gives completion segments")
    };
    assert!(prompt.starts_with("<s>[INST] ") && prompt.ends_with(" [/INST]"), "{prompt}");
    assert!(completion.starts_with(' '));
}

#[test]
fn conversational_records_give_chat_segments() {
    let records = read("chat.parquet");
    let config = DataConfig::new("chat");
    assert_eq!(config.detect(&records[0]), RecordFormat::Messages);
    let segments = config.formatter(&records[0]).unwrap().format(&records[1]).unwrap();
    let Segments::Chat { messages } = segments else { panic!("messages give chat segments") };
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[3], Message { role: "assistant".into(), content: "OK.".into() });
}

#[test]
fn prompt_completion_records_as_text_and_as_messages() {
    let records = read("prompt_completion.jsonl");
    let config = DataConfig::new("pc");
    assert_eq!(config.detect(&records[0]), RecordFormat::PromptCompletion);
    let formatter = config.formatter(&records[0]).unwrap();
    assert_eq!(
        formatter.format(&records[0]).unwrap(),
        Segments::Completion {
            prompt: "Clause type of: 'Neither party may assign'? ".into(),
            completion: "Assignment.".into()
        }
    );
    assert_eq!(
        formatter.format(&records[1]).unwrap(),
        Segments::ChatCompletion {
            prompt: vec![Message { role: "user".into(), content: "Name a boilerplate clause.".into() }],
            completion: vec![Message { role: "assistant".into(), content: "Severability.".into() }],
        }
    );
}
