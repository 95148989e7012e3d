//! Prompt / completion records, as text or as message lists.

use serde_json::Value;

use super::chat::messages;
use super::{PromptFormat, Segments};
use crate::error::Result;
use crate::record::Record;

/// Formats TRL's prompt-completion layouts: two text columns give [`Segments::Completion`] as they are (no
/// template, no trimming; a null, empty or whitespace-only one is an error naming the file, row and column);
/// two message-list columns give [`Segments::ChatCompletion`].
#[derive(Debug, Clone)]
pub struct PromptCompletionFormat {
    prompt: String,
    completion: String,
}

impl PromptCompletionFormat {
    /// Reads `prompt_column` and `completion_column`.
    pub fn new(prompt_column: impl Into<String>, completion_column: impl Into<String>) -> Self {
        Self { prompt: prompt_column.into(), completion: completion_column.into() }
    }
}

impl PromptFormat for PromptCompletionFormat {
    fn format(&self, record: &Record) -> Result<Segments> {
        const PROMPT_KEY: &str = "dataset_config.prompt_column";
        const COMPLETION_KEY: &str = "dataset_config.completion_column";
        match record.get(&self.prompt, PROMPT_KEY)? {
            Value::Array(_) => Ok(Segments::ChatCompletion {
                prompt: messages(record, &self.prompt, PROMPT_KEY)?,
                completion: messages(record, &self.completion, COMPLETION_KEY)?,
            }),
            Value::String(_) => {
                let prompt = record.required_text(&self.prompt, PROMPT_KEY)?;
                let completion = match record.get(&self.completion, COMPLETION_KEY)? {
                    Value::String(_) | Value::Null => record.required_text(&self.completion, COMPLETION_KEY)?,
                    other => return Err(record.wrong_type(&self.completion, "text, like the prompt", other)),
                };
                Ok(Segments::Completion { prompt: prompt.to_owned(), completion: completion.to_owned() })
            }
            other => Err(record.wrong_type(&self.prompt, "text or a list of messages", other)),
        }
    }
}
