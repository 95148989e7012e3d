//! Generation: the KV cache changes nothing but speed; a left-padded batch equals its prompts one by one.

use burn::prelude::*;
use sft_model::{GenerationConfig, generate};

use crate::{load, reference};

fn prompts() -> Vec<Vec<u32>> {
    let reference = reference("llama-micro");
    let ids: Vec<u32> = reference.i64("input_ids").iter().map(|&t| t as u32).collect();
    vec![ids[..20].to_vec(), ids[152..152 + 9].to_vec(), ids[..33].to_vec()]
}

fn config(use_cache: bool) -> GenerationConfig {
    GenerationConfig { max_new_tokens: 12, pad_token_id: 2, use_cache, ..GenerationConfig::default() }
}

#[test]
fn greedy_with_cache_equals_without() {
    let device = Device::flex();
    let (_, model) = load("llama-micro", &device);
    let prompts = prompts();
    let cached = generate(&model, &prompts, &config(true), &device).unwrap();
    let uncached = generate(&model, &prompts, &config(false), &device).unwrap();
    assert_eq!(cached, uncached);
    assert!(cached.iter().all(|o| o.len() == 12));
}

#[test]
fn greedy_with_cache_equals_without_for_every_family() {
    // Qwen2's biases, Qwen3's q/k norms, Phi-3's fused projections and partial rotary, Gemma 3's two RoPE tables
    // go through the cached path too.
    let device = Device::flex();
    // Mistral, Gemma 3: the prompts plus 12 new tokens run past the window of 16, so the cached window is exercised.
    for folder in ["qwen2-micro", "qwen3-micro", "mistral-micro", "phi3-micro", "gemma3-micro"] {
        let (_, model) = load(folder, &device);
        let prompts = prompts();
        let cached = generate(&model, &prompts, &config(true), &device).unwrap();
        assert_eq!(cached, generate(&model, &prompts, &config(false), &device).unwrap(), "{folder}");
    }
}

#[test]
fn a_left_padded_batch_equals_one_by_one() {
    let device = Device::flex();
    let (_, model) = load("llama-micro", &device);
    let prompts = prompts();
    let batched = generate(&model, &prompts, &config(true), &device).unwrap();
    for (prompt, expected) in prompts.iter().zip(&batched) {
        let alone = generate(&model, std::slice::from_ref(prompt), &config(true), &device).unwrap();
        assert_eq!(&alone[0], expected);
    }
}

#[test]
fn generation_stops_at_eos_and_sampling_is_seeded() {
    let device = Device::flex();
    let (_, model) = load("llama-micro", &device);
    let prompts = prompts();
    let greedy = generate(&model, &prompts[..1], &config(true), &device).unwrap();
    let eos = greedy[0][3];
    let stop = GenerationConfig { eos_token_ids: vec![eos], ..config(true) };
    let stopped = generate(&model, &prompts[..1], &stop, &device).unwrap();
    let first = greedy[0].iter().position(|&t| t == eos).unwrap();
    assert_eq!(stopped[0], greedy[0][..=first]);

    let sample = |seed| GenerationConfig { temperature: 1.0, top_p: 0.9, seed, ..config(true) };
    let a = generate(&model, &prompts, &sample(7), &device).unwrap();
    assert_eq!(a, generate(&model, &prompts, &sample(7), &device).unwrap(), "same seed, same tokens");
    assert_ne!(a, generate(&model, &prompts, &sample(8), &device).unwrap(), "another seed, other tokens");
}
