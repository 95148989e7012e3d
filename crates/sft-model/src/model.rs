//! `LlamaForCausalLM`: embeddings, decoder layers, final norm, LM head.

use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::DType;

use crate::attention::LlamaAttention;
use crate::config::LlamaConfig;
use crate::decoder::LlamaDecoderLayer;
use crate::fused::has_cpu_kernels;
use crate::input::ModelInput;
use crate::mlp::LlamaMlp;
use crate::projection::Projection;
use crate::rope::Rotary;

/// The decoder stack (`model.*` in HF checkpoints).
#[derive(Module, Debug)]
pub struct LlamaModel<P: Projection = Linear> {
    /// Token embeddings `[vocab, hidden]`.
    pub embed_tokens: Embedding,
    /// Decoder layers.
    pub layers: Vec<LlamaDecoderLayer<P>>,
    /// Final RMSNorm.
    pub norm: RmsNorm,
    /// Gemma: the embeddings are multiplied by this (√hidden, rounded to f32) before the first layer; the tied
    /// head uses the unscaled matrix.
    pub embed_scale: Option<f64>,
    /// The final norm scales by `1 + w` in f32 (Gemma).
    pub norm_offset: bool,
}

/// A Llama causal language model, field names as in transformers (`model.layers.N.self_attn.q_proj`, `lm_head`).
#[derive(Module, Debug)]
pub struct LlamaForCausalLM<P: Projection = Linear> {
    /// The decoder stack.
    pub model: LlamaModel<P>,
    /// Output projection `[hidden, vocab]`; `None` when tied to `embed_tokens`.
    pub lm_head: Option<Linear>,
    /// RoPE frequencies (constants, not parameters).
    pub rope: Rotary,
}

impl<P: Projection> LlamaForCausalLM<P> {
    /// Hidden states after the final norm (the input of the LM head), `[batch, seq, hidden]`.
    pub fn hidden_states(&self, input: &ModelInput) -> Tensor<3> {
        self.run(input, None)
    }

    /// Like [`hidden_states`](Self::hidden_states), appending this step's keys and values to `cache`; `input.blocked`
    /// is `[batch, 1, seq, cached + seq]`, or `None` for causal attention over every cached and new key.
    pub fn hidden_states_cached(&self, input: &ModelInput, cache: &mut KvCache) -> Tensor<3> {
        self.run(input, Some(cache))
    }

