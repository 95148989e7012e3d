//! Building a [`LlamaForCausalLM`] from a config and a checkpoint.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::attention::LlamaAttention;
use crate::checkpoint::Checkpoint;
use crate::config::LlamaConfig;
use crate::decoder::LlamaDecoderLayer;
use crate::error::{ModelError, Result};
use crate::mlp::LlamaMlp;
use crate::model::{LlamaForCausalLM, LlamaModel};
use crate::projection::Projection;
use crate::rope::inv_freq;

impl LlamaForCausalLM {
    /// Loads `config.json` and the safetensors checkpoint of a Hugging Face model directory onto `device`.
    pub fn from_pretrained(dir: &Path, device: &Device, dtype: FloatDType) -> Result<(LlamaConfig, Self)> {
        let config = LlamaConfig::from_file(&dir.join("config.json"))?;
        let mut checkpoint = Checkpoint::open_dir(dir)?;
        let model = Self::load(&config, &mut checkpoint, device, dtype)?;
        checkpoint.finish()?;
        Ok((config, model))
    }

    /// Builds the model tensor by tensor from `checkpoint` (HF names and `[out, in]` linear weights, transposed to
    /// Burn's `[in, out]`). Every tensor's shape is checked against `config`; weights are converted from the file's
    /// dtype (F32, F16, BF16) to `dtype` one tensor at a time, so at most one tensor exists twice.
    pub fn load(config: &LlamaConfig, checkpoint: &mut Checkpoint, device: &Device, dtype: FloatDType) -> Result<Self> {
        Self::load_with(config, checkpoint, device, dtype, |_, weight| Ok::<_, ModelError>(dense(weight)))
    }
}

/// A bias-free `Linear` from an HF `[out, in]` weight.
pub fn dense(weight: Tensor<2>) -> Linear {
    Linear { weight: Param::from_tensor(weight.transpose()), bias: None }
}

impl<P: Projection> LlamaForCausalLM<P> {
    /// Like [`LlamaForCausalLM::load`], building each decoder projection with `build(name, weight)` from its HF
    /// module name (`model.layers.0.self_attn.q_proj`) and its `[out, in]` weight in `dtype`, one at a time (the
    /// hook for quantizing while loading). Embeddings, norms and `lm_head` stay dense.
    /// `build`'s error type is the caller's (any type a [`ModelError`] converts into), so a quantizer's own errors
    /// come back unchanged.
    pub fn load_with<E: From<ModelError>>(
        config: &LlamaConfig,
        checkpoint: &mut Checkpoint,
        device: &Device,
        dtype: FloatDType,
        mut build: impl FnMut(&str, Tensor<2>) -> std::result::Result<P, E>,
    ) -> std::result::Result<Self, E> {
        let (h, i, v) = (config.hidden_size, config.intermediate_size, config.vocab_size);
        let (q, kv) = (config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim);
        let mut linear = |name: &str, out: usize, inp: usize| -> std::result::Result<P, E> {
            let w = checkpoint.tensor(&format!("{name}.weight"), [out, inp], device, dtype)?;
            build(name, w)
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let self_attn = LlamaAttention {
                q_proj: linear(&format!("{p}.self_attn.q_proj"), q, h)?,
                k_proj: linear(&format!("{p}.self_attn.k_proj"), kv, h)?,
                v_proj: linear(&format!("{p}.self_attn.v_proj"), kv, h)?,
                o_proj: linear(&format!("{p}.self_attn.o_proj"), h, q)?,
                num_heads: config.num_attention_heads,
                num_kv_heads: config.num_key_value_heads,
                head_dim: config.head_dim,
            };
            let mlp = LlamaMlp {
                gate_proj: linear(&format!("{p}.mlp.gate_proj"), i, h)?,
                up_proj: linear(&format!("{p}.mlp.up_proj"), i, h)?,
                down_proj: linear(&format!("{p}.mlp.down_proj"), h, i)?,
            };
            layers.push((p, self_attn, mlp));
        }
        let lm_head = if config.tie_word_embeddings {
            checkpoint.skip("lm_head.weight");
            None
        } else {
            Some(dense(checkpoint.tensor("lm_head.weight", [v, h], device, dtype)?))
        };
        let mut norm = |name: &str| -> Result<RmsNorm> {
            let gamma = checkpoint.tensor(&format!("{name}.weight"), [h], device, dtype)?;
            Ok(RmsNorm { gamma: Param::from_tensor(gamma), epsilon: config.rms_norm_eps })
        };
        let mut decoder = Vec::with_capacity(layers.len());
        for (p, self_attn, mlp) in layers {
            decoder.push(LlamaDecoderLayer {
                self_attn,
                mlp,
                input_layernorm: norm(&format!("{p}.input_layernorm"))?,
                post_attention_layernorm: norm(&format!("{p}.post_attention_layernorm"))?,
            });
        }
        let final_norm = norm("model.norm")?;
        let embed = checkpoint.tensor("model.embed_tokens.weight", [v, h], device, dtype)?;
        let freqs = inv_freq(config);
        let half = freqs.len();
        Ok(Self {
            model: LlamaModel {
                embed_tokens: Embedding { weight: Param::from_tensor(embed) },
                layers: decoder,
                norm: final_norm,
            },
            lm_head,
            inv_freq: Tensor::from_data(TensorData::new(freqs, [half]), (device, DType::F32)),
        })
    }
}
