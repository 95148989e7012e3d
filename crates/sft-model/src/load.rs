//! Building a [`LlamaForCausalLM`] from a config and a source of tensors: a checkpoint ([`LlamaForCausalLM::load`])
//! or random init ([`LlamaForCausalLM::init`]). The family's layout (fused projections, biases, q/k norms, four
//! norms per layer, two RoPE tables) is written once, in [`assemble`].

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::FloatDType;

use crate::attention::{AttentionBias, LlamaAttention};
use crate::checkpoint::Checkpoint;
use crate::config::LlamaConfig;
use crate::decoder::LlamaDecoderLayer;
use crate::error::{ModelError, Result};
use crate::mlp::LlamaMlp;
use crate::model::{LlamaForCausalLM, LlamaModel};
use crate::projection::{Projection, layer_projections};
use crate::rope::Rotary;

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
    /// `k_norm` with `qk_norm`, the fused `qkv_proj` / `gate_up_proj` with `fused_projections`, Gemma's
    /// `pre_feedforward_layernorm` / `post_feedforward_layernorm` (a missing one is an error naming it, one of the
    /// wrong shape names it and both shapes, and one the config does not expect is an unexpected tensor of the
    /// checkpoint).
    /// `build`'s error type is the caller's (any type a [`ModelError`] converts into), so a quantizer's own errors
    /// come back unchanged.
    pub fn load_with<E: From<ModelError>>(
        config: &LlamaConfig,
        checkpoint: &mut Checkpoint,
        device: &Device,
        dtype: FloatDType,
        build: impl FnMut(&str, Tensor<2>) -> std::result::Result<P, E>,
    ) -> std::result::Result<Self, E> {
        assemble(config, &mut FromCheckpoint { checkpoint, device, dtype }, device, build)
    }
}

/// What a freshly initialised vector holds (transformers' `_init_weights`; matrices are normal(0,
/// `initializer_range`)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Init {
    /// Zeros: biases, Gemma's `(1 + w)` norm weights.
    Zeros,
    /// Ones: RMSNorm weights.
    Ones,
}

/// Where a model's tensors come from, by HF name and `[out, in]` layout.
pub(crate) trait Weights {
    /// The matrix `name` of `shape` (a random source draws it from normal(0, `initializer_range`)).
    fn matrix(&mut self, name: &str, shape: [usize; 2]) -> Result<Tensor<2>>;
    /// The vector `name` of `len` entries; `init` says what a random source puts there.
    fn vector(&mut self, name: &str, len: usize, init: Init) -> Result<Tensor<1>>;
    /// A tensor the model does not use (`lm_head.weight` next to tied embeddings).
    fn skip(&mut self, _name: &str) {}
}

struct FromCheckpoint<'a> {
    checkpoint: &'a mut Checkpoint,
    device: &'a Device,
    dtype: FloatDType,
}

impl Weights for FromCheckpoint<'_> {
    fn matrix(&mut self, name: &str, shape: [usize; 2]) -> Result<Tensor<2>> {
        self.checkpoint.tensor(name, shape, self.device, self.dtype)
    }
    fn vector(&mut self, name: &str, len: usize, _: Init) -> Result<Tensor<1>> {
        self.checkpoint.tensor(name, [len], self.device, self.dtype)
    }
    fn skip(&mut self, name: &str) {
        self.checkpoint.skip(name);
    }
}

