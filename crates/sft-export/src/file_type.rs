//! llama.cpp's file types (`general.file_type`, the names `llama-quantize` takes): which tensor type each matrix of
//! a GGUF model gets. A plain type puts every matrix in it; Q4_0 and Q4_K_M are mixtures, chosen tensor by tensor
//! as llama.cpp's quantizer chooses them without an importance matrix (llama.cpp as llama-cpp-python 0.3.36 builds
//! it), so a model exported here has the types and bytes `llama-quantize` would give from our F32 export
//! (`scripts/gguf/check_quantize.py`).

use sft_gguf::GgmlType;
use sft_model::LlamaConfig;

use crate::arch::architecture;

/// A GGUF model's file type: the tensor type of its matrices (vectors stay F32).
#[allow(non_camel_case_types, reason = "llama.cpp's names: Q8_0, Q4_K_M")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// Every matrix F32 (`general.file_type` 0).
    F32,
    /// Every matrix F16 (1).
    F16,
    /// Every matrix BF16 (32).
    Bf16,
    /// Every matrix Q8_0 (7).
    Q8_0,
    /// Q4_0 (2), the output head Q6_K (Q8_0 where its rows are not whole 256-value super-blocks).
    Q4_0,
    /// Q4_K_M (15): Q4_K, with Q6_K for the output head and for `attn_v` (or a fused `attn_qkv`) and `ffn_down` in
    /// the first and last eighth of the layers and every third layer between; Q5_K for the other `attn_v` of a
    /// 70B-class model (80 layers with grouped-query attention). A matrix whose rows are not whole 256-value
    /// super-blocks falls back as llama.cpp's does: Q4_K to Q5_0, Q6_K to Q8_0.
    Q4_K_M,
}

impl FileType {
    /// Every file type, for error messages.
    pub const ALL: [Self; 6] = [Self::F32, Self::F16, Self::Bf16, Self::Q8_0, Self::Q4_0, Self::Q4_K_M];

