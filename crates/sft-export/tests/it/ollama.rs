//! The families' chat templates (the fixtures' `tokenizer_config.json`) map to Ollama's formats, and the
//! Modelfile carries FROM, TEMPLATE, the default system prompt and every stop token. (That each TEMPLATE renders
//! what its Jinja template renders is checked with Go's text/template: `scripts/ollama/check_templates.py`.)

use sft_export::ollama::{Chat, ChatFormat, SYSTEM_PROBE, modelfile};

use crate::template;

#[test]
fn each_familys_template_is_recognised() {
    for (folder, format) in [
        ("qwen2-micro", ChatFormat::ChatMl),
        ("qwen3-micro", ChatFormat::ChatMl),
        ("mistral-micro", ChatFormat::Mistral),
        ("phi3-micro", ChatFormat::Phi3),
        ("gemma3-micro", ChatFormat::Gemma),
    ] {
        assert_eq!(ChatFormat::detect(&template(folder)), Some(format), "{folder}");
    }
    // Mistral v0.3's template puts the system prompt in the last user turn.
    let v3 = "{%- if loop.last and system_message is defined %}{{- '[INST] ' + system_message }}";
    assert_eq!(ChatFormat::detect(v3), Some(ChatFormat::MistralV3));
    assert_eq!(ChatFormat::detect("{{ messages[0]['content'] }}"), None);
}

#[test]
fn the_default_system_prompt_and_the_system_prefix_come_from_renderings() {
    // Qwen2.5 writes a system prompt of its own when a chat has none; Qwen3 does not.
    let qwen25 = "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nHello.<|im_end|>\n";
    assert_eq!(ChatFormat::ChatMl.default_system(qwen25, ""), Some("You are Qwen.".into()));
    assert_eq!(ChatFormat::ChatMl.default_system("<|im_start|>user\nHello.<|im_end|>\n", ""), None);
    // Llama 3.1 writes its date lines before any system prompt, and the block even without one.
    let open = "<|start_header_id|>system<|end_header_id|>\n\n";
    let lines = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
    let with_system = format!("<|begin_of_text|>{open}{lines}{SYSTEM_PROBE}<|eot_id|>");
    let prefix = ChatFormat::Llama3.system_prefix(&with_system);
    assert_eq!(prefix, lines);
    assert_eq!(ChatFormat::Llama3.default_system(&format!("{open}{lines}<|eot_id|>"), &prefix), None);
    let template = ChatFormat::Llama3.go_template("<|eot_id|>", &prefix);
    assert!(template.starts_with(&format!("{open}{lines}{{{{ .System }}}}<|eot_id|>")), "{template}");
    // Without a prefix the block is written only for a system prompt.
    assert!(ChatFormat::Llama3.go_template("", "").starts_with("{{- if .System }}"));
    assert_eq!(ChatFormat::Gemma.system_prefix(&with_system), "");
}

#[test]
fn the_modelfile_has_from_template_system_and_every_stop() {
    let qwen25 = template("qwen2-micro");
    let user_only = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.<|im_end|>\n<|im_start|>user\nHello.";
    let with_system = format!("<|im_start|>system\n{SYSTEM_PROBE}<|im_end|>\n");
    let chat = Chat { template: &qwen25, user_only, with_system: &with_system, eos_token: "<|im_end|>" };
    let text = modelfile("./qwen.gguf", Some(&chat), &["<|im_end|>".into(), "say \"end\"".into()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "FROM ./qwen.gguf");
    assert!(text.contains("TEMPLATE \"\"\"{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n"), "{text}");
    assert!(text.contains("{{- if ne .Role \"system\" }}"), "system messages are written once, from .System: {text}");
    assert!(text.contains("\nSYSTEM \"\"\"You are Qwen, created by Alibaba Cloud.\"\"\"\n"), "{text}");
    assert!(text.ends_with("PARAMETER stop \"<|im_end|>\"\nPARAMETER stop \"say \\\"end\\\"\"\n"), "{text}");
    // Mistral closes an answer with the tokenizer's EOS text.
    let mistral = template("mistral-micro");
    let chat = Chat { template: &mistral, user_only: "", with_system: "", eos_token: "<|end_of_text|>" };
    let text = modelfile("m.gguf", Some(&chat), &[]);
    assert!(text.contains(" {{ .Content }}<|end_of_text|>"), "{text}");
    assert!(!text.contains("SYSTEM"), "{text}");
    let plain = modelfile("m.gguf", None, &[]);
    assert_eq!(plain, "FROM m.gguf\n# TEMPLATE: the model has no chat template; prompts pass through as written\n");
}
