//! Writing a [`LlamaConfig`] back as transformers' `config.json`, with each family's own keys.

use burn::tensor::FloatDType;

use crate::config::LlamaConfig;
use crate::family::ModelFamily;
use crate::scaling::RopeScaling;

impl LlamaConfig {
    /// transformers' `config.json` for this config, with `torch_dtype` naming the weights' dtype.
    pub fn to_hf_json(&self, dtype: FloatDType) -> serde_json::Value {
        let torch_dtype = match dtype {
            FloatDType::BF16 => "bfloat16",
            FloatDType::F16 => "float16",
            FloatDType::F64 => "float64",
            FloatDType::F32 | FloatDType::Flex32 => "float32",
        };
        let rope_scaling = self.rope_scaling.to_json();
        let eos = match self.eos_token_id.as_slice() {
            [] => serde_json::Value::Null,
            [one] => serde_json::json!(one),
            many => serde_json::json!(many),
        };
        let mut json = serde_json::json!({
            "architectures": [self.family.architecture()],
            "model_type": self.family.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": self.hidden_act.name(),
            "attention_bias": self.qkv_bias,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": rope_scaling,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": crate::init::INITIALIZER_RANGE,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "pad_token_id": self.pad_token_id,
            "torch_dtype": torch_dtype,
            "use_cache": true,
        });
        if let Some(object) = json.as_object_mut() {
            match self.family {
                ModelFamily::Mistral => {
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                }
                ModelFamily::Qwen2 | ModelFamily::Qwen3 => {
                    let types: Vec<&str> = (0..self.num_hidden_layers)
                        .map(|l| if self.layer_window(l).is_some() { "sliding_attention" } else { "full_attention" })
                        .collect();
                    object.insert("use_sliding_window".into(), serde_json::json!(self.sliding_window.is_some()));
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                    object.insert("layer_types".into(), serde_json::json!(types));
                }
                ModelFamily::Phi3 => {
                    if let RopeScaling::LongRope { original_max_position_embeddings, .. } = &self.rope_scaling {
                        object.insert(
                            "original_max_position_embeddings".into(),
                            serde_json::json!(original_max_position_embeddings),
                        );
                    }
                    let factor = self.rotary_dim as f64 / self.head_dim as f64;
                    object.insert("partial_rotary_factor".into(), serde_json::json!(factor));
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                }
                ModelFamily::Gemma3 => {
                    let types: Vec<&str> = (0..self.num_hidden_layers)
                        .map(|l| if self.layer_window(l).is_some() { "sliding_attention" } else { "full_attention" })
                        .collect();
                    object.remove("hidden_act");
                    object.insert("hidden_activation".into(), serde_json::json!(self.hidden_act.name()));
                    object.insert("query_pre_attn_scalar".into(), serde_json::json!(self.query_pre_attn_scalar));
                    object.insert("sliding_window".into(), serde_json::json!(self.sliding_window));
                    object.insert("layer_types".into(), serde_json::json!(types));
                    object.insert("rope_local_base_freq".into(), serde_json::json!(self.rope_local_theta));
                    object.insert("final_logit_softcapping".into(), serde_json::Value::Null);
                    object.insert("attn_logit_softcapping".into(), serde_json::Value::Null);
                }
                ModelFamily::Llama => {}
            }
        }
        json
    }
}
