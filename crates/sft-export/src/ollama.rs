//! An Ollama `Modelfile` for an exported GGUF: `FROM` the file, a `TEMPLATE` in Ollama's Go template syntax for the
//! chat format the model was trained with, the template's default system prompt as `SYSTEM`, and a
//! `PARAMETER stop` per stop token.
//!
//! Jinja chat templates cannot be translated in general; the known formats are recognised by their markers and
//! written as Go templates that render what the Jinja template renders, as Ollama fills them (system messages
//! joined into `.System`, and also kept in `.Messages`; a model's `SYSTEM` put first when a chat has none), checked
//! with Go's `text/template` against transformers' rendering of the families' templates
//! (`scripts/ollama/check_templates.py`). Another template gets no `TEMPLATE` line (Ollama then passes prompts
//! through), and says so.

/// A chat format Ollama can be given a template for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role … <|im_end|>` (Qwen2, Qwen2.5, Qwen3, SmolLM2).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|> … <|eot_id|>` (Llama 3.x).
    Llama3,
    /// `<start_of_turn>user|model … <end_of_turn>`, the system prompt opening the first user turn (Gemma).
    Gemma,
    /// `<|user|> … <|end|>` (Phi-3).
    Phi3,
    /// ` [INST] … [/INST]`, the system prompt opening the first user turn (Mistral v0.1 / v0.2).
    Mistral,
    /// `[INST] … [/INST]` without the outer spaces, the system prompt opening the last user turn (Mistral v0.3 and
    /// later, with tool calls).
    MistralV3,
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
        } else if has("[INST]") && has("loop.last and system_message") {
            Some(Self::MistralV3)
        } else if has("[INST]") {
            Some(Self::Mistral)
        } else {
            None
        }
    }

    /// The Go template of the format. `eos_token` is the text the Mistral formats close an answer with;
    /// `system_prefix` ([`ChatFormat::system_prefix`]), text the template writes before every system prompt (Llama
    /// 3.1's knowledge-cutoff and date lines), which also makes the system block unconditional, as there.
    pub fn go_template(self, eos_token: &str, system_prefix: &str) -> String {
        let system_block = |open: &str, close: &str| {
            if system_prefix.is_empty() {
                format!("{{{{- if .System }}}}{open}{{{{ .System }}}}{close}{{{{ end }}}}")
            } else {
                format!("{open}{system_prefix}{{{{ .System }}}}{close}")
            }
        };
        match self {
            Self::ChatMl => format!(
                "{}{{{{- range .Messages }}}}{{{{- if ne .Role \"system\" }}}}<|im_start|>{{{{ .Role }}}}\n\
                 {{{{ .Content }}}}<|im_end|>\n{{{{ end }}}}{{{{- end }}}}<|im_start|>assistant\n",
                system_block("<|im_start|>system\n", "<|im_end|>\n")
            ),
            Self::Llama3 => format!(
                "{}{{{{- range .Messages }}}}{{{{- if ne .Role \"system\" }}}}<|start_header_id|>{{{{ .Role }}}}\
                 <|end_header_id|>\n\n{{{{ .Content }}}}<|eot_id|>{{{{ end }}}}{{{{- end }}}}\
                 <|start_header_id|>assistant<|end_header_id|>\n\n",
                system_block("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>")
            ),
            Self::Gemma => "{{- $first := true }}{{- range .Messages }}{{- if ne .Role \"system\" }}<start_of_turn>\
                            {{ if eq .Role \"assistant\" }}model{{ else }}{{ .Role }}{{ end }}\n\
                            {{ if and $first $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }}<end_of_turn>\n\
                            {{ $first = false }}{{- end }}{{- end }}<start_of_turn>model\n"
                .into(),
            Self::Phi3 => {
                "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n".into()
            }
            Self::Mistral => format!(
                "{{{{- $first := true }}}}{{{{- range .Messages }}}}{{{{- if eq .Role \"user\" }}}} [INST] \
                 {{{{ if and $first $.System }}}}{{{{ $.System }}}}\n\n{{{{ end }}}}{{{{ .Content }}}} [/INST]\
                 {{{{ $first = false }}}}{{{{- else if eq .Role \"assistant\" }}}} {{{{ .Content }}}}{eos_token}\
                 {{{{- end }}}}{{{{- end }}}}"
            ),
            Self::MistralV3 => format!(
                "{{{{- range $i, $_ := .Messages }}}}{{{{- if eq .Role \"user\" }}}}[INST] \
                 {{{{ if and $.System (eq (len (slice $.Messages $i)) 1) }}}}{{{{ $.System }}}}\n\n{{{{ end }}}}\
                 {{{{ .Content }}}}[/INST]{{{{- else if eq .Role \"assistant\" }}}} {{{{ .Content }}}}{eos_token}\
                 {{{{- end }}}}{{{{- end }}}}"
            ),
        }
    }

    /// The markers around the system block of the formats that have one of their own.
    fn system_markers(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::ChatMl => Some(("<|im_start|>system\n", "<|im_end|>")),
            Self::Llama3 => Some(("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>")),
            _ => None,
        }
    }

    /// The text the Jinja template writes before a system prompt, read from `with_system`: its rendering of a
    /// system message [`SYSTEM_PROBE`] and a user message (Llama 3.1's "Cutting Knowledge Date: …\n\n"). Empty
    /// when it writes the system prompt as given.
    pub fn system_prefix(self, with_system: &str) -> String {
        let Some((open, _)) = self.system_markers() else { return String::new() };
        let Some(start) = with_system.find(open).map(|i| i + open.len()) else { return String::new() };
        with_system[start..]
            .find(SYSTEM_PROBE)
            .map(|end| with_system[start..start + end].to_owned())
            .unwrap_or_default()
    }

    /// The system prompt the Jinja template writes when a chat has none (Qwen2.5's "You are Qwen, …"), read from
    /// `user_only`: its rendering of one user message with the generation prompt, less `system_prefix`. `None`
    /// when it writes none, or for formats that carry no system block of their own.
    pub fn default_system(self, user_only: &str, system_prefix: &str) -> Option<String> {
        let (open, close) = self.system_markers()?;
        let start = user_only.find(open)? + open.len();
        let length = user_only[start..].find(close)?;
        let text = &user_only[start..start + length];
        let text = text.strip_prefix(system_prefix).unwrap_or(text);
        (!text.is_empty()).then(|| text.to_owned())
    }
}

