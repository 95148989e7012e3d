//! Rotary position embeddings, rotate-half convention (transformers' Llama).

use burn::prelude::*;
use burn::tensor::DType;

use crate::config::LlamaConfig;
use crate::scaling::RopeScaling;

/// The inverse frequencies `1 / theta^(2i/d)` for `i < d/2`, `d` = [`rotary_dim`](LlamaConfig::rotary_dim),
/// computed in f64 and rounded to f32, with the config's scaling applied (transformers'
/// `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`, `_compute_llama3_parameters`).
/// These are the global layers' frequencies; [`local_inv_freq`] gives the windowed layers' where they differ.
/// With `longrope`, the frequencies for sequences that fit `original_max_position_embeddings` (`short_factor`).
pub fn inv_freq(config: &LlamaConfig) -> Vec<f32> {
    frequencies(config.rotary_dim, config.rope_theta, &config.rope_scaling)
}

/// `longrope`'s frequencies for sequences past `original_max_position_embeddings` (`long_factor`), with that
/// length; `None` for other scalings.
pub fn long_inv_freq(config: &LlamaConfig) -> Option<(Vec<f32>, usize)> {
    match &config.rope_scaling {
        RopeScaling::LongRope { long_factor, original_max_position_embeddings, .. } => {
            let long = divided(config.rotary_dim, config.rope_theta, long_factor);
            Some((long, *original_max_position_embeddings))
        }
        _ => None,
    }
}

/// The scale of the cos / sin tables: `longrope`'s `attention_factor`, else 1.
pub fn attention_factor(config: &LlamaConfig) -> f64 {
    match &config.rope_scaling {
        RopeScaling::LongRope { attention_factor, .. } => *attention_factor,
        _ => 1.0,
    }
}

/// `1 / (factor[i] · theta^(2i/d))`, in f64, rounded to f32.
fn divided(d: usize, theta: f64, factors: &[f64]) -> Vec<f32> {
    (0..d / 2).map(|i| (1.0 / (factors[i] * theta.powf((2 * i) as f64 / d as f64))) as f32).collect()
}

/// The windowed layers' inverse frequencies when they have their own RoPE base (Gemma 3's `sliding_attention`:
/// `rope_local_base_freq`, no scaling), else `None`.
pub fn local_inv_freq(config: &LlamaConfig) -> Option<Vec<f32>> {
    config.rope_local_theta.map(|theta| frequencies(config.rotary_dim, theta, &RopeScaling::None))
}

fn frequencies(d: usize, theta: f64, scaling: &RopeScaling) -> Vec<f32> {
    let base: Vec<f64> = (0..d / 2).map(|i| 1.0 / theta.powf((2 * i) as f64 / d as f64)).collect();
    let scaled: Vec<f64> = match *scaling {
        RopeScaling::None => base,
        RopeScaling::LongRope { ref short_factor, .. } => return divided(d, theta, short_factor),
        RopeScaling::Linear { factor } => base.into_iter().map(|f| f / factor).collect(),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
            let low_wavelen = original_max_position_embeddings / low_freq_factor;
            let high_wavelen = original_max_position_embeddings / high_freq_factor;
            base.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (original_max_position_embeddings / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    };
    scaled.into_iter().map(|f| f as f32).collect()
}

/// Cos/sin tables for `position_ids` `[batch, seq]`: each `[batch, 1, seq, rotary_dim]`, the frequencies duplicated
/// as `[f_0 … f_{d/2-1}, f_0 … f_{d/2-1}]`, computed in f32 and then cast to `dtype` (the activations' dtype), as
/// transformers does.
pub fn cos_sin(inv_freq: &Tensor<1>, position_ids: Tensor<2, Int>, dtype: DType) -> (Tensor<4>, Tensor<4>) {
    scaled_cos_sin(inv_freq, position_ids, dtype, 1.0)
}

/// [`cos_sin`] with both tables multiplied by `scale` in f32 before the cast (`longrope`'s attention factor).
pub fn scaled_cos_sin(
    inv_freq: &Tensor<1>,
    position_ids: Tensor<2, Int>,
    dtype: DType,
    scale: f64,
) -> (Tensor<4>, Tensor<4>) {
    let [batch, seq] = position_ids.dims();
    let [half] = inv_freq.dims();
    let positions = position_ids.float().cast(DType::F32).reshape([batch, seq, 1]);
    let freqs = positions * inv_freq.clone().cast(DType::F32).reshape([1, 1, half]);
    let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).reshape([batch, 1, seq, 2 * half]);
    let (cos, sin) = (emb.clone().cos(), emb.sin());
    if scale == 1.0 {
        return (cos.cast(dtype), sin.cast(dtype));
    }
    (cos.mul_scalar(scale).cast(dtype), sin.mul_scalar(scale).cast(dtype))
}

