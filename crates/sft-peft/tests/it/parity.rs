//! The adapter written by Python PEFT gives PEFT's LoRA hidden states, logits, loss and gradients; merging gives
//! PEFT's merged weights.

use burn::prelude::*;
use sft_model::{Projection, causal_lm_loss};
use sft_peft::{LoraLinear, load_adapter, merge, merge_and_unload, parameter_count, unmerge};

use crate::{
    Tensors, base, batch, check_lora_gradients, max_abs_diff, max_abs_diff_real, python_adapter, transpose, values,
};

#[test]
fn the_python_adapter_gives_peft_logits_loss_and_gradients() {
    let device = Device::flex().autodiff();
    let (model, config) = load_adapter(base(&device), &python_adapter()).unwrap();
    let model = model.train();
    assert_eq!(config.r, 4);
    assert_eq!(config.scaling(), 2.0);
    // PEFT's print_trainable_parameters: 9,344 trainable (reference.json `n_trainable_params`).
    let count = parameter_count(&model, &config).unwrap();
    assert_eq!(count.trainable, 9_344);
    assert_eq!(count.total, 616_768 + 9_344);
    assert!(count.to_string().starts_with("trainable params: 9,344 || all params: 626,112 || trainable%: 1.49"));

    let reference = crate::reference();
    let (input, mask, labels) = batch(&device);
    let hidden = model.hidden_states(&input);
    let (expected_hidden, _) = reference.f32("lora.final_hidden");
    let d_hidden = max_abs_diff_real(&values(hidden.clone().inner()), &expected_hidden, &mask, 64);
    // Logits = final_hidden @ lm_headᵀ (the fixture's factorised logits).
    let head = Tensors::open(&crate::micro().join("model.safetensors")).f32("lm_head.weight").0;
    let expected_logits = matmul_t(&expected_hidden, &head, 64);
    let logits = model.logits(hidden);
    let d_logit = max_abs_diff_real(&values(logits.clone().inner()), &expected_logits, &mask, 4096);
    let loss = causal_lm_loss(logits, &labels).unwrap();
    assert_eq!(loss.count, 60);
    let mean = loss.mean();
    let value = values(mean.clone().inner())[0];
    let expected_loss = reference.f32("lora.loss").0[0];
    eprintln!("LoRA parity: Δhidden {d_hidden:.2e}, Δlogit {d_logit:.2e}, loss {value} vs {expected_loss}");
    assert!(d_logit <= 1e-4, "logits differ by {d_logit}");
    assert!((value - expected_loss).abs() <= 1e-5, "loss {value} vs {expected_loss}");

    let grads = mean.backward();
    let (worst, checked) = check_lora_gradients(&model, &grads, &reference, "llama-micro");
    eprintln!("LoRA gradients: {checked} tensors, worst relative error {worst:.2e}");
    assert_eq!(checked, 28);
}

/// `a` `[n, k]` @ `bᵀ` with `b` `[m, k]` → `[n, m]`, in f64.
fn matmul_t(a: &[f32], b: &[f32], k: usize) -> Vec<f32> {
    let (n, m) = (a.len() / k, b.len() / k);
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[i * m + j] = (0..k).map(|t| f64::from(a[i * k + t]) * f64::from(b[j * k + t])).sum::<f64>() as f32;
        }
    }
    out
}

#[test]
fn merged_weights_equal_peft_merge_and_unload() {
    let device = Device::flex();
    let (model, _) = load_adapter(base(&device), &python_adapter()).unwrap();
    let (input, mask, _) = batch(&device);
    let lora_logits = values(model.forward(&input));

    let merged_in_place = merge(model.clone());
    assert_eq!(merged_in_place.projections().iter().filter(|(_, p)| p.merged).count(), 14);
    let d_merged = max_abs_diff_real(&values(merged_in_place.forward(&input)), &lora_logits, &mask, 4096);
    let restored = unmerge(merged_in_place);
    let d_restored = max_abs_diff_real(&values(restored.forward(&input)), &lora_logits, &mask, 4096);

    let plain = merge_and_unload(model);
    let reference = crate::reference();
    for name in ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"] {
        let (expected, shape) = reference.f32(&format!("merged.{name}.weight"));
        let layer = plain.projections().into_iter().find(|(n, _)| n == name).unwrap().1.clone();
        // Burn's weight is [in, out]; PEFT's [out, in].
        let ours = transpose(&values(layer.weight.val()), shape[1], shape[0]);
        let d = max_abs_diff(&ours, &expected);
        eprintln!("merged {name}: max |Δ| {d:.2e}");
        assert!(d <= 1e-6, "{name}: {d}");
    }
    let d_plain = max_abs_diff_real(&values(plain.forward(&input)), &lora_logits, &mask, 4096);
    eprintln!("merged vs LoRA logits: in place {d_merged:.2e}, unmerged {d_restored:.2e}, unloaded {d_plain:.2e}");
    assert!(d_merged <= 1e-5 && d_restored <= 1e-5 && d_plain <= 1e-5);
}

#[test]
fn a_projection_without_adapter_is_its_base() {
    let device = Device::flex();
    let model = base(&device);
    let (_, linear) = model.projections().into_iter().next().unwrap();
    let plain = LoraLinear::plain(linear.clone());
    let x = Tensor::<3>::random([1, 3, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let y = values(Projection::forward(&plain, x.clone()));
    assert_eq!(y, values(Projection::forward(linear, x.clone())), "the base as a projection");
    // Burn's `Linear` multiplies in another order (a contiguous copy of the transposed weight): equal to rounding.
    let burn = values(linear.forward(x));
    let d = y.iter().zip(&burn).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d <= 1e-5, "{d}");
}
