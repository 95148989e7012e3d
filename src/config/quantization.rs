//! `quantization_config`: transformers' `BitsAndBytesConfig` keys for QLoRA.
//!
//! This section moves into `sft-peft` with the NF4 linear layer.

use serde::{Deserialize, Serialize};

use super::{Invalid, check};

/// How the frozen base model is quantized (QLoRA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizationConfig {
    /// Quantize the base model's linear layers to 4 bits.
    #[serde(default)]
    pub load_in_4bit: bool,
    /// 8-bit quantization (LLM.int8); not supported yet, an error when `true`.
    #[serde(default)]
    pub load_in_8bit: bool,
    /// 4-bit data type. Default `nf4`, the QLoRA paper's choice (transformers' own default is `fp4`).
    #[serde(default)]
    pub bnb_4bit_quant_type: QuantType,
    /// Quantize the per-block absmax too (8-bit, blocks of 256).
    #[serde(default)]
    pub bnb_4bit_use_double_quant: bool,
    /// Dtype the weights are dequantized to for the matmul.
    #[serde(default)]
    pub bnb_4bit_compute_dtype: ComputeDtype,
}

/// `bnb_4bit_quant_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantType {
    /// 4-bit NormalFloat.
    #[default]
    Nf4,
    /// 4-bit float.
    Fp4,
}

/// `bnb_4bit_compute_dtype`; `torch.`-prefixed names are accepted as the Python configs write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputeDtype {
    /// f32 (transformers' default).
    #[default]
    #[serde(alias = "fp32", alias = "torch.float32")]
    Float32,
    /// bf16.
    #[serde(alias = "bf16", alias = "torch.bfloat16")]
    Bfloat16,
    /// f16.
    #[serde(alias = "fp16", alias = "torch.float16")]
    Float16,
}

impl QuantizationConfig {
    /// Checks consistency; errors name `quantization_config.<key>`.
    pub fn validate(&self) -> Result<(), Invalid> {
        const K: &str = "quantization_config";
        check(!(self.load_in_4bit && self.load_in_8bit), K, "load_in_8bit", "cannot be combined with load_in_4bit")?;
        check(!self.load_in_8bit, K, "load_in_8bit", "8-bit quantization is not supported yet; use load_in_4bit")?;
        Ok(())
    }
}
