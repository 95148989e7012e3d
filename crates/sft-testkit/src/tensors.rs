//! Reading safetensors files in tests: the Python reference outputs (`reference.safetensors` of the fixtures) and
//! the files the project writes, tensor by tensor as plain vectors. Panics on a malformed file or a missing tensor,
//! which in a test is the failure to report.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

/// The `llama-micro` fixture directory (the tiny Llama checkpoint with transformers / PEFT reference outputs, kept
/// with sft-model's tests and read by the other crates' tests).
pub fn micro() -> PathBuf {
    model_fixture("llama-micro")
}

/// A model fixture directory kept with sft-model's tests (`llama-micro`, `qwen2-micro`, `qwen3-micro`, …; see
/// `crates/sft-model/tests/fixtures/README.md`).
pub fn model_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sft-model/tests/fixtures").join(name)
}

/// A safetensors file held in memory.
#[derive(Debug)]
pub struct Tensors {
    bytes: Vec<u8>,
}

impl Tensors {
    /// Reads the file at `path`.
    pub fn open(path: &Path) -> Self {
        Self { bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) }
    }

    fn file(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.file().names().into_iter().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// An F32 tensor's values and shape.
    pub fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let file = self.file();
        let t = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        (t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(), t.shape().to_vec())
    }

    /// An I64 tensor's values.
    pub fn i64(&self, name: &str) -> Vec<i64> {
        let file = self.file();
        let t = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::I64, "{name}");
        t.data().chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
    }

    /// A tensor's dtype, shape and raw bytes.
    pub fn raw(&self, name: &str) -> (Dtype, Vec<usize>, Vec<u8>) {
        let file = self.file();
        let t = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        (t.dtype(), t.shape().to_vec(), t.data().to_vec())
    }
}
