//! llama.cpp's view of each family: its architecture name, its tensor names, and the two layout changes its
//! converter (`convert_hf_to_gguf.py`) makes — Llama's q/k rows reordered for its interleaved RoPE, Gemma's norm
//! weights stored as `1 + w`.

use burn::tensor::TensorData;
use sft_model::{LlamaConfig, ModelFamily};

use crate::error::{ExportError, Result};

/// llama.cpp's `general.architecture` for `family`: Llama and Mistral run as `llama`; the others under their own
/// name.
pub fn architecture(family: ModelFamily) -> &'static str {
    match family {
        ModelFamily::Qwen2 => "qwen2",
        ModelFamily::Qwen3 => "qwen3",
        ModelFamily::Phi3 => "phi3",
        ModelFamily::Gemma3 => "gemma3",
        _ => "llama",
    }
}

/// llama.cpp's name of the HF tensor `hf` (`model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`) in
/// a model of `family`; `None` for a tensor llama.cpp has no name for.
pub fn tensor_name(family: ModelFamily, hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, field) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = field.rsplit_once('.')?;
    let name = match module {
        "input_layernorm" => "attn_norm",
        // Gemma's norm of the attention output; elsewhere the norm before the MLP.
        "post_attention_layernorm" if family == ModelFamily::Gemma3 => "post_attention_norm",
        "post_attention_layernorm" | "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.qkv_proj" => "attn_qkv",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        // Phi-3's fused [gate | up] is llama.cpp's `ffn_up` of twice the width, split the same way.
        "mlp.up_proj" | "mlp.gate_up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{name}.{suffix}"))
}

/// How a tensor's values change on the way to llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Unchanged.
    None,
    /// Rows of each of `heads` heads reordered from rotate-half to interleaved pairs (Llama's `q_proj` / `k_proj`
    /// weights and biases): within a head of width `d`, row `2j + s` takes row `s·d/2 + j`.
    InterleaveHeads {
        /// Heads in the tensor (query heads for `q_proj`, key/value heads for `k_proj`).
        heads: usize,
    },
    /// Every value plus one (Gemma's `(1 + w)` norms; llama.cpp multiplies by the stored weight).
    AddOne,
}

/// The transform of HF tensor `hf` of a model with `config`.
pub fn transform(config: &LlamaConfig, hf: &str) -> Transform {
    let llama = architecture(config.family) == "llama";
    if llama && hf.contains(".self_attn.q_proj.") {
        Transform::InterleaveHeads { heads: config.num_attention_heads }
    } else if llama && hf.contains(".self_attn.k_proj.") {
        Transform::InterleaveHeads { heads: config.num_key_value_heads }
    } else if config.norm_offset && hf.ends_with("norm.weight") {
        Transform::AddOne
    } else {
        Transform::None
    }
}

/// `values` (row-major, `rows × cols`) after `transform`.
pub fn apply(transform: Transform, values: Vec<f32>, rows: usize, cols: usize) -> Vec<f32> {
    match transform {
        Transform::None => values,
        Transform::AddOne => values.into_iter().map(|v| v + 1.0).collect(),
        Transform::InterleaveHeads { heads } => {
            let d = rows / heads;
            let mut out = vec![0.0; values.len()];
            for h in 0..heads {
                for j in 0..d / 2 {
                    for s in 0..2 {
                        let (to, from) = (h * d + 2 * j + s, h * d + s * (d / 2) + j);
                        out[to * cols..(to + 1) * cols].copy_from_slice(&values[from * cols..(from + 1) * cols]);
                    }
                }
            }
            out
        }
    }
}

/// The f32 values of tensor `name` (`data`, HF layout, `shape`) after `transform`. A vector counts as one column,
/// so a Llama `q_proj.bias` is reordered like its weight's rows.
pub(crate) fn transformed(transform: Transform, data: TensorData, shape: &[usize], name: &str) -> Result<Vec<f32>> {
    let values = data
        .try_into_vec::<f32>()
        .map_err(|e| ExportError::Unsupported { what: name.to_owned(), message: format!("not f32 data: {e:?}") })?;
    let (rows, cols) = match *shape {
        [rows, cols] => (rows, cols),
        _ => (values.len(), 1),
    };
    Ok(apply(transform, values, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bias_is_reordered_like_its_weights_rows() {
        // 2 heads of 4: row 2j + s takes row 2s + j within each head.
        let bias: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let out = transformed(Transform::InterleaveHeads { heads: 2 }, TensorData::new(bias, [8]), &[8], "b").unwrap();
        assert_eq!(out, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
    }
}
