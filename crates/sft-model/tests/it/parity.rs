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
    check_with(model_name, expected_loss, TOL, 1);
}

/// `hidden_tol`: the final_hidden tolerance of FAMILIES.md; `freq_ulps`: how far (in ulps of f32) the stored RoPE
/// frequencies, which transformers computes in f32, may be from ours (f64 formula rounded once).
fn check_with(model_name: &str, expected_loss: f64, hidden_tol: f64, freq_ulps: i32) {
    let device = Device::flex();
    let (config, model) = load(model_name, &device);
    let reference = reference(model_name);
    let (input, mask, labels) = reference_batch(&reference, &device);

    let ulps = |ours: &[f32], key: &str| {
        let (theirs, _) = reference.f32(key);
        assert_eq!(ours.len(), theirs.len(), "{key}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a.to_bits() as i32 - b.to_bits() as i32).abs() <= freq_ulps, "{key}: {a} vs {b}");
        }
    };
    match rope::local_inv_freq(&config) {
        None => ulps(&rope::inv_freq(&config), "rope.inv_freq"),
        Some(local) => {
            ulps(&rope::inv_freq(&config), "rope.full_attention.inv_freq");
            ulps(&local, "rope.sliding_attention.inv_freq");
        }
    }

    let hidden = model.hidden_states(&input);
    let (ref_hidden, shape) = reference.f32("final_hidden");
    assert_eq!(hidden.dims().to_vec(), shape);
    let ours = values(hidden.clone());
    let d_hidden = max_diff_real(&ours, &ref_hidden, &mask, config.hidden_size);
    assert!(d_hidden <= hidden_tol, "{model_name}: final_hidden differs by {d_hidden}");

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
fn phi3_fused_projections_and_partial_rotary_match_transformers() {
    // FAMILIES.md: base loss 8.363038063049316; qkv_proj [q | k | v], gate_up_proj [gate | up], RoPE on the first
    // 8 of 16 dimensions of each head.
    check("phi3-micro", 8.363038063049316);
}

#[test]
fn gemma3_matches_transformers() {
    // FAMILIES.md: base loss 8.341395378112793; (1 + w) norms in f32, four per layer, embeddings × 8, tanh-GELU,
    // q/k norms, scores × 24^-½, layers 0, 1, 3 windowed (16) with RoPE base 1e4, layer 2 global with 1e6.
    // final_hidden within 5e-5 (FAMILIES.md: ~5e-6 from fp64 in any fp32 implementation); the stored frequencies
    // are transformers' f32 computation, up to 4 ulps from the f64 formula at head_dim 24.
    check_with("gemma3-micro", 8.341395378112793, 5e-5, 4);
}

#[test]
fn the_window_changes_the_result_only_past_its_length() {
    // The same weights with the window off give transformers' `nowindow.*`, and equal the windowed model at
    // positions < 16, where the window covers every earlier key. Mistral: `sliding_window: null`; Gemma 3: a
    // window of 4096 (longer than every row), layer types and the local RoPE base unchanged.
    window_effect("mistral-micro", None, 8.386343955993652);
    window_effect("gemma3-micro", Some(4096), 8.344493865966797);
}

fn window_effect(folder: &str, window: Option<usize>, nowindow_loss: f64) {
    let device = Device::flex();
    let dir = crate::fixture(folder);
    let (windowed_config, windowed) = load(folder, &device);
    let config = sft_model::LlamaConfig { sliding_window: window, ..windowed_config };
    let mut checkpoint = sft_model::Checkpoint::open_dir(&dir).unwrap();
    let full =
        sft_model::LlamaForCausalLM::load(&config, &mut checkpoint, &device, burn::tensor::FloatDType::F32).unwrap();
    let reference = reference(folder);
    let (input, mask, labels) = reference_batch(&reference, &device);
    let (with, without) = (values(windowed.forward(&input)), values(full.forward(&input)));
    let loss = f64::from(values(causal_lm_loss(full.forward(&input), &labels).unwrap().mean())[0]);
    assert!((loss - nowindow_loss).abs() <= TOL, "{folder}: no-window loss {loss}");
    let (stored, _) = reference.f32("nowindow.loss");
    assert!((f64::from(stored[0]) - nowindow_loss).abs() < 1e-6);
    let v = 4096;
    let (mut early, mut late) = (0.0f32, 0.0f32);
    for (p, &m) in mask.iter().enumerate() {
        if m == 1 {
            let d = (p * v..(p + 1) * v).map(|k| (with[k] - without[k]).abs()).fold(0.0f32, f32::max);
            if p % 152 < 16 { early = early.max(d) } else { late = late.max(d) }
        }
    }
    eprintln!("{folder}: window on vs off: positions < 16 {early:.2e}, later {late:.2e}");
    assert!(early <= 1e-6, "{folder}: before the window's length: {early}");
    assert!(late > 1e-2, "{folder}: past the window's length the window matters: {late}");
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
    // Mistral's window of 16 is shorter than both examples: packing keeps them independent there too; Phi-3's
    // partial rotary and Gemma 3's local/global layers take the masked path.
    for folder in ["llama-micro", "mistral-micro", "phi3-micro", "gemma3-micro"] {
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

#[test]
fn longrope_divides_each_frequency_by_its_factor_and_scales_the_tables() {
    // Phi-3 / Phi-4's `longrope` (transformers' `_compute_longrope_parameters`): inv_freq[i] =
    // 1 / (factor[i] · theta^(2i/d)) over the rotary dimension d = 16 × 0.5 = 8, short factors while the largest
    // position + 1 fits original_max_position_embeddings (256), long factors past it; cos / sin × √(1 + ln 8 / ln 256)
    // = √1.375 (max_position_embeddings 2048 / 256 = 8).
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate::fixture("phi3-micro").join("config.json")).unwrap())
            .unwrap();
    let (short, long) = ([1.0, 1.5, 2.0, 3.0], [2.0, 4.0, 8.0, 16.0]);
    config["max_position_embeddings"] = 2048.into();
    config["original_max_position_embeddings"] = 256.into();
    config["rope_scaling"] = serde_json::json!({"type": "longrope", "short_factor": short, "long_factor": long});
    config.as_object_mut().unwrap().remove("rope_parameters");
    let config = sft_model::LlamaConfig::from_json(&config.to_string(), std::path::Path::new("config.json")).unwrap();
    let device = Device::flex();
    let rope = rope::Rotary::new(&config, &device);
    let scale = 1.375f64.sqrt();
    assert!((rope.attention_factor - scale).abs() < 1e-12, "{}", rope.attention_factor);
    for (last, factors) in [(255u32, short), (300, long)] {
        let positions: Vec<u32> = vec![0, 7, last];
        let ids = sft_model::ModelInput::new(&[0, 0, 0], [1, 3], None, Some(&positions), None, &device).unwrap();
        let ((cos, sin), local) = rope.tables(&ids.position_ids, burn::tensor::DType::F32);
        assert!(local.is_none());
        let (cos, sin) = (values(cos), values(sin));
        for (t, &p) in positions.iter().enumerate() {
            for i in 0..8 {
                let f = 1.0 / (factors[i % 4] * 10_000f64.powf((2 * (i % 4)) as f64 / 8.0));
                let angle = f64::from(p) * f;
                let (c, s) = (angle.cos() * scale, angle.sin() * scale);
                assert!((f64::from(cos[t * 8 + i]) - c).abs() < 2e-5, "cos p{p} i{i}: {} vs {c}", cos[t * 8 + i]);
                assert!((f64::from(sin[t * 8 + i]) - s).abs() < 2e-5, "sin p{p} i{i}: {} vs {s}", sin[t * 8 + i]);
            }
        }
    }
    // A factor list of the wrong length names the key and the rotary dimension.
    let bad = r#"{"model_type": "phi3", "vocab_size": 8, "hidden_size": 8, "intermediate_size": 8,
        "num_hidden_layers": 1, "num_attention_heads": 2, "partial_rotary_factor": 0.5,
        "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1], "long_factor": [1]}}"#;
    let err = sft_model::LlamaConfig::from_json(bad, std::path::Path::new("config.json")).unwrap_err().to_string();
    assert!(
        err.contains("rope_scaling") && err.contains("`short_factor` has 3 entries; the rotary dimension 2 needs 1"),
        "{err}"
    );
}

#[test]
fn longrope_hidden_states_equal_transformers() {
    // phi3-micro with Phi-3's long-context RoPE (tests/fixtures/make_longrope_reference.py): the reference batch
    // reaches position 151, past the original 64 positions, so both take the long factors; row 0's first 64
    // tokens alone take the short ones. Attention factor √(1 + ln 32 / ln 64).
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(crate::fixture("phi3-micro").join(name), dir.path().join(name)).unwrap();
    }
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let scaling = serde_json::json!({"rope_type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.7],
        "long_factor": [1.5, 2.5, 4.0, 8.0], "original_max_position_embeddings": 64});
    config["original_max_position_embeddings"] = 64.into();
    for (key, value) in scaling.as_object().unwrap() {
        config["rope_parameters"][key] = value.clone();
    }
    config["rope_scaling"] = scaling;
    std::fs::write(&path, config.to_string()).unwrap();
    let device = Device::flex();
    let (config, model) =
        sft_model::LlamaForCausalLM::from_pretrained(dir.path(), &device, burn::tensor::FloatDType::F32).unwrap();
    let expected = crate::Tensors::open(&crate::fixture("phi3-micro").join("longrope.safetensors"));
    let factor = expected.f32("attention_factor").0[0];
    assert!((rope::attention_factor(&config) - f64::from(factor)).abs() < 1e-6, "{factor}");

    let (input, mask, _) = reference_batch(&reference("phi3-micro"), &device);
    let ours = values(model.hidden_states(&input));
    let (theirs, _) = expected.f32("final_hidden");
    let long = max_diff_real(&ours, &theirs, &mask, config.hidden_size);
    let plain = max_diff_real(&values(load("phi3-micro", &device).1.hidden_states(&input)), &theirs, &mask, 64);
    eprintln!("longrope: max |Δ final_hidden| {long:.3e} (long factors); plain RoPE is {plain:.3e} away");
    assert!(long <= TOL, "long factors: final_hidden differs by {long}");
    assert!(plain > 100.0 * TOL, "the reference must tell longrope from plain RoPE: {plain}");

    let ids: Vec<u32> = reference("phi3-micro").i64("input_ids")[..64].iter().map(|&t| t as u32).collect();
    let input = sft_model::ModelInput::new(&ids, [1, 64], None, None, None, &device).unwrap();
    let ours = values(model.hidden_states(&input));
    let (theirs, _) = expected.f32("short.final_hidden");
    let short = max_diff_real(&ours, &theirs, &[1; 64], config.hidden_size);
    assert!(short <= TOL, "short factors: final_hidden differs by {short}");
}