/// A model's RoPE frequencies (constants, not parameters) and how it picks among them.
#[derive(Module, Debug)]
pub struct Rotary {
    /// `[rotary_dim / 2]`: the global layers' inverse frequencies (`longrope`: the short factors').
    pub inv_freq: Tensor<1>,
    /// The windowed layers' own frequencies (Gemma 3's local base); `None`: `inv_freq` everywhere.
    pub local_inv_freq: Option<Tensor<1>>,
    /// `longrope`'s frequencies for a sequence longer than `long_after` positions.
    pub long_inv_freq: Option<Tensor<1>>,
    /// `longrope`'s `original_max_position_embeddings`.
    pub long_after: usize,
    /// The tables' scale (`longrope`'s attention factor; 1 otherwise).
    pub attention_factor: f64,
}

/// One cos / sin pair, `[batch, 1, seq, rotary_dim]` each.
pub type Tables = (Tensor<4>, Tensor<4>);

impl Rotary {
    /// The frequencies of `config` on `device`.
    pub fn new(config: &LlamaConfig, device: &Device) -> Self {
        let table = |freqs: Vec<f32>| {
            let half = freqs.len();
            Tensor::from_data(TensorData::new(freqs, [half]), (device, DType::F32))
        };
        let long = long_inv_freq(config);
        Self {
            inv_freq: table(inv_freq(config)),
            local_inv_freq: local_inv_freq(config).map(table),
            long_after: long.as_ref().map_or(usize::MAX, |(_, after)| *after),
            long_inv_freq: long.map(|(freqs, _)| table(freqs)),
            attention_factor: attention_factor(config),
        }
    }

    /// The global and (when they differ) the windowed layers' tables for `position_ids`, in `dtype`. With
    /// `longrope`, the long factors apply when the largest position reaches `long_after` (transformers'
    /// `longrope_frequency_update`: sequence length = largest position + 1).
    pub fn tables(&self, position_ids: &Tensor<2, Int>, dtype: DType) -> (Tables, Option<Tables>) {
        let make = |freq: &Tensor<1>| scaled_cos_sin(freq, position_ids.clone(), dtype, self.attention_factor);
        let global = match &self.long_inv_freq {
            Some(long) if position_ids.clone().max().into_scalar::<i64>() + 1 > self.long_after as i64 => make(long),
            _ => make(&self.inv_freq),
        };
        (global, self.local_inv_freq.as_ref().map(make))
    }
}

/// `x * cos + rotate_half(x) * sin` with `rotate_half(x) = cat(-x[.., r/2..], x[.., ..r/2])` over the first `r`
/// dimensions of each head, `r` the tables' width (the rotary dimension); the remaining `head_dim − r` pass
/// unchanged (Phi-3's partial rotary). `x` is `[batch, heads, seq, head_dim]`.
pub fn apply_rotary(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let r = cos.dims()[3];
    if r < d {
        let pass = x.clone().narrow(3, r, d - r);
        return Tensor::cat(vec![apply_rotary(x.narrow(3, 0, r), cos, sin), pass], 3);
    }
    let first = x.clone().narrow(3, 0, d / 2);
    let second = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * cos.clone() + rotated * sin.clone()
}
