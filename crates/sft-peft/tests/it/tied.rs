//! `modules_to_save` on a model with tied embeddings (gemma3-micro: the head is `embed_tokens`), as PEFT does it:
//! `["lm_head"]` trains an untied copy of the head while the embeddings stay as they were; `["embed_tokens"]`
//! trains the embeddings while the head keeps the original matrix, frozen. Either way the merged model's head no
//! longer equals its embeddings, so it is written with both tensors and `tie_word_embeddings: false`, and loads
//! back to the same logits.

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaForCausalLM, ModelInput};
use sft_peft::{LoraConfig, TargetModules, inject, merge_and_unload};
use sft_testkit::{Steps, Tensors, adamw_steps, model_fixture};

use crate::{max_abs_diff, values};

fn check(module: &str) {
    let dir = model_fixture("gemma3-micro");
    let reference = Tensors::open(&dir.join("reference.safetensors"));
    let device = Device::flex().autodiff();
    let (model_config, base) = LlamaForCausalLM::from_pretrained(&dir, &device, FloatDType::F32).unwrap();
    assert!(base.lm_head.is_none(), "gemma3-micro is tied");
    let ids: Vec<u32> = reference.i64("input_ids").iter().map(|&t| t as u32).collect();
    let mask: Vec<u8> = reference.i64("attention_mask").iter().map(|&m| m as u8).collect();
    let input = ModelInput::new(&ids, [2, 152], Some(&mask), None, None, &device).unwrap();
    let labels = reference.i64("labels");
    let embeddings = values(base.model.embed_tokens.weight.val());
    let base_logits = values(base.forward(&input));

    let config = LoraConfig {
        target_modules: Some(TargetModules::List(vec!["q_proj".into()])),
        modules_to_save: Some(vec![module.into()]),
        ..Default::default()
    };
    let model = inject(base, &config, 0).unwrap();
    // lora_B starts at zero and the saved module is a copy: the function is the base's.
    assert_eq!(values(model.forward(&input)), base_logits, "{module}: a fresh copy changes nothing");
    let Steps { model, losses, .. } = adamw_steps(model.train(), &input, &labels, 1e-2, 3);
    assert!(losses[2] < losses[0], "{module}: {losses:?}");
    let head = values(model.lm_head.as_ref().expect("an untied head").weight.val().transpose());
    let trained_embeddings = values(model.model.embed_tokens.weight.val());
    match module {
        "lm_head" => {
            assert_eq!(trained_embeddings, embeddings, "the embeddings stay");
            assert!(max_abs_diff(&head, &embeddings) > 1e-4, "the head copy trains");
        }
        _ => {
            assert_eq!(head, embeddings, "the head keeps the original embeddings");
            assert!(max_abs_diff(&trained_embeddings, &embeddings) > 1e-4, "the embeddings train");
        }
    }

    let merged = merge_and_unload(model.valid());
    let out = tempfile::tempdir().unwrap();
    merged.save_pretrained(&model_config, out.path(), FloatDType::F32).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(written["tie_word_embeddings"], false, "{module}");
    let names = Tensors::open(&out.path().join("model.safetensors")).names();
    assert!(names.iter().any(|n| n == "lm_head.weight") && names.iter().any(|n| n == "model.embed_tokens.weight"));
    let flex = Device::flex();
    let (reloaded_config, reloaded) = LlamaForCausalLM::from_pretrained(out.path(), &flex, FloatDType::F32).unwrap();
    assert!(!reloaded_config.tie_word_embeddings);
    let input = ModelInput::new(&ids, [2, 152], Some(&mask), None, None, &flex).unwrap();
    let d = max_abs_diff(&values(reloaded.forward(&input)), &values(merged.forward(&input)));
    assert!(d <= 1e-5, "{module}: the saved model's logits differ by {d}");
}

#[test]
fn modules_to_save_lm_head_on_a_tied_model_trains_an_untied_copy() {
    check("lm_head");
}

#[test]
fn modules_to_save_embed_tokens_on_a_tied_model_keeps_the_head() {
    check("embed_tokens");
}