/// The system prompt of the probe rendering [`Chat::with_system`] is made with.
pub const SYSTEM_PROBE: &str = "You are a probe.";

/// The user message of both probe renderings.
const USER_PROBE: &str = "Hello.";

/// The chat template's renderings a [`Chat`] is made of: `render` (a chat as `(role, content)` pairs, rendered with
/// the generation prompt) is called for one user message ([`Chat::user_only`]: where the template's default system
/// prompt shows), then for a system message [`SYSTEM_PROBE`] and that user message ([`Chat::with_system`]: what the
/// template writes before a system prompt). A template that refuses a system message (Gemma 1's) gives an empty
/// second rendering; an error on the first is returned.
pub fn probe_renderings<E: std::fmt::Display>(
    mut render: impl FnMut(&[(&str, &str)]) -> Result<String, E>,
) -> Result<(String, String), E> {
    let user_only = render(&[("user", USER_PROBE)])?;
    let with_system = render(&[("system", SYSTEM_PROBE), ("user", USER_PROBE)]).unwrap_or_else(|e| {
        tracing::debug!(error = %e, "the chat template refuses a system message");
        String::new()
    });
    Ok((user_only, with_system))
}

/// What the `Modelfile`'s `TEMPLATE` and `SYSTEM` come from.
#[derive(Debug, Clone, Copy)]
pub struct Chat<'a> {
    /// The Jinja chat template.
    pub template: &'a str,
    /// Its rendering of one user message with the generation prompt ([`ChatFormat::default_system`]).
    pub user_only: &'a str,
    /// Its rendering of a system message [`SYSTEM_PROBE`] and a user message, with the generation prompt
    /// ([`ChatFormat::system_prefix`]).
    pub with_system: &'a str,
    /// The EOS token's text.
    pub eos_token: &'a str,
}

/// The `Modelfile` of `gguf` (a path as `FROM` takes it, relative to the Modelfile or absolute): `TEMPLATE` from
/// `chat` when its format is known ([`ChatFormat::detect`]), `SYSTEM` when the template writes a default system
/// prompt, `PARAMETER stop` for each of `stops` (the stop tokens' texts).
pub fn modelfile(gguf: &str, chat: Option<&Chat<'_>>, stops: &[String]) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!("FROM {gguf}\n");
    match chat.map(|c| (c, ChatFormat::detect(c.template))) {
        Some((chat, Some(format))) => {
            let prefix = format.system_prefix(chat.with_system);
            out.push_str(&format!("TEMPLATE \"\"\"{}\"\"\"\n", format.go_template(chat.eos_token, &prefix)));
            if let Some(system) = format.default_system(chat.user_only, &prefix) {
                out.push_str(&format!("SYSTEM \"\"\"{system}\"\"\"\n"));
            }
        }
        Some((_, None)) => out.push_str("# TEMPLATE: the chat template's format is not one Ollama's are known for\n"),
        None => out.push_str("# TEMPLATE: the model has no chat template; prompts pass through as written\n"),
    }
    for stop in stops {
        out.push_str(&format!("PARAMETER stop \"{}\"\n", quote(stop)));
    }
    out
}
