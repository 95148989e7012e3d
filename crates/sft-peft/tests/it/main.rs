//! sft-peft against PEFT (`../sft-model/tests/fixtures/README.md`: llama-micro and its `peft_adapter/`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod files;
mod init;
mod nf4;
mod oracle;
mod parity;
mod qlora;
mod target;
mod training;
#[cfg(feature = "wgpu")]
mod wgpu;

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::FloatDType;
use safetensors::SafeTensors;
use sft_model::{LlamaForCausalLM, ModelInput};

/// The llama-micro fixture directory (shared with sft-model's tests).
pub fn micro() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sft-model/tests/fixtures/llama-micro")
}

pub fn python_adapter() -> PathBuf {
    micro().join("peft_adapter")
}

pub fn base(device: &Device) -> LlamaForCausalLM {
    LlamaForCausalLM::from_pretrained(&micro(), device, FloatDType::F32).unwrap().1
}

/// f32 tensors of a safetensors file, by name, with shapes.
#[derive(Debug)]
pub struct Tensors {
    bytes: Vec<u8>,
}

impl Tensors {
    pub fn open(path: &std::path::Path) -> Self {
        Self { bytes: std::fs::read(path).unwrap() }
    }

    pub fn reference() -> Self {
        Self::open(&micro().join("reference.safetensors"))
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            SafeTensors::deserialize(&self.bytes).unwrap().names().into_iter().map(str::to_owned).collect();
        names.sort();
        names
    }

    pub fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        (t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(), t.shape().to_vec())
    }

    pub fn raw(&self, name: &str) -> (safetensors::Dtype, Vec<usize>, Vec<u8>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        (t.dtype(), t.shape().to_vec(), t.data().to_vec())
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        st.tensor(name).unwrap().data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
    }
}

/// The reference batch: input, attention mask, labels.
pub fn batch(device: &Device) -> (ModelInput, Vec<u8>, Vec<i64>) {
    let r = Tensors::reference();
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
