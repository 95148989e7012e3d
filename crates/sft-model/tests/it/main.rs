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
use safetensors::SafeTensors;
use sft_model::{LlamaConfig, LlamaForCausalLM, ModelInput};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The tensors of a reference file, by name, as f64 values and shapes.
#[derive(Debug)]
pub struct Reference {
    bytes: Vec<u8>,
}

impl Reference {
    pub fn open(model: &str) -> Self {
        Self { bytes: std::fs::read(fixture(model).join("reference.safetensors")).unwrap() }
    }

    pub fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        let v = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        (v, t.shape().to_vec())
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::I64, "{name}");
        t.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
    }
}

/// The reference batch as a model input, with its attention mask and labels.
pub fn reference_batch(reference: &Reference, device: &Device) -> (ModelInput, Vec<u8>, Vec<i64>) {
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
