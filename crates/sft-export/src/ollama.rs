//! An Ollama `Modelfile` for an exported GGUF: `FROM` the file, a `TEMPLATE` in Ollama's Go template syntax for the
//! chat format the model was trained with, and a `PARAMETER stop` per stop token.
//!
//! Jinja chat templates cannot be translated in general; the known formats are recognised by their markers and
//! written as Ollama writes them for those model families (ChatML for Qwen, Llama 3, Gemma, Phi-3, Mistral
//! `[INST]`). Another template gets no `TEMPLATE` line (Ollama then passes prompts through), and says so.

/// A chat format Ollama has a template for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role … <|im_end|>` (Qwen2, Qwen2.5, Qwen3, SmolLM2).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|> … <|eot_id|>` (Llama 3.x).
    Llama3,
    /// `<start_of_turn>user|model … <end_of_turn>` (Gemma).
    Gemma,
    /// `<|user|> … <|end|>` (Phi-3).
    Phi3,
    /// ` [INST] … [/INST]` (Mistral).
    Mistral,
}

impl ChatFormat {
    /// The format of a Jinja chat template, from the markers it writes.
    pub fn detect(chat_template: &str) -> Option<Self> {
        let has = |marker: &str| chat_template.contains(marker);
        if has("<|im_start|>") {
            Some(Self::ChatMl)
        } else if has("<|start_header_id|>") {
            Some(Self::Llama3)
        } else if has("<start_of_turn>") {
            Some(Self::Gemma)
        } else if has("<|assistant|>") && has("<|end|>") {
            Some(Self::Phi3)
        } else if has("[INST]") {
            Some(Self::Mistral)
        } else {
            None
        }
    }

    /// Ollama's Go template for the format.
    pub fn go_template(self) -> &'static str {
        match self {
            Self::ChatMl => {
                "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}\
                 {{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}\
                 <|im_start|>assistant\n"
            }
            Self::Llama3 => {
                "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}\
                 {{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\
                 {{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
            }
            Self::Gemma => {
                "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}\
                 {{- if or (eq .Role \"user\") (eq .Role \"system\") }}<start_of_turn>user\n{{ .Content }}<end_of_turn>\n\
                 {{ if $last }}<start_of_turn>model\n{{ end }}\
                 {{- else if eq .Role \"assistant\" }}<start_of_turn>model\n{{ .Content }}\
                 {{ if not $last }}<end_of_turn>\n{{ end }}{{- end }}{{- end }}"
            }
            Self::Phi3 => "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n",
            Self::Mistral => {
                "{{- range $i, $_ := .Messages }}{{- if eq .Role \"user\" }} [INST] \
                 {{ if and $.System (eq (len (slice $.Messages $i)) 1) }}{{ $.System }}\n\n{{ end }}{{ .Content }} [/INST]\
                 {{- else if eq .Role \"assistant\" }} {{ .Content }}</s>{{- end }}{{- end }}"
            }
        }
    }
}

/// The `Modelfile` of `gguf` (a path as `FROM` takes it, relative to the Modelfile or absolute): `TEMPLATE` from
/// `chat_template` when its format is known ([`ChatFormat::detect`]), `PARAMETER stop` for each of `stops` (the
/// stop tokens' texts).
pub fn modelfile(gguf: &str, chat_template: Option<&str>, stops: &[String]) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!("FROM {gguf}\n");
    match chat_template.map(|t| (t, ChatFormat::detect(t))) {
        Some((_, Some(format))) => out.push_str(&format!("TEMPLATE \"\"\"{}\"\"\"\n", format.go_template())),
        Some((_, None)) => out.push_str("# TEMPLATE: the chat template's format is not one Ollama's are known for\n"),
        None => out.push_str("# TEMPLATE: the model has no chat template; prompts pass through as written\n"),
    }
    for stop in stops {
        out.push_str(&format!("PARAMETER stop \"{}\"\n", quote(stop)));
    }
    out
}
