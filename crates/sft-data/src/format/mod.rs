//! Formatting records into training segments: the prompt part (no loss) and the completion part (loss), or chat
//! turns whose assistant parts carry the loss.
//!
//! Formatting never produces one concatenated string: the boundary between what the model reads and what it must
//! learn to write is kept as structure, so the tokenizer stage can mask exactly (see `sft-tokenize`).

mod chat;
mod instruction;
mod prompt_completion;
mod template;

pub use chat::MessagesFormat;
pub use instruction::{InstructionColumns, InstructionFormat};
pub use prompt_completion::PromptCompletionFormat;
pub use template::Template;

use serde::{Deserialize, Serialize};

use crate::config::RecordFormat;
use crate::error::Result;
use crate::record::Record;

/// One chat message, as in a `messages` column or a chat template's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, … (passed to the chat template as is).
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// Whether this is an assistant turn (the turns that carry loss in chat training).
    pub fn is_assistant(&self) -> bool {
        self.role == "assistant"
    }
}

/// A formatted example: what the model is shown and what it must learn to produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Segments {
    /// Plain text: `prompt` is masked, `completion` (followed by EOS at tokenization) carries the loss.
    Completion {
        /// The text the model conditions on.
        prompt: String,
        /// The text it learns to write.
        completion: String,
    },
    /// A conversation; every assistant message carries the loss.
    Chat {
        /// The turns, in order.
        messages: Vec<Message>,
    },
    /// A conversation split into a prompt (masked, even its assistant turns) and a completion (carries the loss).
    ChatCompletion {
        /// The conversation so far.
        prompt: Vec<Message>,
        /// The turns to learn.
        completion: Vec<Message>,
    },
}

/// The formatting seam: one record in, one example's segments out.
pub trait PromptFormat {
    /// Formats one record. Errors name the record's file and row and the offending column.
    fn format(&self, record: &Record) -> Result<Segments>;
}

/// The record layouts we format, chosen from the config (`dataset_config.record_format`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Formatter {
    /// Instruction / optional input / output columns through the prompt template.
    Instruction(InstructionFormat),
    /// A column of `{role, content}` messages.
    Messages(MessagesFormat),
    /// `prompt` and `completion` columns, as text or as message lists (TRL's prompt-completion layouts).
    PromptCompletion(PromptCompletionFormat),
}

impl Formatter {
    /// The record layout this formatter reads (never [`RecordFormat::Auto`]).
    pub fn record_format(&self) -> RecordFormat {
        match self {
            Self::Instruction(_) => RecordFormat::Instruction,
            Self::Messages(_) => RecordFormat::Messages,
            Self::PromptCompletion(_) => RecordFormat::PromptCompletion,
        }
    }
}

impl PromptFormat for Formatter {
    fn format(&self, record: &Record) -> Result<Segments> {
        match self {
            Self::Instruction(f) => f.format(record),
            Self::Messages(f) => f.format(record),
            Self::PromptCompletion(f) => f.format(record),
        }
    }
}
