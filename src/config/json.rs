//! The config file's text before serde reads it: a UTF-8 byte-order mark skipped, duplicate keys found with the
//! lines of both occurrences, and "did you mean" for the unknown keys and values serde reports.
//!
//! serde_json keeps the last of two equal keys without a word and records no positions, so the duplicates are
//! found on `jsonc-parser`'s syntax tree, which keeps every property with its byte range.

use jsonc_parser::ast::Value;
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

/// `text` without a leading UTF-8 byte-order mark (as Windows editors write one).
pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// A key given twice in one JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicate {
    /// The key path in serde_path_to_error's notation (`training_args.learning_rate`, `a[2].b`).
    pub path: String,
    /// The 1-based lines of the first and the second occurrence.
    pub lines: (usize, usize),
}

/// `text`'s syntax tree, parsed as strict JSON; `None` if it is not (serde then reports the syntax error).
fn parse(text: &str) -> Option<jsonc_parser::ParseResult<'_>> {
    let strict = ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &strict).ok()
}

/// The 1-based line of `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |before| before.matches('\n').count() + 1)
}

/// The 1-based line of the key at `path` (serde_path_to_error's notation: `a.b`, `a[2].b`) in `text`, or of the
/// element for a path ending in an index; `None` if `text` does not parse or has no such key.
pub(crate) fn line_of(text: &str, path: &str) -> Option<usize> {
    let parsed = parse(text)?;
    let mut value = parsed.value.as_ref()?;
    let mut offset = value.range().start;
    for part in path.split('.') {
        let (key, indices) = part.split_once('[').map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            let Value::Object(object) = value else { return None };
            // serde keeps the last of equal keys; duplicates are refused before this runs anyway.
            let prop = object.properties.iter().rev().find(|p| p.name.as_str() == key)?;
            offset = prop.name.range().start;
            value = &prop.value;
        }
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            let Value::Array(array) = value else { return None };
            value = array.elements.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
            offset = value.range().start;
        }
    }
    Some(line_at(text, offset))
}

/// The first key (in document order of the second occurrence) that appears twice in one object of `text`, if
/// any. Text that is not strict JSON gives `None`: serde's parse then reports the syntax error.
pub(crate) fn duplicate_key(text: &str) -> Option<Duplicate> {
    let parsed = parse(text)?;
    let line = |offset: usize| line_at(text, offset);
    let mut found: Vec<Duplicate> = Vec::new();
    walk(parsed.value.as_ref()?, "", &line, &mut found);
    found.into_iter().min_by_key(|d| d.lines.1)
}

/// Collects the duplicates of `value` and everything under it; `path` is the key path of `value`.
fn walk(value: &Value<'_>, path: &str, line: &impl Fn(usize) -> usize, found: &mut Vec<Duplicate>) {
    match value {
        Value::Object(object) => {
            for (i, prop) in object.properties.iter().enumerate() {
                let name = prop.name.as_str();
                let key = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
                if let Some(first) = object.properties[..i].iter().find(|p| p.name.as_str() == name) {
                    found.push(Duplicate {
                        path: key.clone(),
                        lines: (line(first.name.range().start), line(prop.name.range().start)),
                    });
                }
                walk(&prop.value, &key, line, found);
            }
        }
        Value::Array(array) => {
            for (i, element) in array.elements.iter().enumerate() {
                walk(element, &format!("{path}[{i}]"), line, found);
            }
        }
        _ => {}
    }
}

/// The closest of `candidates` to `word`, if one is close enough to be a misspelling of it (at most a third of
/// its characters edited, and at least one character in common with it).
pub(crate) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let budget = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(distance, c)| distance <= budget && distance < c.chars().count())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// serde's message for an unknown key or value (`unknown field `lerning_rate`, expected one of `a`, `b``,
/// `unknown variant `x`, expected `a` or `b``) with "did you mean" added when one of the expected names is close;
/// any other message unchanged.
pub(crate) fn with_suggestion(message: String) -> String {
    let Some(rest) = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message;
    };
    let Some((word, expected)) = rest.split_once('`') else { return message };
    let names = expected.split('`').skip(1).step_by(2);
    match closest(word, names) {
        Some(name) => format!("{message}; did you mean `{name}`?"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(strip_bom("\u{feff}{}"), "{}");
        assert_eq!(strip_bom("{}"), "{}");
    }

    #[test]
    fn duplicates_are_found_with_their_path_and_both_lines() {
        let text = "{\n  \"a\": 1,\n  \"b\": {\"x\": [ {\"y\": 1,\n \"y\": 2} ]},\n  \"a\": 3\n}";
        // `b.x[0].y` (second occurrence on line 4) comes before `a` (line 5).
        assert_eq!(duplicate_key(text), Some(Duplicate { path: "b.x[0].y".into(), lines: (3, 4) }));
        assert_eq!(
            duplicate_key("{\"a\": 1,\n\"c\": 2,\n\"a\": 3}"),
            Some(Duplicate { path: "a".into(), lines: (1, 3) })
        );
        // Equal keys in different objects are not duplicates; neither are equal values.
        assert_eq!(duplicate_key("{\"a\": {\"k\": 1}, \"b\": {\"k\": 1}, \"c\": [\"k\", \"k\"]}"), None);
        // Not strict JSON: left to serde's error.
        assert_eq!(duplicate_key("{\"a\": 1, \"a\": 2,}"), None);
        assert_eq!(duplicate_key("{\"a\": "), None);
    }

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let names = ["learning_rate", "lr_scheduler_type", "logging_steps"];
        assert_eq!(closest("lerning_rate", names), Some("learning_rate"));
        assert_eq!(closest("learningrate", names), Some("learning_rate"));
        assert_eq!(closest("batch_size", names), None);
        assert_eq!(closest("x", ["y", "z"]), None);
    }

    #[test]
    fn serde_messages_get_a_suggestion() {
        let message = "unknown field `lerning_rate`, expected one of `learning_rate`, `weight_decay`".to_owned();
        assert_eq!(with_suggestion(message.clone()), format!("{message}; did you mean `learning_rate`?"));
        let message = "unknown variant `step`, expected one of `no`, `steps`, `epoch`".to_owned();
        assert_eq!(with_suggestion(message.clone()), format!("{message}; did you mean `steps`?"));
        let message = "unknown variant `cpux`, expected `cpu` or `cuda`".to_owned();
        assert_eq!(with_suggestion(message.clone()), format!("{message}; did you mean `cpu`?"));
        let message = "unknown field `zzz`, expected one of `learning_rate`".to_owned();
        assert_eq!(with_suggestion(message.clone()), message);
        assert_eq!(with_suggestion("invalid type: string".into()), "invalid type: string");
    }

    #[test]
    fn a_key_path_is_found_with_its_line() {
        let text = "{\n  \"a\": {\n    \"b\": 1,\n    \"list\": [\n      {\"c\": 2},\n      {\"c\": 3}\n    ]\n  }\n}";
        assert_eq!(line_of(text, "a"), Some(2));
        assert_eq!(line_of(text, "a.b"), Some(3));
        assert_eq!(line_of(text, "a.list[1]"), Some(6));
        assert_eq!(line_of(text, "a.list[1].c"), Some(6));
        assert_eq!(line_of(text, "a.missing"), None);
        assert_eq!(line_of(text, "a.b.c"), None);
        assert_eq!(line_of("{", "a"), None);
    }
}
