//! Logits, hidden states and loss equal transformers' on the reference batch.

use burn::prelude::*;
use sft_model::{causal_lm_loss, rope};

use crate::{load, reference, reference_batch, values};

const TOL: f64 = 1e-5;

/// Max |a - b| over real positions of `[2, 152, width]` tensors.
fn max_diff_real(a: &[f32], b: &[f32], mask: &[u8], width: usize) -> f64 {
    let mut worst = 0.0f64;
    for (p, &m) in mask.iter().enumerate() {
        if m == 1 {
            for k in 0..width {
                worst = worst.max((f64::from(a[p * width + k]) - f64::from(b[p * width + k])).abs());
            }
        }
    }
    worst
}

fn check(model_name: &str, expected_loss: f64) {
    let device = Device::flex();
    let (config, model) = load(model_name, &device);
    let reference = reference(model_name);
    let (input, mask, labels) = reference_batch(&reference, &device);

    // RoPE inverse frequencies: within 1 ulp of the stored fp32 values.
    let (ref_freq, _) = reference.f32("rope.inv_freq");
    for (ours, theirs) in rope::inv_freq(&config).iter().zip(&ref_freq) {
        assert!((ours - theirs).abs() <= theirs.abs() * 2.0 * f32::EPSILON, "{ours} vs {theirs}");
    }

    let hidden = model.hidden_states(&input);
    let (ref_hidden, shape) = reference.f32("final_hidden");
    assert_eq!(hidden.dims().to_vec(), shape);
    let ours = values(hidden.clone());
    let d_hidden = max_diff_real(&ours, &ref_hidden, &mask, config.hidden_size);
    assert!(d_hidden <= TOL, "{model_name}: final_hidden differs by {d_hidden}");

    // Logits against the factorised reference: final_hidden @ head^T in f64.
    let logits = model.logits(hidden);
    let ours = values(logits.clone());
    let head = match &model.lm_head {
        Some(linear) => values(linear.weight.val().transpose()), // [vocab, hidden]
        None => values(model.model.embed_tokens.weight.val()),
    };
    let (v, h) = (config.vocab_size, config.hidden_size);
    let mut worst = 0.0f64;
    for (p, &m) in mask.iter().enumerate() {
        if m == 0 {
            continue;
        }
        for j in 0..v {
            let reference: f64 = (0..h).map(|k| f64::from(ref_hidden[p * h + k]) * f64::from(head[j * h + k])).sum();
            worst = worst.max((f64::from(ours[p * v + j]) - reference).abs());
        }
    }
    assert!(worst <= TOL, "{model_name}: logits differ by {worst}");
    eprintln!("{model_name}: max |Δ final_hidden| {d_hidden:.3e}, max |Δ logit| {worst:.3e}");

    // Per-position logsumexp over the whole vocabulary.
    let (ref_lse, _) = reference.f32("logsumexp");
    for (p, &m) in mask.iter().enumerate() {
        if m == 1 {
            let row = &ours[p * v..(p + 1) * v];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max + row.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
            assert!((lse - f64::from(ref_lse[p])).abs() <= TOL, "{model_name}: logsumexp at {p}");
        }
    }

    let loss = causal_lm_loss(logits, &labels).unwrap();
    assert_eq!(loss.count, 60);
    let mean = f64::from(values(loss.mean())[0]);
    let (stored, _) = reference.f32("loss");
    assert!((mean - expected_loss).abs() <= TOL, "{model_name}: loss {mean} vs {expected_loss}");
    eprintln!("{model_name}: loss {mean} (transformers {expected_loss}, |Δ| {:.3e})", (mean - expected_loss).abs());
    assert!((f64::from(stored[0]) - expected_loss).abs() < 1e-6);
}

#[test]
fn llama_micro_matches_transformers() {
    check("llama-micro", 8.355985641479492);
}

#[test]
fn tied_embeddings_and_llama3_rope_scaling_match_transformers() {
    check("llama-micro-tied-scaled", 8.345375061035156);
}

#[test]
fn qwen2_biases_and_tied_embeddings_match_transformers() {
    // FAMILIES.md: base loss 8.328265190124512; biases on q/k/v (not o), tied head, the sliding window configured
    // but off (`use_sliding_window: false`).
    check("qwen2-micro", 8.328265190124512);
}

#[test]
fn mistral_sliding_window_matches_transformers() {
    // FAMILIES.md: base loss 8.385208129882812 with sliding_window 16 on both layers (rows of 152 and 105 tokens).
    check("mistral-micro", 8.385208129882812);
}

#[test]
fn the_window_changes_the_result_only_past_its_length() {
    // The same weights with the window off give transformers' `nowindow.*` (loss 8.386343955993652), and equal the
    // windowed model at positions < 16, where the window covers every earlier key.
    let device = Device::flex();
    let dir = crate::fixture("mistral-micro");
    let (windowed_config, windowed) = load("mistral-micro", &device);
    let config = sft_model::LlamaConfig { sliding_window: None, ..windowed_config };
    let mut checkpoint = sft_model::Checkpoint::open_dir(&dir).unwrap();
    let full =
        sft_model::LlamaForCausalLM::load(&config, &mut checkpoint, &device, burn::tensor::FloatDType::F32).unwrap();
    let reference = reference("mistral-micro");
    let (input, mask, labels) = reference_batch(&reference, &device);
    let (with, without) = (values(windowed.forward(&input)), values(full.forward(&input)));
    let loss = f64::from(values(causal_lm_loss(full.forward(&input), &labels).unwrap().mean())[0]);
    assert!((loss - 8.386343955993652).abs() <= TOL, "no-window loss {loss}");
    let (stored, _) = reference.f32("nowindow.loss");
    assert!((f64::from(stored[0]) - 8.386343955993652).abs() < 1e-6);
    let v = 4096;
    let (mut early, mut late) = (0.0f32, 0.0f32);
    for (p, &m) in mask.iter().enumerate() {
        if m == 1 {
            let d = (p * v..(p + 1) * v).map(|k| (with[k] - without[k]).abs()).fold(0.0f32, f32::max);
            if p % 152 < 16 { early = early.max(d) } else { late = late.max(d) }
        }
    }
    eprintln!("window on vs off: positions < 16 {early:.2e}, later {late:.2e}");
    assert!(early <= 1e-6, "before the window's length: {early}");
    assert!(late > 1e-2, "past the window's length the window matters: {late}");
}

