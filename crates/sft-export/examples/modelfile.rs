//! Prints the Ollama Modelfile `sft export gguf --modelfile` writes for the model in a directory (its tokenizer's
//! chat template, default system prompt, EOS and stop token), for checking the TEMPLATE with Go's text/template
//! (`scripts/ollama/check_templates.py`):
//!
//! ```sh
//! cargo run -p sft-export --example modelfile -- crates/sft-model/tests/fixtures/qwen3-micro
//! ```
//!
//! A second argument replaces the directory's chat template with the Jinja file it names.

use sft_tokenize::SftTokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: modelfile MODEL_DIR [TEMPLATE.jinja]")?);
    let template_file = args.next().map(std::path::PathBuf::from);
    let settings = dir.join("tokenizer_config.json");
    let tokenizer = SftTokenizer::from_files(
        &dir.join("tokenizer.json"),
        settings.is_file().then_some(settings.as_path()),
        template_file.as_deref(),
        &Default::default(),
    )?;
    let chat_template = tokenizer.chat_template();
    let renderings = chat_template
        .map(|template| {
            sft_export::ollama::probe_renderings(|chat| {
                let messages: Vec<sft_data::Message> = chat
                    .iter()
                    .map(|&(role, content)| sft_data::Message { role: role.into(), content: content.into() })
                    .collect();
                template.render(&messages, true)
            })
        })
        .transpose()?;
    let eos = tokenizer.special().eos.text.clone();
    let chat = chat_template.zip(renderings.as_ref()).map(|(template, (user_only, with_system))| {
        sft_export::ollama::Chat { template: template.source(), user_only, with_system, eos_token: &eos }
    });
    let text = sft_export::ollama::modelfile("./model.gguf", chat.as_ref(), std::slice::from_ref(&eos));
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(())
}
