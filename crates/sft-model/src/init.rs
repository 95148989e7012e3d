//! Random initialisation, as transformers initialises a fresh `LlamaForCausalLM` (normal(0, 0.02) for linear and
//! embedding weights, ones for norms), from a fixed random stream so a seed gives the same model everywhere.

use burn::module::Param;
use burn::nn::{Embedding, RmsNorm};
use burn::prelude::*;
use burn::tensor::DType;

use crate::attention::{AttentionBias, LlamaAttention};
use crate::config::LlamaConfig;
use crate::decoder::LlamaDecoderLayer;
use crate::load::dense;
use crate::mlp::LlamaMlp;
use crate::model::{LlamaForCausalLM, LlamaModel};
use crate::rope::inv_freq;
use sft_rand::SplitMix64;

/// Standard deviation of transformers' default init (`initializer_range`).
pub const INITIALIZER_RANGE: f64 = 0.02;

impl LlamaForCausalLM {
    /// A randomly initialised model for `config` on `device`. Weights are drawn in HF order (`[out, in]`, tensors
    /// in checkpoint order) from `sft_rand::SplitMix64::new(seed)`, so the model does not depend on the backend's RNG.
    pub fn init(config: &LlamaConfig, device: &Device, seed: u64) -> Self {
        let mut random = SplitMix64::new(seed);
        let (h, i, v) = (config.hidden_size, config.intermediate_size, config.vocab_size);
        let (q, kv) = (config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim);
        let mut matrix = |rows: usize, cols: usize| -> Tensor<2> {
            Tensor::from_data(TensorData::new(random.normals(rows * cols, INITIALIZER_RANGE), [rows, cols]), device)
        };
        let embed = matrix(v, h);
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        let norm = || RmsNorm { gamma: Param::from_tensor(Tensor::ones([h], device)), epsilon: config.rms_norm_eps };
        let head_norm =
            |d: usize| RmsNorm { gamma: Param::from_tensor(Tensor::ones([d], device)), epsilon: config.rms_norm_eps };
        for l in 0..config.num_hidden_layers {
            let self_attn = LlamaAttention {
                q_proj: dense(matrix(q, h)),
                k_proj: dense(matrix(kv, h)),
                v_proj: dense(matrix(kv, h)),
                o_proj: dense(matrix(h, q)),
                num_heads: config.num_attention_heads,
                num_kv_heads: config.num_key_value_heads,
                head_dim: config.head_dim,
                // transformers' init: zero biases, unit norm weights.
                bias: AttentionBias {
                    q: config.qkv_bias.then(|| Param::from_tensor(Tensor::zeros([q], device))),
                    k: config.qkv_bias.then(|| Param::from_tensor(Tensor::zeros([kv], device))),
                    v: config.qkv_bias.then(|| Param::from_tensor(Tensor::zeros([kv], device))),
                    o: config.o_bias.then(|| Param::from_tensor(Tensor::zeros([h], device))),
                },
                q_norm: config.qk_norm.then(|| head_norm(config.head_dim)),
                k_norm: config.qk_norm.then(|| head_norm(config.head_dim)),
                sliding_window: config.layer_window(l),
            };
            let mlp = LlamaMlp {
                gate_proj: dense(matrix(i, h)),
                up_proj: dense(matrix(i, h)),
                down_proj: dense(matrix(h, i)),
            };
            layers.push(LlamaDecoderLayer {
                self_attn,
                mlp,
                input_layernorm: norm(),
                post_attention_layernorm: norm(),
            });
        }
        let lm_head = (!config.tie_word_embeddings).then(|| dense(matrix(v, h)));
        let freqs = inv_freq(config);
        let half = freqs.len();
        Self {
            model: LlamaModel { embed_tokens: Embedding { weight: Param::from_tensor(embed) }, layers, norm: norm() },
            lm_head,
            inv_freq: Tensor::from_data(TensorData::new(freqs, [half]), (device, DType::F32)),
        }
    }
}
