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
        env.add_function("strftime_now", |format: String| -> String { strftime_now(&format) });
        env.add_template_owned(NAME, source).map_err(template_error(""))?;
        Ok(Self {
            env,
            bos: special.bos.as_ref().map(|t| t.text.clone()).unwrap_or_default(),
            eos: special.eos.text.clone(),
            pad: special.pad.text.clone(),
        })
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the next assistant turn's content begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self.env.get_template(NAME).map_err(template_error(""))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos,
                eos_token => self.eos,
                pad_token => self.pad,
            })
            .map_err(template_error(""))
    }

    /// The text of a conversation and the byte spans that carry loss.
    ///
    /// `Chat`: every assistant message. `ChatCompletion`: everything after the prompt. A turn's span is found by
    /// rendering prefixes — `render(messages[..i], add_generation_prompt = true)` ends where assistant turn `i`
    /// starts, `render(messages[..=i])` where it ends (its end-of-turn tokens included) — and both must be
    /// prefixes of the whole rendering; a template that breaks this is an error, never a guess.
    pub fn spans(&self, turns: Turns<'_>) -> Result<(String, Vec<(usize, usize)>)> {
        match turns {
            Turns::Chat(messages) => {
                let full = self.render(messages, false)?;
                let mut spans = Vec::new();
                for (i, message) in messages.iter().enumerate() {
                    if !message.is_assistant() {
                        continue;
                    }
                    let start = self.render(&messages[..i], true)?;
                    let end = self.render(&messages[..=i], false)?;
                    spans.push(prefix_span(&start, &end, &full, i)?);
                }
                Ok((full, spans))
            }
            Turns::PromptCompletion(prompt, completion) => {
                let all: Vec<Message> = prompt.iter().chain(completion).cloned().collect();
                let full = self.render(&all, false)?;
                let start = self.render(prompt, true)?;
                let span = prefix_span(&start, &full, &full, prompt.len())?;
                Ok((full, vec![span]))
            }
        }
    }

    /// The BOS text the template may emit itself (then the tokenizer must not add another).
    pub fn bos_text(&self) -> &str {
        &self.bos
    }
}

/// The conversation shapes [`ChatTemplate::spans`] handles.
#[derive(Debug, Clone, Copy)]
pub enum Turns<'a> {
    /// Loss on every assistant message.
    Chat(&'a [Message]),
    /// Loss on the completion messages only.
    PromptCompletion(&'a [Message], &'a [Message]),
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

/// `strftime_now(format)` for the formats chat templates use (`%d %b %Y`, `%Y-%m-%d`), from the system clock (UTC).
fn strftime_now(format: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const LONG: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('b') => out.push_str(MONTHS[(month - 1) as usize]),
            Some('B') => out.push_str(LONG[(month - 1) as usize]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
