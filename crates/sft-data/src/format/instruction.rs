//! Instruction / input / output records (Alpaca style), formatted through a template.

use super::template::Template;
use super::{PromptFormat, Segments};
use crate::config::PromptTemplate;
use crate::error::{DataError, Result};
use crate::record::Record;

/// The columns an instruction record is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionColumns {
    /// Column with the instruction (`dataset_config.instruction_column`).
    pub instruction: String,
    /// Column with the optional input (`dataset_config.input_column`); `None` when the data has none.
    pub input: Option<String>,
    /// Column with the expected output (`dataset_config.output_column`).
    pub output: String,
}

/// Formats instruction records: every field is trimmed of surrounding whitespace (Python's `str.strip()`); an
/// instruction or output that is null, empty or only whitespace is an error naming the file, row and column
/// ([`DataError::EmptyField`](crate::DataError::EmptyField)), while the input may be empty; the prompt comes from
/// `prompt_template.prompt` (or `prompt_no_input` when the input is empty or null), and the completion from
/// `prompt_template.completion`.
///
/// With the default template, a row with input gives
/// `"### Instruction\n{instruction}\n\n### Input\n{input}\n\n### Output\n"` + `"{output}"`.
#[derive(Debug, Clone)]
pub struct InstructionFormat {
    columns: InstructionColumns,
    prompt: Template,
    prompt_no_input: Template,
    completion: Template,
}

const PROMPT_FIELDS: &[&str] = &["instruction", "input"];
const COMPLETION_FIELDS: &[&str] = &["output"];
const KEY: &str = "dataset_config.prompt_template";

impl InstructionFormat {
    /// Parses and checks the templates: `prompt` must use `{instruction}` (and `{input}` when there is an input
    /// column), `prompt_no_input` may not use `{input}`, `completion` must use `{output}`.
    pub fn new(columns: InstructionColumns, template: &PromptTemplate) -> Result<Self> {
        let prompt = Template::parse(&template.prompt, PROMPT_FIELDS, &format!("{KEY}.prompt"))?;
        let prompt_no_input =
            Template::parse(&template.prompt_no_input, &PROMPT_FIELDS[..1], &format!("{KEY}.prompt_no_input"))?;
        let completion = Template::parse(&template.completion, COMPLETION_FIELDS, &format!("{KEY}.completion"))?;
        if !prompt.uses(0) {
            return Err(DataError::invalid_config(format!("{KEY}.prompt"), "must contain `{instruction}`"));
        }
        if columns.input.is_some() && !prompt.uses(1) {
            return Err(DataError::invalid_config(
                format!("{KEY}.prompt"),
                "must contain `{input}` while dataset_config.input_column is set (set it to null for data without input)",
            ));
        }
        if !prompt_no_input.uses(0) {
            return Err(DataError::invalid_config(format!("{KEY}.prompt_no_input"), "must contain `{instruction}`"));
        }
        if !completion.uses(0) {
            return Err(DataError::invalid_config(format!("{KEY}.completion"), "must contain `{output}`"));
        }
        Ok(Self { columns, prompt, prompt_no_input, completion })
    }
}

impl PromptFormat for InstructionFormat {
    fn format(&self, record: &Record) -> Result<Segments> {
        let required = |column: &str, key: &str| record.required_text(column, key).map(str::trim);
        let instruction = required(&self.columns.instruction, "dataset_config.instruction_column")?;
        let input = match &self.columns.input {
            Some(column) => record.text(column, "dataset_config.input_column")?.map(str::trim).unwrap_or_default(),
            None => "",
        };
        let output = required(&self.columns.output, "dataset_config.output_column")?;
        let prompt = if input.is_empty() {
            self.prompt_no_input.render(&[instruction])
        } else {
            self.prompt.render(&[instruction, input])
        };
        Ok(Segments::Completion { prompt, completion: self.completion.render(&[output]) })
    }
}
