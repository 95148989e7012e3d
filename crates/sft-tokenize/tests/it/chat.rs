//! Conversations through a Jinja chat template, loss on assistant turns only.

use sft_data::{Message, Segments};
use sft_tokenize::{
    Encode, EncodeOptions, Encoder, MaskAudit, Masking, Outcome, SftTokenizer, SpecialTokenOverrides, TruncationMode,
};

use crate::{example, fixture};

fn chat_tokenizer() -> SftTokenizer {
    SftTokenizer::from_files(
        &fixture("tokenizer.json"),
        Some(&fixture("tokenizer_config.json")),
        Some(&fixture("chat_template.jinja")),
        &SpecialTokenOverrides::default(),
    )
    .unwrap()
}

fn message(role: &str, content: &str) -> Message {
    Message { role: role.into(), content: content.into() }
}

fn options(masking: Masking) -> EncodeOptions {
    EncodeOptions { max_length: 512, truncation_mode: TruncationMode::KeepStart, masking }
}

fn kept(outcome: Outcome) -> sft_tokenize::TokenizedExample {
    match outcome {
        Outcome::Kept { example, .. } => example,
        Outcome::Dropped(reason) => panic!("dropped: {reason}"),
    }
}

#[test]
fn only_assistant_turns_carry_loss() {
    let tokenizer = chat_tokenizer();
    let options = options(Masking::CompletionOnly);
    let messages = vec![
        message("system", "You draft contracts."),
        message("user", "A governing-law clause."),
        message("assistant", "Delaware law governs."),
        message("user", "Shorter?"),
        message("assistant", "Delaware."),
    ];
    let got = kept(Encoder::new(&tokenizer, &options).encode(&example(0, Segments::Chat { messages })).unwrap());
    let audit = MaskAudit::new(&tokenizer, &got).unwrap();
    let supervised: Vec<&str> = audit.spans.iter().filter(|s| s.supervised).map(|s| s.text.as_str()).collect();
    // Each assistant turn: its content and its end-of-turn token (EOS in this template); nothing else.
    assert_eq!(supervised, ["Delaware law governs.<|end_of_text|>", "Delaware.<|end_of_text|>"]);
    assert_eq!(got.input_ids[0], 0);
    assert_ne!(got.input_ids[1], 0, "the template's BOS is not doubled by the post-processor");
    assert_eq!(got.input_ids.iter().filter(|&&id| id == 1).count(), 5, "no extra EOS appended");
    assert!(audit.to_string().starts_with("<|begin_of_text|><|reserved_special_token_0|>system"));
}

#[test]
fn prompt_completion_conversations_train_on_the_completion() {
    let tokenizer = chat_tokenizer();
    let options = options(Masking::CompletionOnly);
    let segments = Segments::ChatCompletion {
        prompt: vec![message("user", "Name a clause."), message("assistant", "Which kind?"), message("user", "Any.")],
        completion: vec![message("assistant", "Severability.")],
    };
    let got = kept(Encoder::new(&tokenizer, &options).encode(&example(0, segments)).unwrap());
    let audit = MaskAudit::new(&tokenizer, &got).unwrap();
    let supervised: Vec<&str> = audit.spans.iter().filter(|s| s.supervised).map(|s| s.text.as_str()).collect();
    assert_eq!(supervised, ["Severability.<|end_of_text|>"], "the prompt's assistant turn is context only");
}

#[test]
fn full_sequence_chat_and_missing_template() {
    let tokenizer = chat_tokenizer();
    let options = options(Masking::FullSequence);
    let messages = vec![message("user", "Hi"), message("assistant", "Hello")];
    let got = kept(
        Encoder::new(&tokenizer, &options).encode(&example(0, Segments::Chat { messages: messages.clone() })).unwrap(),
    );
    assert_eq!(got.num_supervised(), got.len() - 1);

    let plain = crate::tokenizer();
    let options = self::options(Masking::CompletionOnly);
    let err = Encoder::new(&plain, &options).encode(&example(3, Segments::Chat { messages })).unwrap_err();
    assert!(err.to_string().starts_with("test.csv: row 3: chat template: the tokenizer has no chat_template"), "{err}");
}

#[test]
fn templates_that_rewrite_history_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("t.jinja");
    // Renders only the last message: a prefix rendering is not a prefix of the whole.
    std::fs::write(&template, "{{ messages[-1]['content'] }}{% if add_generation_prompt %}>{% endif %}").unwrap();
    let tokenizer = SftTokenizer::from_files(
        &fixture("tokenizer.json"),
        Some(&fixture("tokenizer_config.json")),
        Some(&template),
        &SpecialTokenOverrides::default(),
    )
    .unwrap();
    let options = options(Masking::CompletionOnly);
    let messages = vec![message("user", "a"), message("assistant", "b")];
    let err = Encoder::new(&tokenizer, &options).encode(&example(1, Segments::Chat { messages })).unwrap_err();
    assert!(err.to_string().contains("is not a prefix of rendering it whole"), "{err}");
}
