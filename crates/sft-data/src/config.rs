//! The `dataset_config` section of a run config.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::format::{Formatter, InstructionColumns, InstructionFormat, MessagesFormat, PromptCompletionFormat};
use crate::record::Record;
use crate::split::SplitSize;

/// Where the data comes from, how records map to examples, and how they are sampled and split.
///
/// Unknown keys are rejected. Defaults follow the seed tutorial and TRL where the seed is silent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A local data file, a local directory of data files, or a Hugging Face Hub dataset repo id
    /// (`owner/name`). Directories and repos are split by file name (see [`crate::SplitFiles`]).
    pub dataset_name: String,
    /// Hub revision (branch, tag or commit) of a dataset repo; `main` when unset. Must be unset for local data.
    #[serde(default)]
    pub revision: Option<String>,
    /// The record layout; `auto` picks from the first record's columns.
    #[serde(default)]
    pub record_format: RecordFormat,
    /// Column holding the instruction.
    #[serde(default = "default_instruction_column")]
    pub instruction_column: String,
    /// Column holding the optional input; `null` for data without one.
    #[serde(default = "default_input_column")]
    pub input_column: Option<String>,
    /// Column holding the expected output.
    #[serde(default = "default_output_column")]
    pub output_column: String,
    /// Column holding a list of `{role, content}` messages (conversational data).
    #[serde(default = "default_messages_column")]
    pub messages_column: String,
    /// Column holding the prompt (prompt-completion data).
    #[serde(default = "default_prompt_column")]
    pub prompt_column: String,
    /// Column holding the completion (prompt-completion data).
    #[serde(default = "default_completion_column")]
    pub completion_column: String,
    /// Templates for instruction records.
    #[serde(default)]
    pub prompt_template: PromptTemplate,
    /// Marker masking, for compatibility with the seed tutorial: everything up to and including the first
    /// occurrence of this text (e.g. `"### Output\n"`) carries no loss. Unset: the exact prompt/completion boundary.
    #[serde(default)]
    pub response_template: Option<String>,
    /// Maximum tokens per example, EOS included (used by tokenization; TRL's default is 1024).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Keep a seeded random sample of this many rows before splitting; all rows when unset.
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Rows held out for validation when the source has no validation split: a fraction in (0, 1) or a count.
    #[serde(default)]
    pub validation_size: Option<SplitSize>,
    /// Rows held out for test when the source has no test split: a fraction in (0, 1) or a count.
    #[serde(default)]
    pub test_size: Option<SplitSize>,
    /// Seed of the sampling / splitting shuffle.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

/// Record layouts (`dataset_config.record_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    /// `messages` if the messages column exists, else `prompt_completion` if both of its columns exist, else
    /// `instruction`.
    #[default]
    Auto,
    /// Instruction / input / output columns through [`PromptTemplate`].
    Instruction,
    /// A list of chat messages.
    Messages,
    /// Prompt and completion columns.
    PromptCompletion,
}

/// Templates for instruction records. `{instruction}`, `{input}` and `{output}` are replaced by the trimmed fields;
/// `{{` / `}}` are literal braces. Keys left out keep the seed tutorial's defaults shown on each field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptTemplate {
    /// Prompt when the input is present:
    /// `"### Instruction\n{instruction}\n\n### Input\n{input}\n\n### Output\n"`.
    pub prompt: String,
    /// Prompt when the input is empty or absent: `"### Instruction\n{instruction}\n\n### Output\n"`.
    pub prompt_no_input: String,
    /// Completion: `"{output}"` (EOS is appended as a token by the tokenizer, never as text).
    pub completion: String,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self {
            prompt: "### Instruction\n{instruction}\n\n### Input\n{input}\n\n### Output\n".into(),
            prompt_no_input: "### Instruction\n{instruction}\n\n### Output\n".into(),
            completion: "{output}".into(),
        }
    }
}

fn default_instruction_column() -> String {
    "instruction".into()
}
fn default_input_column() -> Option<String> {
    Some("input".into())
}
fn default_output_column() -> String {
    "output".into()
}
fn default_messages_column() -> String {
    "messages".into()
}
fn default_prompt_column() -> String {
    "prompt".into()
}
fn default_completion_column() -> String {
    "completion".into()
}
fn default_max_length() -> usize {
    1024
}
fn default_seed() -> u64 {
    42
}

