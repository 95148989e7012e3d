//! Chat templates (Jinja, as in `tokenizer_config.json`) rendered with `minijinja`, and the character spans of
//! the turns that carry loss.

use minijinja::{Environment, Error, ErrorKind, context};
use sft_data::Message;

use crate::error::{Result, TokenizeError};
use crate::special::SpecialTokens;

/// A compiled chat template with the special tokens it may refer to (`bos_token`, `eos_token`, `pad_token`).
///
/// Rendering supports what Hugging Face templates use: `messages`, `add_generation_prompt`, `raise_exception`,
/// `strftime_now`, `tojson`, loop controls and Python string methods (`.strip()`, `.startswith()`, …).
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    /// The Jinja text, as the tokenizer files give it.
    source: String,
    /// Whether the template reads `enable_thinking` (else rendering with it changes nothing).
    thinking_switch: bool,
    bos: String,
    eos: String,
    pad: String,
}

const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compiles `source`.
    pub fn new(source: String, special: &SpecialTokens) -> Result<Self> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", |message: String| -> std::result::Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_function("strftime_now", |format: String| strftime_now(&format));
        let thinking_switch = source.contains("enable_thinking");
        env.add_template_owned(NAME, source.clone()).map_err(template_error(""))?;
        Ok(Self {
            env,
            source,
            thinking_switch,
            bos: special.bos.as_ref().map(|t| t.text.clone()).unwrap_or_default(),
            eos: special.eos.text.clone(),
            pad: special.pad.text.clone(),
        })
    }

    /// The template's Jinja text (for exporters that carry it along: GGUF's `tokenizer.chat_template`, Ollama).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the next assistant turn's content begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.render_with(messages, add_generation_prompt, &ChatOptions::default())
    }

    /// [`render`](Self::render) with the template's own switches (`apply_chat_template`'s extra keyword
    /// arguments); a switch left `None` is undefined in the template, as when the keyword is not passed.
    pub fn render_with(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        options: &ChatOptions,
    ) -> Result<String> {
        let template = self.env.get_template(NAME).map_err(template_error(""))?;
        let switch = |value: Option<bool>| value.map_or(minijinja::Value::UNDEFINED, minijinja::Value::from);
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos,
                eos_token => self.eos,
                pad_token => self.pad,
                enable_thinking => switch(options.enable_thinking),
            })
            .map_err(template_error(""))
    }

    /// The text of a conversation and the byte spans that carry loss.
    ///
    /// `Chat`: every assistant message. `ChatCompletion`: everything after the prompt. A turn's span is found by
    /// rendering prefixes — `render(messages[..i], add_generation_prompt = true)` ends where assistant turn `i`
    /// starts, `render(messages[..=i])` where it ends (its end-of-turn tokens included) — and both must be
    /// prefixes of the whole rendering; a template that breaks this is an error, never a guess.
    ///
    /// Where the template writes an empty reasoning block before an answer (Qwen3's `<think>\n\n</think>\n\n`),
    /// the turn starts after it: the generation prompt rendered with `enable_thinking: false` (which ends with that
    /// block) is used when the whole rendering continues it, so the block carries no loss.
    ///
    /// A template may write an earlier answer differently once later turns follow (Qwen3 drops an earlier turn's
    /// reasoning block): then `render(messages[..=i])` is not a prefix of the whole. Such a turn is located by its
    /// content instead: the whole rendering must continue the turn's start with the answer as written (verbatim,
    /// trimmed, or the part after its `</think>`), followed by the end-of-turn text that
    /// `render(messages[..=i])` puts after it; the span is that answer and its end-of-turn text. Anything else
    /// is an error.
    pub fn spans(&self, turns: Turns<'_>) -> Result<(String, Vec<(usize, usize)>)> {
        match turns {
            Turns::Chat(messages) => {
                let full = self.render(messages, false)?;
                let mut spans = Vec::new();
                for (i, message) in messages.iter().enumerate() {
                    if !message.is_assistant() {
                        continue;
                    }
                    let start = self.turn_start(&messages[..i], &full)?;
                    let end = self.render(&messages[..=i], false)?;
                    let span = match prefix_span(&start, &end, &full, i) {
                        Ok(span) => span,
                        Err(error) => rewritten_turn(&start, &end, &full, &message.content).ok_or(error)?,
                    };
                    spans.push(span);
                }
                Ok((full, spans))
            }
            Turns::PromptCompletion(prompt, completion) => {
                let all: Vec<Message> = prompt.iter().chain(completion).cloned().collect();
                let full = self.render(&all, false)?;
                let start = self.turn_start(prompt, &full)?;
                let span = prefix_span(&start, &full, &full, prompt.len())?;
                Ok((full, vec![span]))
            }
        }
    }

    /// Where the assistant turn after `prompt` starts in `full`: the generation prompt, or the one with
    /// `enable_thinking: false` when it is longer and `full` continues it (an empty reasoning block before the answer).
    fn turn_start(&self, prompt: &[Message], full: &str) -> Result<String> {
        let plain = self.render(prompt, true)?;
        if !self.thinking_switch {
            // A template that never reads the switch renders the same text with it: one render per turn.
            return Ok(plain);
        }
        let no_thinking = self.render_with(prompt, true, &ChatOptions { enable_thinking: Some(false) })?;
        Ok(if no_thinking.len() > plain.len() && full.starts_with(&no_thinking) { no_thinking } else { plain })
    }

    /// The BOS text the template may emit itself (then the tokenizer must not add another).
    pub fn bos_text(&self) -> &str {
        &self.bos
    }
}

