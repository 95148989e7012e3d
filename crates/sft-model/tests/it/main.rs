//! sft-model against transformers (`tests/fixtures/README.md`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod errors;
mod generation;
mod loss;
mod parity;
mod precision;
mod save;
mod training;

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_model::{LlamaConfig, LlamaForCausalLM, ModelInput};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub use sft_testkit::Tensors;

/// The Python reference outputs of fixture model `model` (`<model>/reference.safetensors`).
pub fn reference(model: &str) -> Tensors {
    Tensors::open(&fixture(model).join("reference.safetensors"))
}

/// The reference batch as a model input, with its attention mask and labels.
pub fn reference_batch(reference: &Tensors, device: &Device) -> (ModelInput, Vec<u8>, Vec<i64>) {
    let ids: Vec<u32> = reference.i64("input_ids").iter().map(|&t| t as u32).collect();
    let mask: Vec<u8> = reference.i64("attention_mask").iter().map(|&m| m as u8).collect();
    let labels = reference.i64("labels");
    let input = ModelInput::new(&ids, [2, 152], Some(&mask), None, None, device).unwrap();
    (input, mask, labels)
}

pub fn load(model: &str, device: &Device) -> (LlamaConfig, LlamaForCausalLM) {
    LlamaForCausalLM::from_pretrained(&fixture(model), device, FloatDType::F32).unwrap()
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}
