//! Random initialisation, as transformers initialises a fresh model (normal(0, 0.02) for linear and embedding
//! weights, zero biases, ones for norms — zeros for Gemma's `(1 + w)` norms), from a fixed random stream so a seed
//! gives the same model everywhere.

use burn::prelude::*;
use sft_rand::SplitMix64;

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::load::{Init, Weights, assemble, dense};
use crate::model::LlamaForCausalLM;

/// Standard deviation of transformers' default init (`initializer_range`).
pub const INITIALIZER_RANGE: f64 = 0.02;

impl LlamaForCausalLM {
    /// A randomly initialised model for `config` on `device`. Weights are drawn in HF order (`[out, in]`, tensors
    /// in checkpoint order) from `sft_rand::SplitMix64::new(seed)`, so the model does not depend on the backend's RNG.
    pub fn init(config: &LlamaConfig, device: &Device, seed: u64) -> Self {
        let mut random = Random { random: SplitMix64::new(seed), device };
        match assemble(config, &mut random, device, |_, w| Ok::<_, ModelError>(dense(w))) {
            Ok(model) => model,
            Err(never) => unreachable!("random init cannot fail: {never}"),
        }
    }
}

struct Random<'a> {
    random: SplitMix64,
    device: &'a Device,
}

impl Weights for Random<'_> {
    fn matrix(&mut self, _: &str, [rows, cols]: [usize; 2]) -> Result<Tensor<2>> {
        let values = self.random.normals(rows * cols, INITIALIZER_RANGE);
        Ok(Tensor::from_data(TensorData::new(values, [rows, cols]), self.device))
    }

    fn vector(&mut self, _: &str, len: usize, init: Init) -> Result<Tensor<1>> {
        Ok(match init {
            Init::Zeros => Tensor::zeros([len], self.device),
            Init::Ones => Tensor::ones([len], self.device),
        })
    }
}