/// Keyword arguments some templates read besides `messages` and `add_generation_prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// Qwen3's thinking switch: `Some(false)` writes an empty `<think></think>` block where the assistant's turn
    /// begins (with the generation prompt, or before each final answer) instead of letting the model think.
    pub enable_thinking: Option<bool>,
}

/// The conversation shapes [`ChatTemplate::spans`] handles.
#[derive(Debug, Clone, Copy)]
pub enum Turns<'a> {
    /// Loss on every assistant message.
    Chat(&'a [Message]),
    /// Loss on the completion messages only.
    PromptCompletion(&'a [Message], &'a [Message]),
}

/// The span of an assistant turn whose rendering changes once later turns follow: in `full`, right after the
/// turn's `start`, the answer as the template writes it (`content` verbatim, trimmed, or after its reasoning
/// block), then the end-of-turn text that follows the answer in `alone` (the conversation rendered up to this
/// turn). `None` when `full` does not read so.
fn rewritten_turn(start: &str, alone: &str, full: &str, content: &str) -> Option<(usize, usize)> {
    if !full.starts_with(start) {
        return None;
    }
    let after_reasoning = content.rsplit_once("</think>").map(|(_, answer)| answer.trim_start_matches('\n'));
    let rest = &full[start.len()..];
    [Some(content), Some(content.trim()), after_reasoning].into_iter().flatten().find_map(|answer| {
        let answer_end = alone.rfind(answer)? + answer.len();
        let end_of_turn = &alone[answer_end..];
        (!answer.is_empty() && rest.starts_with(answer) && rest[answer.len()..].starts_with(end_of_turn))
            .then(|| (start.len(), start.len() + answer.len() + end_of_turn.len()))
    })
}

fn prefix_span(start: &str, end: &str, full: &str, turn: usize) -> Result<(usize, usize)> {
    if !end.starts_with(start) || !full.starts_with(end) {
        return Err(TokenizeError::ChatTemplate {
            location: String::new(),
            message: format!(
                "rendering the conversation up to message {turn} is not a prefix of rendering it whole, so the \
                 assistant turns cannot be located (templates that rewrite earlier turns are not supported)"
            ),
        });
    }
    Ok((start.len(), end.len()))
}

fn template_error(location: &str) -> impl Fn(Error) -> TokenizeError + '_ {
    move |e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        TokenizeError::ChatTemplate { location: location.to_owned(), message }
    }
}

/// `strftime_now(format)`: the current UTC time formatted with Python's `strftime` codes (`%d %b %Y`,
/// `%Y-%m-%d`), through chrono. A code chrono does not know is an error of the template, not a panic.
fn strftime_now(format: &str) -> Result<String, Error> {
    use std::fmt::Write;
    let items: Vec<chrono::format::Item<'_>> = chrono::format::StrftimeItems::new(format).collect();
    if items.iter().any(|item| matches!(item, chrono::format::Item::Error)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: `{format}` is not a strftime format"),
        ));
    }
    let mut out = String::new();
    write!(out, "{}", chrono::Utc::now().format_with_items(items.into_iter()))
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("strftime_now: cannot format `{format}`")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_now_formats_today_and_refuses_unknown_codes() {
        let today = chrono::Utc::now().date_naive();
        let formatted = strftime_now("%Y-%m-%d").unwrap();
        // Around midnight the day may turn between the two clock reads.
        let next = today.succ_opt().unwrap_or(today);
        assert!([today.to_string(), next.to_string()].contains(&formatted), "{formatted}");
        let long = strftime_now("%d %B %Y (%b) %%").unwrap();
        assert!(long.ends_with(") %") && long.contains(&today.format("%Y").to_string()), "{long}");
        assert!(strftime_now("%Q").is_err());
    }
}