#[test]
fn qwens_optional_window_covers_the_layers_from_max_window_layers_on() {
    // qwen2-micro with `use_sliding_window: true` (sliding_window 16, max_window_layers 1, no `layer_types`): only
    // layer 1 is windowed, as transformers' Qwen2Config decides. FAMILIES.md records the effect on the logits
    // (`config_field_effects`): 0.279 at most.
    let device = Device::flex();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate::fixture("qwen2-micro").join("config.json")).unwrap())
            .unwrap();
    json["use_sliding_window"] = true.into();
    json.as_object_mut().unwrap().remove("layer_types");
    let windowed = sft_model::LlamaConfig::from_json(&json.to_string(), std::path::Path::new("config.json")).unwrap();
    assert_eq!((windowed.layer_window(0), windowed.layer_window(1)), (None, Some(16)));
    let (plain_config, plain) = load("qwen2-micro", &device);
    assert_eq!(plain_config.layer_window(1), None, "the shipped config keeps the window off");
    let mut checkpoint = sft_model::Checkpoint::open_dir(&crate::fixture("qwen2-micro")).unwrap();
    let model =
        sft_model::LlamaForCausalLM::load(&windowed, &mut checkpoint, &device, burn::tensor::FloatDType::F32).unwrap();
    let reference = reference("qwen2-micro");
    let (input, mask, _) = reference_batch(&reference, &device);
    let (a, b) = (values(model.forward(&input)), values(plain.forward(&input)));
    let change = max_diff_real(&a, &b, &mask, 4096);
    eprintln!("qwen2 use_sliding_window: max |Δ logit| {change:.4}");
    assert!((change - 0.279).abs() < 0.0005, "{change} vs transformers' 0.279");
    // Written back, the window and its layers survive.
    let again = sft_model::LlamaConfig::from_json(
        &windowed.to_hf_json(burn::tensor::FloatDType::F32).to_string(),
        std::path::Path::new("config.json"),
    )
    .unwrap();
    assert_eq!(again.window_layers, windowed.window_layers);
    assert_eq!(again.sliding_window, Some(16));
}

#[test]
fn qwen3_qk_norms_and_explicit_head_dim_match_transformers() {
    // FAMILIES.md: base loss 8.319901466369629; q_norm / k_norm over head_dim 32 (≠ hidden / heads = 16).
    check("qwen3-micro", 8.319901466369629);
}

#[test]
fn a_padded_row_equals_the_row_alone() {
    let device = Device::flex();
    let (_, model) = load("llama-micro", &device);
    let reference = reference("llama-micro");
    let (input, _, _) = reference_batch(&reference, &device);
    let batched = values(model.forward(&input).narrow(0, 1, 1).narrow(1, 0, 105));
    let ids: Vec<u32> = reference.i64("input_ids")[152..152 + 105].iter().map(|&t| t as u32).collect();
    let alone = sft_model::ModelInput::new(&ids, [1, 105], None, None, None, &device).unwrap();
    let single = values(model.forward(&alone));
    let worst = batched.iter().zip(&single).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{worst}");
}

#[test]
fn packed_rows_equal_their_examples_alone() {
    // Mistral's window of 16 is shorter than both examples: packing keeps them independent there too.
    for folder in ["llama-micro", "mistral-micro"] {
        packed_row_equals_its_examples(folder);
    }
}

fn packed_row_equals_its_examples(folder: &str) {
    // Two examples packed in one row with restarting positions and sequence ids give each example's own logits.
    let device = Device::flex();
    let (_, model) = load(folder, &device);
    let reference = reference(folder);
    let all: Vec<u32> = reference.i64("input_ids").iter().map(|&t| t as u32).collect();
    let (a, b) = (&all[..40], &all[152..152 + 30]);
    let ids: Vec<u32> = a.iter().chain(b).copied().collect();
    let positions: Vec<u32> = (0..40).chain(0..30).collect();
    let sequences: Vec<u32> = [1; 40].into_iter().chain([2; 30]).collect();
    let packed = sft_model::ModelInput::new(&ids, [1, 70], None, Some(&positions), Some(&sequences), &device).unwrap();
    let packed = values(model.forward(&packed));
    let v = 4096;
    for (example, offset) in [(a, 0), (b, 40)] {
        let alone = sft_model::ModelInput::new(example, [1, example.len()], None, None, None, &device).unwrap();
        let alone = values(model.forward(&alone));
        let slice = &packed[offset * v..(offset + example.len()) * v];
        let worst = slice.iter().zip(&alone).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{folder}: packed example at {offset}: {worst}");
    }
}
