//! The families' chat templates (the fixtures' `tokenizer_config.json`) map to Ollama's formats, and the
//! Modelfile carries FROM, TEMPLATE and every stop token.

use sft_export::ollama::{ChatFormat, modelfile};

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
    assert_eq!(ChatFormat::detect("{{ messages[0]['content'] }}"), None);
}

#[test]
fn the_modelfile_has_from_template_and_every_stop() {
    let text = modelfile("./qwen3.gguf", Some(&template("qwen3-micro")), &["<|im_end|>".into(), "say \"end\"".into()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "FROM ./qwen3.gguf");
    assert!(text.contains("TEMPLATE \"\"\"{{- if .System }}<|im_start|>system\n"), "{text}");
    assert!(text.ends_with("PARAMETER stop \"<|im_end|>\"\nPARAMETER stop \"say \\\"end\\\"\"\n"), "{text}");
    let plain = modelfile("m.gguf", None, &[]);
    assert_eq!(plain, "FROM m.gguf\n# TEMPLATE: the model has no chat template; prompts pass through as written\n");
}
