//! Each family's chat template (from its fixture's `tokenizer_config.json`) renders the fixture's conversations
//! byte for byte as transformers' `apply_chat_template` did, with and without the generation prompt, and the text
//! tokenizes to the same ids (`reference.json` → `chat_template.renders`).

use sft_data::Message;
use sft_testkit::model_fixture;
use sft_tokenize::{ChatOptions, SftTokenizer, SpecialTokenOverrides, Turns};

fn renders(folder: &str) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(model_fixture(folder).join("reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    reference["chat_template"]["renders"].as_object().unwrap().clone()
}

/// Renders every case of `folder` whose keywords are `add_generation_prompt` and `enable_thinking` and whose
/// messages carry only a role and content; returns how many it checked.
fn check(folder: &str) -> usize {
    let tokenizer = SftTokenizer::from_dir(&model_fixture(folder), &SpecialTokenOverrides::default()).unwrap();
    let template = tokenizer.chat_template().expect("the family's template");
    let mut checked = 0;
    for (case, render) in renders(folder) {
        let kwargs = render["kwargs"].as_object().unwrap();
        let plain = render["messages"].as_array().unwrap().iter().all(|m| m.as_object().unwrap().len() == 2);
        if kwargs.keys().any(|k| k != "add_generation_prompt" && k != "enable_thinking") || !plain {
            continue;
        }
        let messages: Vec<Message> = render["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message {
                role: m["role"].as_str().unwrap().to_owned(),
                content: m["content"].as_str().unwrap().to_owned(),
            })
            .collect();
        let generation_prompt = kwargs["add_generation_prompt"].as_bool().unwrap();
        let options =
            ChatOptions { enable_thinking: kwargs.get("enable_thinking").and_then(serde_json::Value::as_bool) };
        let ours = template.render_with(&messages, generation_prompt, &options).unwrap();
        assert_eq!(ours, render["text"].as_str().unwrap(), "{folder} {case}");
        let ids: Vec<u32> =
            render["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(tokenizer.ids(&ours, false).unwrap(), ids, "{folder} {case}: ids");
        checked += 1;
    }
    checked
}

#[test]
fn qwen2_chat_template_renders_as_transformers() {
    assert_eq!(check("qwen2-micro"), 4);
}

#[test]
fn qwen3_chat_template_renders_as_transformers() {
    // Seven cases: the plain four, `<think>` in an assistant's content (the template keeps only the last turn's),
    // and `enable_thinking: false` with and without the generation prompt (the empty think block). Messages with a
    // `reasoning_content` field are not checked: `Message` has no such field.
    assert_eq!(check("qwen3-micro"), 7);
}

#[test]
fn mistral_chat_template_renders_as_transformers() {
    assert_eq!(check("mistral-micro"), 4);
}

#[test]
fn qwen3s_empty_think_block_carries_no_loss() {
    let tokenizer = SftTokenizer::from_dir(&model_fixture("qwen3-micro"), &SpecialTokenOverrides::default()).unwrap();
    let template = tokenizer.chat_template().unwrap();
    let render = &renders("qwen3-micro")["conversation"];
    let messages: Vec<Message> = render["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message { role: m["role"].as_str().unwrap().into(), content: m["content"].as_str().unwrap().into() })
        .collect();
    // Prompt and completion: the last answer is learned, the empty think block before it stays in the prompt.
    let (prompt, completion) = messages.split_at(4);
    let (text, spans) = template.spans(Turns::PromptCompletion(prompt, completion)).unwrap();
    assert_eq!(text, render["text"].as_str().unwrap());
    assert_eq!(
        &text[spans[0].0..spans[0].1],
        "  Each party shall keep the other party's Confidential Information secret.  <|im_end|>\n"
    );
    assert!(text[..spans[0].0].ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    // Several assistant turns: Qwen3's template writes an earlier answer differently once a later user turn
    // follows (no think block), so that turn is located by its content: the answer and its `<|im_end|>\n` carry
    // loss, in the text transformers renders for the whole conversation; the last answer as above.
    let (text, spans) = template.spans(Turns::Chat(&messages)).unwrap();
    assert_eq!(text, render["text"].as_str().unwrap());
    let learned: Vec<&str> = spans.iter().map(|&(s, e)| &text[s..e]).collect();
    assert_eq!(
        learned,
        [
            "The Supplier shall keep all Confidential Information strictly confidential.<|im_end|>\n",
            "  Each party shall keep the other party's Confidential Information secret.  <|im_end|>\n"
        ]
    );
    // Reasoning written into an earlier answer: the template keeps only the answer after `</think>`.
    let think = &renders("qwen3-micro")["think_in_content"];
    let messages: Vec<Message> = think["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message { role: m["role"].as_str().unwrap().into(), content: m["content"].as_str().unwrap().into() })
        .collect();
    let (text, spans) = template.spans(Turns::Chat(&messages)).unwrap();
    assert_eq!(text, think["text"].as_str().unwrap());
    assert_eq!(spans.len(), 2);
    assert!(text[spans[0].0..spans[0].1].starts_with("The Supplier shall keep"), "{}", &text[spans[0].0..spans[0].1]);
    // A template that rewrites an answer beyond recognition is still an error, not a guess.
    let source = r#"{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}[answer elided]{% else %}{{ m.content }}{% endif %}<end>{% endfor %}"#;
    let rewriting = sft_tokenize::ChatTemplate::new(source.into(), tokenizer.special()).unwrap();
    let err = rewriting.spans(Turns::Chat(&messages)).unwrap_err().to_string();
    assert!(err.contains("is not a prefix of rendering it whole"), "{err}");
}

#[test]
fn phi3_chat_template_renders_as_transformers() {
    assert_eq!(check("phi3-micro"), 4);
}

#[test]
fn gemma3_chat_template_renders_as_transformers() {
    // BOS as text first, `assistant` rendered as `model`, the system prompt folded into the first user turn,
    // contents trimmed.
    assert_eq!(check("gemma3-micro"), 4);
    // The tokenizer has a pad token: padding uses it, not EOS.
    let tokenizer = SftTokenizer::from_dir(&model_fixture("gemma3-micro"), &SpecialTokenOverrides::default()).unwrap();
    let special = tokenizer.special();
    assert_eq!((special.pad.id, special.eos.id, special.bos.as_ref().map(|b| b.id)), (2, 1, Some(0)));
}
