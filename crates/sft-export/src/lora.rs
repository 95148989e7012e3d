//! A PEFT LoRA adapter as llama.cpp's GGUF LoRA (`llama-cli -m base.gguf --lora adapter.gguf`): each adapted
//! module's `lora_A` / `lora_B` under the base tensor's llama.cpp name plus `.lora_a` / `.lora_b`, and the scale as
//! `adapter.lora.alpha` (llama.cpp multiplies by `alpha / r`).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::FloatDType;
use sft_gguf::{GgmlType, GgufWriter, Value};
use sft_model::{Checkpoint, LlamaConfig};
use sft_peft::{ADAPTER_WEIGHTS, read_adapter_config};

use crate::arch::{Transform, architecture, tensor_name, transform, transformed};
use crate::error::{ExportError, Result};

/// The HF module and factor (`A` or `B`) of a PEFT key `base_model.model.<module>.lora_<A|B>.weight`.
fn parse_key(key: &str) -> Option<(&str, char)> {
    let rest = key.strip_prefix("base_model.model.")?.strip_suffix(".weight")?;
    let (module, factor) = rest.rsplit_once(".lora_")?;
    match factor {
        "A" => Some((module, 'A')),
        "B" => Some((module, 'B')),
        _ => None,
    }
}

/// Writes the adapter in `adapter_dir` (`adapter_config.json`, `adapter_model.safetensors`) of a base model with
/// `base` as a GGUF LoRA at `out`, factors as `ty` (f32, f16, bf16 or q8_0; a factor whose rows are not whole Q8_0
/// blocks is written as F16). For a Llama-architecture base, `lora_B` of `q_proj` / `k_proj` gets the base weights'
/// row interleave (`W + B·A` permuted is `W' + B'·A`). rsLoRA's `lora_alpha / √r` is folded into
/// `adapter.lora.alpha` (written as `lora_alpha · √r`), since llama.cpp scales by `alpha / r`. `modules_to_save` tensors (a trained head or
/// embeddings) are an error: a llama.cpp LoRA cannot carry them — merge and export the whole model instead.
pub fn export_lora_gguf(base: &LlamaConfig, adapter_dir: &Path, ty: GgmlType, out: &Path) -> Result<()> {
    let unsupported = |what: String, message: &str| ExportError::Unsupported { what, message: message.into() };
    if !matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 | GgmlType::Q8_0) {
        return Err(unsupported(
            format!("--type {}", ty.name().to_lowercase()),
            "a LoRA's factors are small and sensitive: write them as f32, f16, bf16 or q8_0 (a 4-bit base takes any)",
        ));
    }
    let (lora, _) = read_adapter_config(adapter_dir)?;
    let weights = adapter_dir.join(ADAPTER_WEIGHTS);
    if let Some(saved) = lora.modules_to_save.as_ref().filter(|m| !m.is_empty()) {
        return Err(unsupported(
            format!("{}: modules_to_save {saved:?}", adapter_dir.join(sft_peft::ADAPTER_CONFIG).display()),
            "a llama.cpp LoRA carries only lora_A / lora_B; merge the adapter and export the whole model \
             (sft export gguf without --adapter-only)",
        ));
    }
    let mut checkpoint = Checkpoint::open(std::slice::from_ref(&weights))?;
    let alpha = if lora.use_rslora { lora.lora_alpha * (lora.r as f64).sqrt() } else { lora.lora_alpha };
    let mut writer = GgufWriter::new();
    writer.metadata("general.architecture", Value::string(architecture(base.family)))?;
    writer.metadata("general.type", Value::string("adapter"))?;
    writer.metadata("adapter.type", Value::string("lora"))?;
    writer.metadata("adapter.lora.alpha", Value::F32(alpha as f32))?;
    let mut tensors = Vec::new();
    for key in checkpoint.names() {
        let (module, factor) = parse_key(&key).ok_or_else(|| {
            unsupported(
                format!("{}: tensor `{key}`", weights.display()),
                "not a lora_A / lora_B factor; a llama.cpp LoRA carries nothing else",
            )
        })?;
        let hf = format!("{module}.weight");
        let name = tensor_name(base.family, &hf).ok_or_else(|| {
            unsupported(format!("{}: tensor `{key}`", weights.display()), "llama.cpp has no name for this module")
        })?;
        let shape = checkpoint.shape(&key).unwrap_or_default();
        let [rows, cols] = shape[..] else {
            return Err(unsupported(format!("{}: tensor `{key}`", weights.display()), "a factor is a matrix"));
        };
        // The factor must fit the base's module: lora_A [r, in], lora_B [out, r].
        let projection = module.split('.').skip(3).collect::<Vec<_>>().join(".");
        if let Some((_, out_dim, in_dim)) =
            sft_model::layer_projections(base).into_iter().find(|(p, _, _)| *p == projection)
        {
            let fits = if factor == 'A' { cols == in_dim } else { rows == out_dim };
            if !fits || rows.min(cols) != lora.r {
                return Err(unsupported(
                    format!("{}: tensor `{key}`", weights.display()),
                    &format!(
                        "shape {shape:?} does not fit the base's `{projection}` ([{out_dim}, {in_dim}]) at r {}: an \
                         adapter for another base model?",
                        lora.r
                    ),
                ));
            }
        }
        let suffix = if factor == 'A' { "lora_a" } else { "lora_b" };
        let stored = if cols.is_multiple_of(ty.block_size()) { ty } else { GgmlType::F16 };
        writer.tensor(&format!("{name}.{suffix}"), &shape, stored)?;
        // Only B's rows are the base weight's output rows.
        let change = if factor == 'B' { transform(base, &hf) } else { Transform::None };
        tensors.push((key, rows, cols, change));
    }
    let device = Device::flex();
    let mut next = 0;
    writer.write(out, |_| -> std::result::Result<Vec<f32>, ExportError> {
        let (key, rows, cols, change) = &tensors[next];
        next += 1;
        let tensor: Tensor<2> = checkpoint.tensor(key, [*rows, *cols], &device, FloatDType::F32)?;
        transformed(*change, tensor.into_data(), &[*rows, *cols], key)
    })?;
    tracing::info!(adapter = %adapter_dir.display(), out = %out.display(), tensors = tensors.len(), "wrote GGUF LoRA");
    Ok(())
}
