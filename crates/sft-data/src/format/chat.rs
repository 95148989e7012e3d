//! Conversational records: a column of `{role, content}` messages.

use serde_json::Value;

use super::{Message, PromptFormat, Segments};
use crate::error::{DataError, Result};
use crate::record::Record;

/// Formats a `messages` column (a list of `{"role": …, "content": …}` objects, as in TRL's conversational layout)
/// into [`Segments::Chat`]. The conversation must contain at least one assistant message, or there is nothing to
/// learn.
#[derive(Debug, Clone)]
pub struct MessagesFormat {
    column: String,
}

impl MessagesFormat {
    /// Reads messages from `column` (`dataset_config.messages_column`).
    pub fn new(column: impl Into<String>) -> Self {
        Self { column: column.into() }
    }
}

impl PromptFormat for MessagesFormat {
    fn format(&self, record: &Record) -> Result<Segments> {
        let messages = messages(record, &self.column, "dataset_config.messages_column")?;
        if !messages.iter().any(Message::is_assistant) {
            return Err(DataError::WrongType {
                location: record.location.clone(),
                column: self.column.clone(),
                expected: "a conversation with at least one assistant message",
                found: format!("roles [{}]", roles(&messages)),
            });
        }
        Ok(Segments::Chat { messages })
    }
}

/// The messages in `column` of `record`; errors name the message index and field.
pub(super) fn messages(record: &Record, column: &str, key: &str) -> Result<Vec<Message>> {
    let value = record.get(column, key)?;
    let Value::Array(items) = value else {
        return Err(record.wrong_type(column, "a list of {role, content} messages", value));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let text = |field: &str| -> Result<String> {
                let name = format!("{column}[{i}].{field}");
                match item.get(field) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(record.wrong_type(&name, "text", other)),
                    None if item.is_object() => Err(record.wrong_type(&name, "text", &Value::Null)),
                    None => Err(record.wrong_type(&format!("{column}[{i}]"), "a {role, content} object", item)),
                }
            };
            Ok(Message { role: text("role")?, content: text("content")? })
        })
        .collect()
}

pub(super) fn roles(messages: &[Message]) -> String {
    messages.iter().map(|m| m.role.as_str()).collect::<Vec<_>>().join(", ")
}
