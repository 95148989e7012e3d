//! `quantization_config`: transformers' `BitsAndBytesConfig` keys for QLoRA, and quantizing projections with it.

use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::lora::BaseLinear;
use crate::nf4::Nf4Linear;

fn check(ok: bool, key: &str, message: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(invalid(key, message)) }
}

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
    /// 4-bit data type. Default `nf4`, the QLoRA paper's choice (transformers' own default is `fp4`, which is not
    /// supported yet: an error).
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
    /// Checks consistency; errors name the field (`quantization_config.<key>` in a run config).
    pub fn validate(&self) -> Result<()> {
        check(!(self.load_in_4bit && self.load_in_8bit), "load_in_8bit", "cannot be combined with load_in_4bit")?;
        check(!self.load_in_8bit, "load_in_8bit", "8-bit quantization is not supported yet; use load_in_4bit")?;
        check(
            self.bnb_4bit_quant_type == QuantType::Nf4,
            "bnb_4bit_quant_type",
            "fp4 is not supported yet; use \"nf4\" (the QLoRA paper's data type)",
        )?;
        Ok(())
    }

    /// The dtype weights are dequantized to.
    pub fn compute_dtype(&self) -> DType {
        match self.bnb_4bit_compute_dtype {
            ComputeDtype::Float32 => DType::F32,
            ComputeDtype::Bfloat16 => DType::BF16,
            ComputeDtype::Float16 => DType::F16,
        }
    }

    /// A frozen projection from an HF `[out, in]` weight: NF4-quantized when `load_in_4bit` (with double
    /// quantization as configured), else dense. Meant for `LlamaForCausalLM::load_with`, so the model is
    /// quantized one projection at a time while it loads.
    pub fn projection(&self, weight: Tensor<2>) -> Result<BaseLinear> {
        self.validate()?;
        if !self.load_in_4bit {
            return Ok(BaseLinear::Dense(sft_model::dense(weight)));
        }
        Ok(BaseLinear::Nf4(Nf4Linear::quantize(weight, self.bnb_4bit_use_double_quant, self.compute_dtype())?))
    }
}
