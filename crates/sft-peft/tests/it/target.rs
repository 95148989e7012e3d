//! PEFT's target rules: suffixes, `all-linear`, regexes, `layers_to_transform`, and the errors.

use burn::prelude::*;
use sft_peft::{LayerSelection, LoraConfig, PeftError, TargetModules, inject, select_targets};

use crate::base;

fn names() -> Vec<String> {
    base(&Device::flex()).projections().into_iter().map(|(n, _)| n).collect()
}

fn selected(config: &LoraConfig) -> Vec<String> {
    let names = names();
    let hits = select_targets(config, &names).unwrap();
    names.into_iter().zip(hits).filter(|(_, h)| *h).map(|(n, _)| n).collect()
}

fn list(items: &[&str]) -> Option<TargetModules> {
    Some(TargetModules::List(items.iter().map(|s| (*s).to_owned()).collect()))
}

#[test]
fn suffixes_all_linear_regex_and_layers() {
    let default = selected(&LoraConfig::default());
    assert_eq!(
        default,
        [
            "model.layers.0.self_attn.q_proj",
            "model.layers.0.self_attn.v_proj",
            "model.layers.1.self_attn.q_proj",
            "model.layers.1.self_attn.v_proj"
        ],
        "PEFT's Llama default: q_proj and v_proj"
    );
    let all = selected(&LoraConfig {
        target_modules: Some(TargetModules::Pattern("all-linear".into())),
        ..Default::default()
    });
    assert_eq!(all.len(), 14);
    // A full name is a suffix of itself; a partial word is not (`proj` does not match `q_proj`).
    let exact = selected(&LoraConfig { target_modules: list(&["model.layers.1.mlp.down_proj"]), ..Default::default() });
    assert_eq!(exact, ["model.layers.1.mlp.down_proj"]);
    let regex = selected(&LoraConfig {
        target_modules: Some(TargetModules::Pattern(r".*\.0\.self_attn\.(k|o)_proj".into())),
        ..Default::default()
    });
    assert_eq!(regex, ["model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.o_proj"]);
    let layer1 = selected(&LoraConfig {
        target_modules: list(&["q_proj", "down_proj"]),
        layers_to_transform: Some(LayerSelection::One(1)),
        ..Default::default()
    });
    assert_eq!(layer1, ["model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj"]);
}

#[test]
fn targets_that_match_nothing_are_errors_listing_the_modules() {
    let names = names();
    for (config, needle) in [
        (LoraConfig { target_modules: list(&["q_proj", "query"]), ..Default::default() }, "`query` matches no module"),
        (LoraConfig { target_modules: list(&["proj"]), ..Default::default() }, "`proj` matches no module"),
        (
            LoraConfig { target_modules: Some(TargetModules::Pattern("attn".into())), ..Default::default() },
            "matches no module",
        ),
        (LoraConfig { target_modules: list(&["lm_head"]), ..Default::default() }, "modules_to_save"),
    ] {
        match select_targets(&config, &names) {
            Err(e @ PeftError::Target { .. }) => {
                let text = e.to_string();
                assert!(text.contains(needle), "{text}");
                assert!(text.contains("model.layers.0.self_attn.q_proj, model.layers.0.self_attn.k_proj"), "{text}");
            }
            other => panic!("{config:?}: {other:?}"),
        }
    }
    let out_of_range = LoraConfig { layers_to_transform: Some(LayerSelection::Many(vec![0, 2])), ..Default::default() };
    assert!(select_targets(&out_of_range, &names).unwrap_err().to_string().contains("layer 2 does not exist"));
    let r0 = LoraConfig { r: 0, ..Default::default() };
    assert!(inject(base(&Device::flex()), &r0, 0).unwrap_err().to_string().contains("lora_config.r"));
    let saved = LoraConfig { modules_to_save: Some(vec!["norm".into()]), ..Default::default() };
    assert!(inject(base(&Device::flex()), &saved, 0).unwrap_err().to_string().contains("`norm` is not a module"));
}
