//! TRL's shape of `training_args`, mapped onto the stages' sections in one place.
//!
//! TRL's `SFTConfig` is one flat object: the trainer's keys beside tokenization (`truncation_mode`, `eos_token`,
//! `pad_token`), batching (`packing`, `pad_to_multiple_of`, `group_by_length`) and Hub (`push_to_hub`,
//! `hub_model_id`, `hub_private_repo`) keys. The file keeps that shape; [`RunConfig`](super::RunConfig) holds each
//! group in the section of the crate that reads it. [`split`] moves the routed keys of a file's `training_args`
//! into internal sections before serde reads it, [`join`] puts them back when the config is written
//! (`run_config.json`, the model card), and [`public_path`] turns an internal key path back into the file's.

use serde_json::{Map, Value};

/// The section of the file that TRL's keys live in.
pub(crate) const TRAINING_ARGS: &str = "training_args";
/// Internal section of the tokenization keys (`sft_tokenize::TokenizeConfig`).
pub(crate) const TOKENIZE: &str = "training_args/tokenize";
/// Internal section of the batching keys (`sft_collate::CollateConfig`).
pub(crate) const COLLATE: &str = "training_args/collate";
/// Internal section of the Hub keys (`crate::push::PushConfig`).
pub(crate) const HUB: &str = "training_args/hub";

/// Every `training_args` key that does not belong to the trainer, with the internal section it goes to.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("truncation_mode", TOKENIZE),
    ("eos_token", TOKENIZE),
    ("pad_token", TOKENIZE),
    ("packing", COLLATE),
    ("pad_to_multiple_of", COLLATE),
    ("group_by_length", COLLATE),
    ("push_to_hub", HUB),
    ("hub_model_id", HUB),
    ("hub_private_repo", HUB),
];

/// A top-level key of the file that names an internal section: the file may not set those directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InternalKey(pub String);

/// Moves the routed keys of `config`'s `training_args` object into their internal sections. A file that names an
/// internal section itself is refused. Anything that is not an object is left for serde to report.
pub(crate) fn split(config: &mut Value) -> Result<(), InternalKey> {
    let Some(root) = config.as_object_mut() else { return Ok(()) };
    if let Some(key) = root.keys().find(|k| [TOKENIZE, COLLATE, HUB].contains(&k.as_str())) {
        return Err(InternalKey(key.clone()));
    }
    let Some(Value::Object(args)) = root.get_mut(TRAINING_ARGS) else { return Ok(()) };
    let mut moved: Vec<(&str, String, Value)> = Vec::new();
    for &(key, section) in ROUTES {
        if let Some(value) = args.remove(key) {
            moved.push((section, key.to_owned(), value));
        }
    }
    for (section, key, value) in moved {
        let entry = root.entry(section).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(object) = entry {
            object.insert(key, value);
        }
    }
    Ok(())
}

/// The inverse of [`split`]: the internal sections' keys back into `training_args`, the sections removed.
pub(crate) fn join(config: &mut Value) {
    let Some(root) = config.as_object_mut() else { return };
    let mut routed = Map::new();
    for section in [TOKENIZE, COLLATE, HUB] {
        if let Some(Value::Object(object)) = root.remove(section) {
            routed.extend(object);
        }
    }
    if let Value::Object(args) = root.entry(TRAINING_ARGS).or_insert_with(|| Value::Object(Map::new())) {
        args.extend(routed);
    }
}

/// A key path as the file spells it: `training_args/collate.packing` → `training_args.packing`.
pub(crate) fn public_path(path: &str) -> String {
    for section in [TOKENIZE, COLLATE, HUB] {
        if let Some(rest) = path.strip_prefix(section) {
            return format!("{TRAINING_ARGS}{rest}");
        }
    }
    path.to_owned()
}

/// serde's message about `key` (a public key path) as the file sees it: an unknown key of `training_args` lists the
/// routed keys among the expected ones, and no list names an internal section.
pub(crate) fn public_message(key: &str, message: String) -> String {
    let mut message = message;
    for section in [TOKENIZE, COLLATE, HUB] {
        message = message.replace(&format!("`{section}`, "), "");
    }
    let in_training_args = key
        .strip_prefix(TRAINING_ARGS)
        .and_then(|k| k.strip_prefix('.'))
        .is_some_and(|k| !k.contains('.') && !k.contains('['));
    if in_training_args && message.starts_with("unknown field `") && message.contains(", expected one of ") {
        for &(routed, _) in ROUTES {
            message.push_str(&format!(", `{routed}`"));
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_are_inverse_and_paths_read_as_the_file() {
        let file = serde_json::json!({
            "model_name": "m",
            "training_args": {"learning_rate": 1e-3, "packing": true, "eos_token": "</s>", "push_to_hub": false}
        });
        let mut split_value = file.clone();
        split(&mut split_value).unwrap();
        assert_eq!(
            split_value,
            serde_json::json!({
                "model_name": "m",
                "training_args": {"learning_rate": 1e-3},
                "training_args/tokenize": {"eos_token": "</s>"},
                "training_args/collate": {"packing": true},
                "training_args/hub": {"push_to_hub": false}
            })
        );
        join(&mut split_value);
        assert_eq!(split_value, file);
        assert_eq!(public_path("training_args/collate.pad_to_multiple_of"), "training_args.pad_to_multiple_of");
        assert_eq!(public_path("training_args.seed"), "training_args.seed");
        let message = public_message(
            "training_args.packng",
            "unknown field `packng`, expected one of `output_dir`, `seed`".into(),
        );
        assert!(
            message.ends_with(
                "`seed`, `truncation_mode`, `eos_token`, `pad_token`, `packing`, `pad_to_multiple_of`, \
             `group_by_length`, `push_to_hub`, `hub_model_id`, `hub_private_repo`"
            ),
            "{message}"
        );
        let message = public_message(
            "use_4bit",
            "unknown field `use_4bit`, expected one of `training_args`, `training_args/tokenize`, `training_args/collate`, \
             `training_args/hub`, `early_stopping`".into(),
        );
        assert_eq!(message, "unknown field `use_4bit`, expected one of `training_args`, `early_stopping`");
        let mut sneaky = serde_json::json!({"training_args/hub": {"push_to_hub": true}});
        assert_eq!(split(&mut sneaky), Err(InternalKey("training_args/hub".into())));
    }
}