const KEY: &str = "dataset_config";

impl DataConfig {
    /// A config for `dataset_name` with every other key at its default.
    pub fn new(dataset_name: impl Into<String>) -> Self {
        Self {
            dataset_name: dataset_name.into(),
            revision: None,
            record_format: RecordFormat::Auto,
            instruction_column: default_instruction_column(),
            input_column: default_input_column(),
            output_column: default_output_column(),
            messages_column: default_messages_column(),
            prompt_column: default_prompt_column(),
            completion_column: default_completion_column(),
            prompt_template: PromptTemplate::default(),
            response_template: None,
            max_length: default_max_length(),
            sample_size: None,
            validation_size: None,
            test_size: None,
            seed: default_seed(),
        }
    }

    /// Checks ranges and consistency; errors name the key path (`dataset_config.max_length: …`).
    pub fn validate(&self) -> Result<()> {
        if self.dataset_name.trim().is_empty() {
            return Err(DataError::invalid_config(format!("{KEY}.dataset_name"), "expected a path or a Hub repo id"));
        }
        if self.max_length == 0 {
            return Err(DataError::invalid_config(format!("{KEY}.max_length"), "expected a whole number > 0"));
        }
        if self.response_template.as_deref() == Some("") {
            return Err(DataError::invalid_config(format!("{KEY}.response_template"), "expected a non-empty marker"));
        }
        if self.sample_size == Some(0) {
            return Err(DataError::invalid_config(format!("{KEY}.sample_size"), "expected a whole number > 0"));
        }
        for (name, column) in [
            ("instruction_column", Some(&self.instruction_column)),
            ("input_column", self.input_column.as_ref()),
            ("output_column", Some(&self.output_column)),
            ("messages_column", Some(&self.messages_column)),
            ("prompt_column", Some(&self.prompt_column)),
            ("completion_column", Some(&self.completion_column)),
        ] {
            if column.is_some_and(|c| c.is_empty()) {
                return Err(DataError::invalid_config(format!("{KEY}.{name}"), "expected a column name"));
            }
        }
        if let (Some(SplitSize::Fraction(v)), Some(SplitSize::Fraction(t))) = (self.validation_size, self.test_size)
            && v + t >= 1.0
        {
            return Err(DataError::invalid_config(
                format!("{KEY}.validation_size + {KEY}.test_size"),
                format!("{v} + {t} leaves nothing to train on; expected a sum < 1"),
            ));
        }
        // Parse the templates now so that a bad template fails at config load, not on the first record.
        self.instruction_format()?;
        Ok(())
    }

    /// The formatter for `format`, resolving [`RecordFormat::Auto`] from `first`'s columns.
    pub fn formatter(&self, first: &Record) -> Result<Formatter> {
        let kind = match self.record_format {
            RecordFormat::Auto => self.detect(first),
            kind => kind,
        };
        Ok(match kind {
            RecordFormat::Messages => Formatter::Messages(MessagesFormat::new(&self.messages_column)),
            RecordFormat::PromptCompletion => {
                Formatter::PromptCompletion(PromptCompletionFormat::new(&self.prompt_column, &self.completion_column))
            }
            RecordFormat::Instruction | RecordFormat::Auto => Formatter::Instruction(self.instruction_format()?),
        })
    }

    /// The record layout `auto` picks for a record with `first`'s columns.
    pub fn detect(&self, first: &Record) -> RecordFormat {
        let has = |c: &str| first.fields.contains_key(c);
        if has(&self.messages_column) {
            RecordFormat::Messages
        } else if has(&self.prompt_column) && has(&self.completion_column) {
            RecordFormat::PromptCompletion
        } else {
            RecordFormat::Instruction
        }
    }

    fn instruction_format(&self) -> Result<InstructionFormat> {
        let columns = InstructionColumns {
            instruction: self.instruction_column.clone(),
            input: self.input_column.clone(),
            output: self.output_column.clone(),
        };
        InstructionFormat::new(columns, &self.prompt_template)
    }
}