    /// llama.cpp's name (`F32`, `F16`, `BF16`, `Q8_0`, `Q4_0`, `Q4_K_M`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Bf16 => "BF16",
            Self::Q8_0 => "Q8_0",
            Self::Q4_0 => "Q4_0",
            Self::Q4_K_M => "Q4_K_M",
        }
    }

    /// The file type named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// `general.file_type` (llama.cpp's `LLAMA_FTYPE_*`).
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q8_0 => 7,
            Self::Q4_K_M => 15,
            Self::Bf16 => 32,
        }
    }

    /// The type of a matrix no rule sets apart.
    fn default_type(self) -> GgmlType {
        match self {
            Self::F32 => GgmlType::F32,
            Self::F16 => GgmlType::F16,
            Self::Bf16 => GgmlType::Bf16,
            Self::Q8_0 => GgmlType::Q8_0,
            Self::Q4_0 => GgmlType::Q4_0,
            Self::Q4_K_M => GgmlType::Q4_K,
        }
    }

    /// The stored type of each of `tensors` (llama.cpp's names and PyTorch-order shapes, the whole file) of a model
    /// with `config`: vectors F32; matrices as the file type says; a matrix whose rows fit no block of its type F16
    /// (as llama.cpp's converter and quantizer do).
    pub(crate) fn tensor_types(self, config: &LlamaConfig, tensors: &[(String, Vec<usize>)]) -> Vec<GgmlType> {
        let tied = !tensors.iter().any(|(name, _)| name == "output.weight");
        tensors
            .iter()
            .map(|(name, shape)| match shape.as_slice() {
                [_, cols] => {
                    let wanted = self.matrix_type(config, name, *cols, tied);
                    fallback(wanted, *cols)
                }
                _ => GgmlType::F32,
            })
            .collect()
    }

    /// The type llama.cpp's mixture gives matrix `name` (rows of `cols`) before the fallback for its shape; `tied`:
    /// the file has no `output.weight`, so `token_embd.weight` is the head.
    fn matrix_type(self, config: &LlamaConfig, name: &str, cols: usize, tied: bool) -> GgmlType {
        let base = self.default_type();
        if !matches!(self, Self::Q4_0 | Self::Q4_K_M) {
            return base;
        }
        if name == "output.weight" || (tied && name == "token_embd.weight") {
            return if cols.is_multiple_of(base.block_size()) { GgmlType::Q6_K } else { GgmlType::Q8_0 };
        }
        if self == Self::Q4_0 {
            return base;
        }
        let layer = || name.strip_prefix("blk.").and_then(|rest| rest.split('.').next()?.parse::<usize>().ok());
        let role = name.rsplit('.').nth(1).unwrap_or_default();
        let layers = config.num_hidden_layers;
        match (role, layer()) {
            ("attn_v" | "attn_qkv", Some(layer)) if more_bits(layer, layers) => GgmlType::Q6_K,
            ("attn_v" | "attn_qkv", Some(_)) if is_70b_class(config) => GgmlType::Q5_K,
            ("ffn_down", Some(layer)) if more_bits(layer, layers) => GgmlType::Q6_K,
            _ => base,
        }
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third layer between.
fn more_bits(layer: usize, layers: usize) -> bool {
    layer < layers / 8 || layer >= 7 * layers / 8 || (layer as i64 - (layers / 8) as i64).rem_euclid(3) == 2
}

/// What llama.cpp calls a 70B model, where its Q4_K_M gives every `attn_v` at least Q5_K: 80 layers, with grouped
/// query attention for the `llama` architecture (Llama 2/3 70B; with as many KV heads as heads it is the 65B).
fn is_70b_class(config: &LlamaConfig) -> bool {
    let arch = architecture(config.family);
    config.num_hidden_layers == 80
        && (arch == "qwen2" || (arch == "llama" && config.num_attention_heads != config.num_key_value_heads))
}

/// llama.cpp's stand-in for `ty` where rows of `cols` are not whole blocks of it: the 256-value K-quants step down
/// to 32-value types (Q4_K to Q5_0, Q5_K to Q8_0 here — llama.cpp's Q5_1 is not written; the 70B-class models that
/// get Q5_K have rows of whole super-blocks —, Q6_K to Q8_0), and what still does not fit is F16.
fn fallback(ty: GgmlType, cols: usize) -> GgmlType {
    if cols.is_multiple_of(ty.block_size()) {
        return ty;
    }
    let smaller = match ty {
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K | GgmlType::Q6_K => GgmlType::Q8_0,
        other => other,
    };
    if cols.is_multiple_of(smaller.block_size()) { smaller } else { GgmlType::F16 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_bits_follows_llama_cpp() {
        // 32 layers (Llama 3 8B): layers 0-3 and 28-31, and 6, 9, …, 27 (llama.cpp's (i - 4) % 3 == 2).
        let chosen: Vec<usize> = (0..32).filter(|&l| more_bits(l, 32)).collect();
        assert_eq!(chosen, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
        // 4 layers (n / 8 = 0): layer 2 by the third-layer rule, layer 3 as the last eighth (7 · 4 / 8 = 3).
        assert_eq!((0..4).filter(|&l| more_bits(l, 4)).collect::<Vec<_>>(), [2, 3]);
    }

    /// A config of `architecture` with `layers` layers, 8 heads and `kv` KV heads.
    fn config(architecture: &str, layers: usize, kv: usize) -> LlamaConfig {
        let json = format!(
            r#"{{"architectures": ["{architecture}"], "vocab_size": 512, "hidden_size": 512,
                "intermediate_size": 1024, "num_hidden_layers": {layers}, "num_attention_heads": 8,
                "num_key_value_heads": {kv}, "rms_norm_eps": 1e-5}}"#
        );
        LlamaConfig::from_json(&json, std::path::Path::new("config.json")).expect("a valid config")
    }

    #[test]
    fn a_70b_class_model_gets_q5_k_attn_v_where_others_get_q4_k() {
        // Layer 20 of 80: not in the first or last eighth (10, 70), (20 - 10) % 3 = 1: no Q6_K. llama.cpp's 70B
        // rule: `llama` with 80 layers and grouped-query attention, or `qwen2` with 80 layers.
        let attn_v = |config: &LlamaConfig| {
            let tensors =
                [("blk.20.attn_v.weight".to_owned(), vec![64, 512]), ("output.weight".into(), vec![512, 512])];
            FileType::Q4_K_M.tensor_types(config, &tensors)[0]
        };
        assert_eq!(attn_v(&config("LlamaForCausalLM", 80, 2)), GgmlType::Q5_K);
        assert_eq!(attn_v(&config("Qwen2ForCausalLM", 80, 2)), GgmlType::Q5_K);
        assert_eq!(attn_v(&config("LlamaForCausalLM", 80, 8)), GgmlType::Q4_K, "65B: as many KV heads as heads");
        assert_eq!(attn_v(&config("LlamaForCausalLM", 40, 2)), GgmlType::Q4_K);
        assert_eq!(attn_v(&config("Qwen3ForCausalLM", 80, 2)), GgmlType::Q4_K);
    }

    #[test]
    fn shapes_that_fit_no_super_block_fall_back() {
        assert_eq!(fallback(GgmlType::Q4_K, 512), GgmlType::Q4_K);
        assert_eq!(fallback(GgmlType::Q4_K, 896), GgmlType::Q5_0, "Qwen2.5-0.5B's hidden size");
        assert_eq!(fallback(GgmlType::Q6_K, 64), GgmlType::Q8_0);
        assert_eq!(fallback(GgmlType::Q4_K, 48), GgmlType::F16);
        assert_eq!(fallback(GgmlType::F32, 7), GgmlType::F32);
    }
}
