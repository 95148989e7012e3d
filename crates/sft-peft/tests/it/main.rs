//! sft-peft against PEFT (`../sft-model/tests/fixtures/README.md`: llama-micro and its `peft_adapter/`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod families;
mod files;
mod init;
mod nf4;
mod oracle;
mod parity;
mod qlora;
mod stream_merge;
mod target;
mod tied;
mod training;
#[cfg(feature = "wgpu")]
mod wgpu;

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaForCausalLM, ModelInput};

pub use sft_testkit::micro;

pub fn python_adapter() -> PathBuf {
    micro().join("peft_adapter")
}

pub fn base(device: &Device) -> LlamaForCausalLM {
    LlamaForCausalLM::from_pretrained(&micro(), device, FloatDType::F32).unwrap().1
}

pub use sft_testkit::Tensors;

/// The llama-micro fixture's reference outputs.
pub fn reference() -> Tensors {
    Tensors::open(&micro().join("reference.safetensors"))
}

/// The reference batch: input, attention mask, labels.
pub fn batch(device: &Device) -> (ModelInput, Vec<u8>, Vec<i64>) {
    let r = reference();
    let ids: Vec<u32> = r.i64("input_ids").iter().map(|&t| t as u32).collect();
    let mask: Vec<u8> = r.i64("attention_mask").iter().map(|&m| m as u8).collect();
    let input = ModelInput::new(&ids, [2, 152], Some(&mask), None, None, device).unwrap();
    (input, mask, r.i64("labels"))
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// The row-major transpose of a `[rows, cols]` matrix.
pub fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = v[i * cols + j];
        }
    }
    out
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Max |a − b| over the real (mask = 1) rows of `[2, 152, width]` tensors.
pub fn max_abs_diff_real(a: &[f32], b: &[f32], mask: &[u8], width: usize) -> f32 {
    mask.iter()
        .enumerate()
        .filter(|(_, m)| **m == 1)
        .map(|(i, _)| max_abs_diff(&a[i * width..(i + 1) * width], &b[i * width..(i + 1) * width]))
        .fold(0.0, f32::max)
}

/// Compares the gradient of every `lora_A` / `lora_B` of `model` in `grads` with PEFT's (`grad.<PEFT key>` of
/// `reference`, `[out, in]` layout) to 1e-4 relative per tensor; returns the worst relative error and how many
/// tensors were checked.
pub fn check_lora_gradients(
    model: &LlamaForCausalLM<sft_peft::LoraLinear>,
    grads: &burn::tensor::Gradients,
    reference: &Tensors,
    label: &str,
) -> (f32, usize) {
    let (mut worst, mut checked) = (0.0f32, 0);
    for (name, projection) in model.projections() {
        let adapter = projection.adapter.as_ref().unwrap();
        for (part, param, (rows, cols)) in [
            ("lora_A", &adapter.lora_a, (adapter.rank(), adapter.lora_a.dims()[0])),
            ("lora_B", &adapter.lora_b, (adapter.lora_b.dims()[1], adapter.rank())),
        ] {
            // Ours is the transpose of PEFT's layout.
            let ours = transpose(&values(param.grad(grads).unwrap()), cols, rows);
            let key = format!("grad.base_model.model.{name}.{part}.weight");
            let (theirs, shape) = reference.f32(&key);
            assert_eq!(shape, vec![rows, cols], "{label} {key}");
            let scale = theirs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let rel = max_abs_diff(&ours, &theirs) / scale;
            worst = worst.max(rel);
            assert!(rel <= 1e-4, "{label} {key}: relative error {rel}");
            checked += 1;
        }
    }
    (worst, checked)
}
