//! Building a [`LlamaForCausalLM`] from a config and a checkpoint.

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::attention::{AttentionBias, LlamaAttention};
use crate::checkpoint::Checkpoint;
use crate::config::LlamaConfig;
use crate::decoder::LlamaDecoderLayer;
use crate::error::{ModelError, Result};
use crate::mlp::LlamaMlp;
use crate::model::{LlamaForCausalLM, LlamaModel};
use crate::projection::Projection;
use crate::rope::inv_freq;

impl LlamaForCausalLM {
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
    /// hook for quantizing while loading). Embeddings, norms, biases and `lm_head` stay dense. The family's extra
    /// tensors are read as its config says: `<proj>.bias` with `qkv_bias` / `o_bias`, `self_attn.q_norm` /
    /// `k_norm` with `qk_norm` (a missing one is an error naming it, and one the config does not expect is an
    /// unexpected tensor of the checkpoint).
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
        let mut linear = |checkpoint: &mut Checkpoint, name: &str, out: usize, inp: usize| {
            let w = checkpoint.tensor(&format!("{name}.weight"), [out, inp], device, dtype)?;
            build(name, w)
        };
        let vector =
            |checkpoint: &mut Checkpoint, name: String, n: usize, present: bool| -> Result<Option<Tensor<1>>> {
                if present { checkpoint.tensor(&name, [n], device, dtype).map(Some) } else { Ok(None) }
            };
        let (eps, d) = (config.rms_norm_eps, config.head_dim);
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let a = format!("{p}.self_attn");
            let bias = |checkpoint: &mut Checkpoint, proj: &str, n: usize, present: bool| {
                vector(checkpoint, format!("{a}.{proj}.bias"), n, present).map(|b| b.map(Param::from_tensor))
            };
            let head_norm = |checkpoint: &mut Checkpoint, which: &str| {
                vector(checkpoint, format!("{a}.{which}.weight"), d, config.qk_norm)
                    .map(|g| g.map(|g| RmsNorm { gamma: Param::from_tensor(g), epsilon: eps }))
            };
            let self_attn = LlamaAttention {
                q_proj: linear(checkpoint, &format!("{a}.q_proj"), q, h)?,
                k_proj: linear(checkpoint, &format!("{a}.k_proj"), kv, h)?,
                v_proj: linear(checkpoint, &format!("{a}.v_proj"), kv, h)?,
                o_proj: linear(checkpoint, &format!("{a}.o_proj"), h, q)?,
                num_heads: config.num_attention_heads,
                num_kv_heads: config.num_key_value_heads,
                head_dim: config.head_dim,
                bias: AttentionBias {
                    q: bias(checkpoint, "q_proj", q, config.qkv_bias)?,
                    k: bias(checkpoint, "k_proj", kv, config.qkv_bias)?,
                    v: bias(checkpoint, "v_proj", kv, config.qkv_bias)?,
                    o: bias(checkpoint, "o_proj", h, config.o_bias)?,
                },
                q_norm: head_norm(checkpoint, "q_norm")?,
                k_norm: head_norm(checkpoint, "k_norm")?,
                sliding_window: config.layer_window(l),
            };
            let mlp = LlamaMlp {
                gate_proj: linear(checkpoint, &format!("{p}.mlp.gate_proj"), i, h)?,
                up_proj: linear(checkpoint, &format!("{p}.mlp.up_proj"), i, h)?,
                down_proj: linear(checkpoint, &format!("{p}.mlp.down_proj"), h, i)?,
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
