//! `{name}` text templates, parsed once and validated against the names they may use.

use crate::error::{DataError, Result};

/// A parsed template: literal text and `{name}` placeholders. `{{` and `}}` stand for literal braces, as in Python's
/// `str.format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(usize),
}

impl Template {
    /// Parses `text`, allowing only placeholders from `fields` (a placeholder's value is looked up by its index in
    /// `fields` at render time). `key` is the config key path the text came from, used in errors.
    pub fn parse(text: &str, fields: &[&str], key: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        DataError::invalid_config(key, format!("unclosed `{{` at byte {at}; write `{{{{` for a brace"))
                    })?;
                    let name = &rest[..end];
                    let index = fields.iter().position(|f| *f == name).ok_or_else(|| {
                        DataError::invalid_config(
                            key,
                            format!("unknown placeholder `{{{name}}}`; expected one of {}", placeholder_list(fields)),
                        )
                    })?;
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(index));
                }
                '}' => {
                    return Err(DataError::invalid_config(
                        key,
                        format!("unmatched `}}` at byte {at}; write `}}}}` for a brace"),
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// Whether the template uses the placeholder at `index` of the `fields` it was parsed with.
    pub fn uses(&self, index: usize) -> bool {
        self.parts.contains(&Part::Field(index))
    }

    /// Renders with `values[i]` for the placeholder `fields[i]`.
    pub fn render(&self, values: &[&str]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(i) => out.push_str(values.get(*i).copied().unwrap_or_default()),
            }
        }
        out
    }
}

fn placeholder_list(fields: &[&str]) -> String {
    fields.iter().map(|f| format!("{{{f}}}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["instruction", "input"];

    #[test]
    fn renders_fields_and_escaped_braces() {
        let t = Template::parse("{{x}} {instruction}: {input}!", FIELDS, "k").expect("valid");
        assert_eq!(t.render(&["do", "this"]), "{x} do: this!");
        assert!(t.uses(0) && t.uses(1));
    }

    #[test]
    fn rejects_unknown_and_unbalanced_placeholders() {
        let e = Template::parse("{output}", FIELDS, "dataset_config.prompt_template.prompt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dataset_config.prompt_template.prompt: unknown placeholder `{output}`; expected one of {instruction}, {input}"
        );
        assert!(Template::parse("{instruction", FIELDS, "k").is_err());
        assert!(Template::parse("a } b", FIELDS, "k").is_err());
    }

    #[test]
    fn multibyte_text_survives() {
        let t = Template::parse("é{input}ü", FIELDS, "k").expect("valid");
        assert_eq!(t.render(&["", "ß"]), "éßü");
    }
}