/// The model of `config` from `weights`, projections built by `build`. Tensors are requested in
/// [`expected_shapes`](crate::expected_shapes) order: embeddings, then per layer the projections, biases, q/k
/// norms and layer norms, then `lm_head` and the final norm (a random source draws them in this order).
pub(crate) fn assemble<W: Weights, P: Projection, E: From<ModelError>>(
    config: &LlamaConfig,
    weights: &mut W,
    device: &Device,
    mut build: impl FnMut(&str, Tensor<2>) -> std::result::Result<P, E>,
) -> std::result::Result<LlamaForCausalLM<P>, E> {
    let (h, v) = (config.hidden_size, config.vocab_size);
    let (q, kv) = (config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim);
    let (eps, d) = (config.rms_norm_eps, config.head_dim);
    let norm_init = if config.norm_offset { Init::Zeros } else { Init::Ones };
    let embed = weights.matrix("model.embed_tokens.weight", [v, h])?;
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}");
        let mut proj = |weights: &mut W, name: &str, out: usize, inp: usize| -> std::result::Result<P, E> {
            let module = format!("{p}.{name}");
            let w = weights.matrix(&format!("{module}.weight"), [out, inp])?;
            build(&module, w)
        };
        // The layer's projections as `layer_projections` lists them (names, shapes, order), Llama's seven or
        // Phi-3's fused four.
        let mut built = std::collections::HashMap::new();
        for (name, out, inp) in layer_projections(config) {
            built.insert(name, proj(weights, name, out, inp)?);
        }
        let mut take = |name: &str| built.remove(name);
        let (q_proj, k_proj, v_proj) = (take("self_attn.q_proj"), take("self_attn.k_proj"), take("self_attn.v_proj"));
        let qkv_proj = take("self_attn.qkv_proj");
        let (gate_proj, up_proj, gate_up_proj) = (take("mlp.gate_proj"), take("mlp.up_proj"), take("mlp.gate_up_proj"));
        let required = |module: Option<P>, name: &str| {
            module.ok_or_else(|| E::from(ModelError::Input(format!("{p}.{name}: not among the layer's projections"))))
        };
        let o_proj = required(take("self_attn.o_proj"), "self_attn.o_proj")?;
        let down_proj = required(take("mlp.down_proj"), "mlp.down_proj")?;
        let mut bias = |proj: &str, n: usize, present: bool| -> Result<Option<Param<Tensor<1>>>> {
            if !present {
                return Ok(None);
            }
            Ok(Some(Param::from_tensor(weights.vector(&format!("{p}.self_attn.{proj}.bias"), n, Init::Zeros)?)))
        };
        let bias = AttentionBias {
            q: bias("q_proj", q, config.qkv_bias)?,
            k: bias("k_proj", kv, config.qkv_bias)?,
            v: bias("v_proj", kv, config.qkv_bias)?,
            o: bias("o_proj", h, config.o_bias)?,
        };
        let mut norm = |name: String, n: usize| -> Result<RmsNorm> {
            let gamma = weights.vector(&name, n, norm_init)?;
            Ok(RmsNorm { gamma: Param::from_tensor(gamma), epsilon: eps })
        };
        let (q_norm, k_norm) = if config.qk_norm {
            let q_norm = norm(format!("{p}.self_attn.q_norm.weight"), d)?;
            (Some(q_norm), Some(norm(format!("{p}.self_attn.k_norm.weight"), d)?))
        } else {
            (None, None)
        };
        let input_layernorm = norm(format!("{p}.input_layernorm.weight"), h)?;
        let post_attention_layernorm = norm(format!("{p}.post_attention_layernorm.weight"), h)?;
        let (pre_feedforward_layernorm, post_feedforward_layernorm) = if config.sandwich_norms {
            let pre = norm(format!("{p}.pre_feedforward_layernorm.weight"), h)?;
            (Some(pre), Some(norm(format!("{p}.post_feedforward_layernorm.weight"), h)?))
        } else {
            (None, None)
        };
        layers.push(LlamaDecoderLayer {
            self_attn: LlamaAttention {
                q_proj,
                k_proj,
                v_proj,
                qkv_proj,
                o_proj,
                num_heads: config.num_attention_heads,
                num_kv_heads: config.num_key_value_heads,
                head_dim: d,
                bias,
                q_norm,
                k_norm,
                norm_offset: config.norm_offset,
                query_pre_attn_scalar: config.query_pre_attn_scalar,
                sliding_window: config.layer_window(l),
            },
            mlp: LlamaMlp { gate_proj, up_proj, gate_up_proj, down_proj, act: config.hidden_act },
            input_layernorm,
            post_attention_layernorm,
            pre_feedforward_layernorm,
            post_feedforward_layernorm,
            norm_offset: config.norm_offset,
        });
    }
    let lm_head = if config.tie_word_embeddings {
        weights.skip("lm_head.weight");
        None
    } else {
        Some(dense(weights.matrix("lm_head.weight", [v, h])?))
    };
    let norm = RmsNorm { gamma: Param::from_tensor(weights.vector("model.norm.weight", h, norm_init)?), epsilon: eps };
    Ok(LlamaForCausalLM {
        model: LlamaModel {
            embed_tokens: Embedding { weight: Param::from_tensor(embed) },
            layers,
            norm,
            // transformers: `torch.tensor(hidden_size ** 0.5)`, an f32 buffer.
            embed_scale: config.scale_embeddings.then(|| (h as f64).sqrt() as f32 as f64),
            norm_offset: config.norm_offset,
        },
        lm_head,
        rope: Rotary::new(config, device),
    })
}
