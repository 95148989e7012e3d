//! Rotary position embeddings, rotate-half convention (transformers' Llama).

use burn::prelude::*;
use burn::tensor::DType;

use crate::config::{LlamaConfig, RopeScaling};

/// The inverse frequencies `1 / theta^(2i/d)` for `i < d/2`, computed in f64 and rounded to f32, with the config's
/// scaling applied (transformers' `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`,
/// `_compute_llama3_parameters`).
pub fn inv_freq(config: &LlamaConfig) -> Vec<f32> {
    let d = config.head_dim;
    let base: Vec<f64> = (0..d / 2).map(|i| 1.0 / config.rope_theta.powf((2 * i) as f64 / d as f64)).collect();
    let scaled: Vec<f64> = match config.rope_scaling {
        RopeScaling::None => base,
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

/// Cos/sin tables for `position_ids` `[batch, seq]`: each `[batch, 1, seq, head_dim]`, the frequencies duplicated
/// as `[f_0 … f_{d/2-1}, f_0 … f_{d/2-1}]`, computed in f32 and then cast to `dtype` (the activations' dtype), as
/// transformers does.
pub fn cos_sin(inv_freq: &Tensor<1>, position_ids: Tensor<2, Int>, dtype: DType) -> (Tensor<4>, Tensor<4>) {
    let [batch, seq] = position_ids.dims();
    let [half] = inv_freq.dims();
    let positions = position_ids.float().cast(DType::F32).reshape([batch, seq, 1]);
    let freqs = positions * inv_freq.clone().cast(DType::F32).reshape([1, 1, half]);
    let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).reshape([batch, 1, seq, 2 * half]);
    (emb.clone().cos().cast(dtype), emb.sin().cast(dtype))
}

/// `x * cos + rotate_half(x) * sin` with `rotate_half(x) = cat(-x[.., d/2..], x[.., ..d/2])`; `x` is
/// `[batch, heads, seq, head_dim]`.
pub fn apply_rotary(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let first = x.clone().narrow(3, 0, d / 2);
    let second = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * cos.clone() + rotated * sin.clone()
}
