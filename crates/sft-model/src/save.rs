//! Saving a [`LlamaForCausalLM`] as a Hugging Face checkpoint: `config.json` + `model.safetensors`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::model::{LlamaForCausalLM, expected_shapes};
use crate::safetensors_out::{TensorEntry, write_atomic, write_safetensors};

impl LlamaForCausalLM {
    /// The model's tensors under their HF names and in HF orientation (linear weights `[out, in]`), in the order
    /// of [`expected_shapes`], each converted to `dtype` when its bytes are produced.
    pub fn hf_tensors(&self, config: &LlamaConfig, dtype: FloatDType) -> Vec<TensorEntry<'_>> {
        let dtype = DType::from(dtype);
        let linear = |l: &Linear| l.weight.val().transpose();
        let norm = |n: &RmsNorm| n.gamma.val();
        expected_shapes(config)
            .into_iter()
            .map(|(name, shape)| {
                let tensor = self.hf_tensor(&name, linear, norm);
                TensorEntry {
                    name,
                    dtype,
                    shape,
                    data: Box::new(move || {
                        let t =
                            tensor.ok_or_else(|| ModelError::Input("the model does not match its config".into()))?;
                        Ok(t.cast(dtype).into_data())
                    }),
                }
            })
            .collect()
    }

    /// The tensor named `name` (HF naming and orientation), flattened; the file header carries its shape.
    fn hf_tensor(
        &self,
        name: &str,
        linear: impl Fn(&Linear) -> Tensor<2>,
        norm: impl Fn(&RmsNorm) -> Tensor<1>,
    ) -> Option<Tensor<1>> {
        let flat = |t: Tensor<2>| t.flatten::<1>(0, 1);
        if name == "model.embed_tokens.weight" {
            return Some(flat(self.model.embed_tokens.weight.val()));
        }
        if name == "model.norm.weight" {
            return Some(norm(&self.model.norm));
        }
        if name == "lm_head.weight" {
            return self.lm_head.as_ref().map(|h| flat(linear(h)));
        }
        let rest = name.strip_prefix("model.layers.")?;
        let (index, field) = rest.split_once('.')?;
        let layer = self.model.layers.get(index.parse::<usize>().ok()?)?;
        let (attn, mlp) = (&layer.self_attn, &layer.mlp);
        Some(match field {
            "self_attn.q_proj.weight" => flat(linear(attn.q_proj.as_ref()?)),
            "self_attn.k_proj.weight" => flat(linear(attn.k_proj.as_ref()?)),
            "self_attn.v_proj.weight" => flat(linear(attn.v_proj.as_ref()?)),
            "self_attn.qkv_proj.weight" => flat(linear(attn.qkv_proj.as_ref()?)),
            "self_attn.o_proj.weight" => flat(linear(&attn.o_proj)),
            "mlp.gate_proj.weight" => flat(linear(mlp.gate_proj.as_ref()?)),
            "mlp.up_proj.weight" => flat(linear(mlp.up_proj.as_ref()?)),
            "mlp.gate_up_proj.weight" => flat(linear(mlp.gate_up_proj.as_ref()?)),
            "mlp.down_proj.weight" => flat(linear(&mlp.down_proj)),
            "self_attn.q_proj.bias" => attn.bias.q.as_ref()?.val(),
            "self_attn.k_proj.bias" => attn.bias.k.as_ref()?.val(),
            "self_attn.v_proj.bias" => attn.bias.v.as_ref()?.val(),
            "self_attn.o_proj.bias" => attn.bias.o.as_ref()?.val(),
            "self_attn.q_norm.weight" => norm(attn.q_norm.as_ref()?),
            "self_attn.k_norm.weight" => norm(attn.k_norm.as_ref()?),
            "input_layernorm.weight" => norm(&layer.input_layernorm),
            "post_attention_layernorm.weight" => norm(&layer.post_attention_layernorm),
            "pre_feedforward_layernorm.weight" => norm(layer.pre_feedforward_layernorm.as_ref()?),
            "post_feedforward_layernorm.weight" => norm(layer.post_feedforward_layernorm.as_ref()?),
            _ => return None,
        })
    }

    /// Writes `dir/config.json` and `dir/model.safetensors` (weights in `dtype`, `{"format": "pt"}` metadata as
    /// transformers writes), creating `dir` if needed. Each file is written to a temporary name and renamed, and
    /// tensors are converted one at a time, so saving never holds a second copy of the model.
    ///
    /// `tie_word_embeddings` is written as the model is: a model whose head was untied (a trained `lm_head` copy
    /// after LoRA with `modules_to_save`) is saved with its own `lm_head.weight`.
    pub fn save_pretrained(&self, config: &LlamaConfig, dir: &Path, dtype: FloatDType) -> Result<()> {
        let config = &LlamaConfig { tie_word_embeddings: self.lm_head.is_none(), ..config.clone() };
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.into(), source })?;
        let metadata = BTreeMap::from([("format".to_owned(), "pt".to_owned())]);
        write_safetensors(&dir.join(crate::WEIGHTS_FILE), self.hf_tensors(config, dtype), &metadata)?;
        let json = serde_json::to_vec_pretty(&config.to_hf_json(dtype))
            .map_err(|source| ModelError::Json { path: dir.join(crate::CONFIG_FILE), source })?;
        write_atomic(&dir.join(crate::CONFIG_FILE), &json)
    }
}