    fn run(&self, input: &ModelInput, mut cache: Option<&mut KvCache>) -> Tensor<3> {
        let mut x = self.model.embed_tokens.forward(input.input_ids.clone());
        if let Some(scale) = self.model.embed_scale {
            x = x.mul_scalar(scale);
        }
        let ((cos, sin), local) = self.rope.tables(&input.position_ids, x.dtype());
        // A padding-free input has no mask: it is built from the segments only where the fused attention won't run
        // (with a cache and no mask, the attention is causal over every key). The fused attention has no window,
        // partial rotary or other score scale: a model with any of them gets the mask.
        let rotary_dim = cos.dims()[3];
        let fusable = self.model.layers.iter().all(|l| l.self_attn.fits_segment_kernel(rotary_dim));
        let fused = input.segments.is_some() && cache.is_none() && fusable && has_cpu_kernels(&x.device(), x.dtype());
        let built =
            (input.blocked.is_none() && input.segments.is_some() && cache.is_none() && !fused).then(|| input.mask());
        let blocked = input.blocked.as_ref().or(built.as_ref());
        for (l, layer) in self.model.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| {
                if c.layers.len() <= l {
                    c.layers.resize(l + 1, None);
                }
                &mut c.layers[l]
            });
            let (cos, sin) = match &local {
                Some((cos, sin)) if layer.self_attn.sliding_window.is_some() => (cos, sin),
                _ => (&cos, &sin),
            };
            x = layer.forward(x, cos, sin, blocked, input.segments.as_deref(), slot);
        }
        if self.model.norm_offset {
            crate::fused::offset_rms_norm(&self.model.norm, x)
        } else {
            crate::fused::rms_norm(&self.model.norm, x)
        }
    }

    /// Logits `[batch, seq, vocab]` of `hidden` `[batch, seq, hidden]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => hidden.matmul(self.model.embed_tokens.weight.val().transpose().unsqueeze::<3>()),
        }
    }

    /// The LM head as a `[hidden, vocab]` weight: `lm_head.weight`, or the transposed embeddings when tied (the
    /// input of [`chunked_causal_lm_loss`](crate::chunked_causal_lm_loss)).
    pub fn head_weight(&self) -> Tensor<2> {
        match &self.lm_head {
            Some(head) => head.weight.val(),
            None => self.model.embed_tokens.weight.val().transpose(),
        }
    }

    /// Logits `[batch, seq, vocab]`.
    pub fn forward(&self, input: &ModelInput) -> Tensor<3> {
        self.logits(self.hidden_states(input))
    }

    /// The float dtype of the weights (and of the activations they produce).
    pub fn dtype(&self) -> DType {
        self.model.embed_tokens.weight.val().dtype()
    }

    /// The same model with every decoder projection replaced by `f(name, projection)`, in checkpoint order;
    /// `name` is the HF module name (`model.layers.0.self_attn.q_proj`). Embeddings, norms and `lm_head` are kept.
    pub fn map_projections<Q: Projection, E>(
        self,
        mut f: impl FnMut(&str, P) -> Result<Q, E>,
    ) -> Result<LlamaForCausalLM<Q>, E> {
        let mut layers = Vec::with_capacity(self.model.layers.len());
        for (l, layer) in self.model.layers.into_iter().enumerate() {
            let mut one = |field: &str, p: P| f(&format!("model.layers.{l}.{field}"), p);
            let (attn, mlp) = (layer.self_attn, layer.mlp);
            let q_proj = attn.q_proj.map(|p| one("self_attn.q_proj", p)).transpose()?;
            let k_proj = attn.k_proj.map(|p| one("self_attn.k_proj", p)).transpose()?;
            let v_proj = attn.v_proj.map(|p| one("self_attn.v_proj", p)).transpose()?;
            let qkv_proj = attn.qkv_proj.map(|p| one("self_attn.qkv_proj", p)).transpose()?;
            let o_proj = one("self_attn.o_proj", attn.o_proj)?;
            let self_attn = LlamaAttention {
                q_proj,
                k_proj,
                v_proj,
                qkv_proj,
                o_proj,
                num_heads: attn.num_heads,
                num_kv_heads: attn.num_kv_heads,
                head_dim: attn.head_dim,
                bias: attn.bias,
                q_norm: attn.q_norm,
                k_norm: attn.k_norm,
                norm_offset: attn.norm_offset,
                query_pre_attn_scalar: attn.query_pre_attn_scalar,
                sliding_window: attn.sliding_window,
            };
            let gate_proj = mlp.gate_proj.map(|p| one("mlp.gate_proj", p)).transpose()?;
            let up_proj = mlp.up_proj.map(|p| one("mlp.up_proj", p)).transpose()?;
            let gate_up_proj = mlp.gate_up_proj.map(|p| one("mlp.gate_up_proj", p)).transpose()?;
            let mlp = LlamaMlp {
                gate_proj,
                up_proj,
                gate_up_proj,
                down_proj: one("mlp.down_proj", mlp.down_proj)?,
                act: mlp.act,
            };
            layers.push(LlamaDecoderLayer {
                self_attn,
                mlp,
                input_layernorm: layer.input_layernorm,
                post_attention_layernorm: layer.post_attention_layernorm,
                pre_feedforward_layernorm: layer.pre_feedforward_layernorm,
                post_feedforward_layernorm: layer.post_feedforward_layernorm,
                norm_offset: layer.norm_offset,
            });
        }
        Ok(LlamaForCausalLM {
            model: LlamaModel {
                embed_tokens: self.model.embed_tokens,
                layers,
                norm: self.model.norm,
                embed_scale: self.model.embed_scale,
                norm_offset: self.model.norm_offset,
            },
            lm_head: self.lm_head,
            rope: self.rope,
        })
    }

    /// The decoder projections by HF module name, in checkpoint order (`q_proj`, `k_proj`, `v_proj` or
    /// `qkv_proj`, then `o_proj`; `gate_proj`, `up_proj` or `gate_up_proj`, then `down_proj`).
    pub fn projections(&self) -> Vec<(String, &P)> {
        let mut out = Vec::new();
        for (l, layer) in self.model.layers.iter().enumerate() {
            let (a, m) = (&layer.self_attn, &layer.mlp);
            let modules = [
                ("self_attn.q_proj", a.q_proj.as_ref()),
                ("self_attn.k_proj", a.k_proj.as_ref()),
                ("self_attn.v_proj", a.v_proj.as_ref()),
                ("self_attn.qkv_proj", a.qkv_proj.as_ref()),
                ("self_attn.o_proj", Some(&a.o_proj)),
                ("mlp.gate_proj", m.gate_proj.as_ref()),
                ("mlp.up_proj", m.up_proj.as_ref()),
                ("mlp.gate_up_proj", m.gate_up_proj.as_ref()),
                ("mlp.down_proj", Some(&m.down_proj)),
            ];
            out.extend(modules.into_iter().filter_map(|(n, p)| p.map(|p| (format!("model.layers.{l}.{n}"), p))));
        }
        out
    }

    /// Number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.model.layers.len()
    }
}

/// Keys and values of earlier positions, per layer, `[batch, kv_heads, positions, head_dim]` (before the
/// grouped-query repeat).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
}

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map_or(0, |(k, _)| k.dims()[2])
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The shapes every tensor of a checkpoint must have, by HF name, for `config`, in the order the loaders read
/// them (and random init draws them).
pub fn expected_shapes(config: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let (h, v) = (config.hidden_size, config.vocab_size);
    let (q, kv) = (config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim);
    let mut shapes = vec![("model.embed_tokens.weight".to_owned(), vec![v, h])];
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}");
        for (name, out, inp) in crate::projection::layer_projections(config) {
            shapes.push((format!("{p}.{name}.weight"), vec![out, inp]));
        }
        if config.qkv_bias {
            shapes.extend([
                (format!("{p}.self_attn.q_proj.bias"), vec![q]),
                (format!("{p}.self_attn.k_proj.bias"), vec![kv]),
                (format!("{p}.self_attn.v_proj.bias"), vec![kv]),
            ]);
        }
        if config.o_bias {
            shapes.push((format!("{p}.self_attn.o_proj.bias"), vec![h]));
        }
        if config.qk_norm {
            shapes.extend([
                (format!("{p}.self_attn.q_norm.weight"), vec![config.head_dim]),
                (format!("{p}.self_attn.k_norm.weight"), vec![config.head_dim]),
            ]);
        }
        for norm in layer_norms(config) {
            shapes.push((format!("{p}.{norm}.weight"), vec![h]));
        }
    }
    if !config.tie_word_embeddings {
        shapes.push(("lm_head.weight".to_owned(), vec![v, h]));
    }
    shapes.push(("model.norm.weight".to_owned(), vec![h]));
    shapes
}

/// The norms of one decoder layer, relative to `model.layers.N`: two, or Gemma's four.
pub(crate) fn layer_norms(config: &LlamaConfig) -> &'static [&'static str] {
    if config.sandwich_norms {
        &["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]
    } else {
        &["input_layernorm", "post_attention_layernorm"]
    }
}
