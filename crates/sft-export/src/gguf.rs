//! Writing a model as llama.cpp's GGUF: metadata, tokenizer, and the tensors under llama.cpp's names, converted
//! one at a time.

use std::path::Path;

use burn::tensor::{FloatDType, TensorData};
use sft_gguf::{GgmlType, GgufWriter, Value};
use sft_model::{LlamaConfig, LlamaForCausalLM, ModelFamily, RopeScaling, TensorEntry, rope};
use sft_peft::MergedCheckpoint;

use crate::arch::{architecture, tensor_name, transform, transformed};
use crate::error::{ExportError, Result};
use crate::file_type::FileType;
use crate::vocab::tokenizer_metadata;

/// What [`export_gguf`] writes besides the weights.
#[derive(Debug, Clone)]
pub struct GgufExport<'a> {
    /// The type of the matrices ([`FileType`]: F32, F16, BF16, Q8_0, or the Q4_0 and Q4_K_M mixtures as
    /// llama.cpp's quantizer makes them); vectors (norms, biases) stay F32, and a matrix whose rows fit no block of
    /// its type is written as F16, as llama.cpp's converter does.
    pub ty: FileType,
    /// `general.name`.
    pub name: String,
    /// The base model's `tokenizer.json`.
    pub tokenizer_json: &'a Path,
    /// Its `tokenizer_config.json`, if it has one (special tokens, `add_bos_token`).
    pub tokenizer_config: Option<&'a Path>,
    /// The chat template's Jinja text (`tokenizer.chat_template`), as the tokenizer loaded it (from
    /// `tokenizer_config.json` or `chat_template.jinja`).
    pub chat_template: Option<&'a str>,
}

/// Checks what llama.cpp cannot run as the config says, before anything is written.
fn check(config: &LlamaConfig) -> Result<()> {
    let unsupported = |what: &str, message: String| Err(ExportError::Unsupported { what: what.into(), message });
    if let RopeScaling::LongRope { .. } = config.rope_scaling
        && config.family != ModelFamily::Phi3
    {
        return unsupported(
            "rope_scaling",
            format!("longrope on {:?}: llama.cpp reads longrope factors for Phi-3 only", config.family),
        );
    }
    if config.family == ModelFamily::Gemma3 && config.query_pre_attn_scalar != Some(config.head_dim as f64) {
        return unsupported(
            "query_pre_attn_scalar",
            format!(
                "{:?} differs from head_dim {}: llama.cpp scales Gemma 3's scores by head_dim^-1/2 (save for the 27B)",
                config.query_pre_attn_scalar, config.head_dim
            ),
        );
    }
    if config.family == ModelFamily::Gemma3 {
        // llama.cpp's Gemma 3: every 6th layer global, the others windowed with RoPE base 10000.
        let pattern: Vec<bool> = (0..config.num_hidden_layers).map(|l| (l + 1) % 6 != 0).collect();
        if config.window_layers != pattern {
            return unsupported(
                "layer_types",
                format!(
                    "llama.cpp runs Gemma 3 with every 6th layer global; this model's windowed layers are {:?}",
                    config.window_layers
                ),
            );
        }
        if config.rope_local_theta != Some(10_000.0) {
            return unsupported(
                "rope_local_base_freq",
                format!("{:?}: llama.cpp runs Gemma 3's windowed layers with RoPE base 10000", config.rope_local_theta),
            );
        }
    }
    Ok(())
}

/// llama.cpp gives a model whose `general.name` contains `phi3` or `phi-3` Phi-3's SentencePiece token attributes,
/// looking up `</s>`: with a vocabulary without it (byte-level BPE, as Phi-4's) the file does not load. Such a name
/// is an error before anything is written.
fn check_name(name: &str, tokenizer: &[(String, Value)]) -> Result<()> {
    let lower = name.to_lowercase();
    if !(lower.contains("phi3") || lower.contains("phi-3")) {
        return Ok(());
    }
    let has_eos = tokenizer.iter().any(|(key, value)| {
        key == "tokenizer.ggml.tokens"
            && matches!(value, Value::Array { items, .. } if items.iter().any(|t| t.as_str() == Some("</s>")))
    });
    if has_eos {
        return Ok(());
    }
    Err(ExportError::Unsupported {
        what: "general.name".into(),
        message: format!(
            "{name:?}: llama.cpp treats a model named like Phi-3 as having Phi-3's `</s>` token, which this \
             vocabulary lacks, and would fail to load the file; choose another name"
        ),
    })
}

/// The metadata of a GGUF export, checked ([`check_gguf_export`]): the `general.*` keys, the architecture's and the
/// tokenizer's, in the order they are written, and the matrices' type.
#[derive(Debug, Clone)]
pub struct GgufMetadata {
    ty: FileType,
    entries: Vec<(String, Value)>,
}

/// Everything [`export_gguf`] checks and writes besides the tensors, without a model: what llama.cpp cannot run as
/// `config` says (an error), the tokenizer files read into metadata, the name. For callers that check before
/// loading (or downloading) the weights, then write with [`export_merged_gguf`].
pub fn check_gguf_export(config: &LlamaConfig, export: &GgufExport<'_>) -> Result<GgufMetadata> {
    check(config)?;
    if let Some(window) = config.sliding_window
        && architecture(config.family) == "llama"
        && config.window_layers.iter().any(|&w| w)
    {
        tracing::warn!(
            window,
            "llama.cpp runs the `llama` architecture (Mistral) with full attention: its outputs equal this model's \
             up to {window} positions and differ past them"
        );
    }
    let tokenizer = tokenizer_metadata(config, export.tokenizer_json, export.tokenizer_config, export.chat_template)?;
    check_name(&export.name, &tokenizer)?;
    let mut entries = vec![
        ("general.architecture".to_owned(), Value::string(architecture(config.family))),
        ("general.name".to_owned(), Value::string(&export.name)),
        ("general.file_type".to_owned(), Value::U32(export.ty.id())),
        ("general.quantization_version".to_owned(), Value::U32(2)),
    ];
    entries.extend(architecture_metadata(config));
    entries.extend(tokenizer);
    Ok(GgufMetadata { ty: export.ty, entries })
}

/// The architecture metadata llama.cpp's loader reads for `config`.
fn architecture_metadata(config: &LlamaConfig) -> Vec<(String, Value)> {
    let arch = architecture(config.family);
    let key = |k: &str| format!("{arch}.{k}");
    let u32_of = |v: usize| Value::U32(v as u32);
    let mut out = vec![
        (key("context_length"), u32_of(config.max_position_embeddings)),
        (key("embedding_length"), u32_of(config.hidden_size)),
        (key("block_count"), u32_of(config.num_hidden_layers)),
        (key("feed_forward_length"), u32_of(config.intermediate_size)),
        (key("attention.head_count"), u32_of(config.num_attention_heads)),
        (key("attention.head_count_kv"), u32_of(config.num_key_value_heads)),
        (key("attention.key_length"), u32_of(config.head_dim)),
        (key("attention.value_length"), u32_of(config.head_dim)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(config.rms_norm_eps as f32)),
        (key("rope.freq_base"), Value::F32(config.rope_theta as f32)),
        (key("rope.dimension_count"), u32_of(config.rotary_dim)),
        (key("vocab_size"), u32_of(config.vocab_size)),
    ];
    if let RopeScaling::Linear { factor } = config.rope_scaling {
        out.push((key("rope.scaling.type"), Value::string("linear")));
        out.push((key("rope.scaling.factor"), Value::F32(factor as f32)));
    }
    if let RopeScaling::LongRope { original_max_position_embeddings, attention_factor, .. } = config.rope_scaling {
        out.push((key("rope.scaling.original_context_length"), u32_of(original_max_position_embeddings)));
        out.push((key("rope.scaling.attn_factor"), Value::F32(attention_factor as f32)));
    }
    if let Some(window) = config.sliding_window
        && matches!(config.family, ModelFamily::Gemma3 | ModelFamily::Phi3)
    {
        out.push((key("attention.sliding_window"), u32_of(window)));
    }
    out
}

/// The RoPE factors llama.cpp reads as tensors: `rope_freqs.weight` for `llama3` scaling (each base frequency's
/// divisor), `rope_factors_long.weight` / `rope_factors_short.weight` for Phi-3's `longrope` (llama.cpp takes the
/// long ones when its context is longer than `original_max_position_embeddings`, for every position, where
/// transformers switches when a sequence grows past it).
fn rope_tensors(config: &LlamaConfig) -> Vec<(&'static str, Vec<f32>)> {
    match &config.rope_scaling {
        RopeScaling::Llama3 { .. } => {
            let plain = rope::inv_freq(&LlamaConfig { rope_scaling: RopeScaling::None, ..config.clone() });
            let factors = plain.iter().zip(rope::inv_freq(config)).map(|(base, scaled)| base / scaled).collect();
            vec![("rope_freqs.weight", factors)]
        }
        RopeScaling::LongRope { short_factor, long_factor, .. } => {
            let f32s = |factors: &[f64]| factors.iter().map(|&f| f as f32).collect();
            vec![("rope_factors_long.weight", f32s(long_factor)), ("rope_factors_short.weight", f32s(short_factor))]
        }
        _ => Vec::new(),
    }
}

/// Writes `model` (with `config`) to `out` as a GGUF file llama.cpp loads: llama.cpp's tensor names and layouts
/// ([`crate::arch`]), the architecture's metadata, the tokenizer ([`crate::vocab`]), matrices in `export.ty`.
/// Llama 3's `llama3` RoPE scaling and Phi-3's `longrope` are written as the factor tensors llama.cpp reads
/// ([`rope_tensors`]). The file is written under a temporary name and renamed; an existing `out` is an error, as
/// is a model llama.cpp cannot run as configured (`longrope` outside Phi-3; for Gemma 3 a score scale other than
/// `head_dim`, another global-layer pattern than every 6th, another local RoPE base than 10000), before anything is
/// written.
pub fn export_gguf(model: &LlamaForCausalLM, config: &LlamaConfig, export: &GgufExport<'_>, out: &Path) -> Result<()> {
    let metadata = check_gguf_export(config, export)?;
    let config = LlamaConfig { tie_word_embeddings: model.lm_head.is_none(), ..config.clone() };
    let mut entries: Vec<Option<TensorEntry<'_>>> =
        model.hf_tensors(&config, FloatDType::F32).into_iter().map(Some).collect();
    let shapes = entries.iter().flatten().map(|e| (e.name.clone(), e.shape.clone())).collect();
    write_gguf(&config, shapes, metadata, out, |index, _, _| {
        let entry = entries.get_mut(index).and_then(Option::take);
        let entry =
            entry.ok_or_else(|| ExportError::Unsupported { what: index.to_string(), message: "no data".into() })?;
        Ok((entry.data)()?)
    })
}

/// [`export_gguf`] of a base checkpoint with an adapter merged in, one tensor at a time ([`MergedCheckpoint`]),
/// with the `metadata` [`check_gguf_export`] made for its base: the merged model is never whole in memory, so a
/// model that does not fit in memory exports all the same.
pub fn export_merged_gguf(merged: &mut MergedCheckpoint<'_>, metadata: GgufMetadata, out: &Path) -> Result<()> {
    let config = merged.config().clone();
    let shapes = merged.shapes();
    write_gguf(&config, shapes, metadata, out, |_, name, shape| Ok(merged.tensor(name, shape)?.into_data()))
}

/// The GGUF file of a model with `config` and `metadata` whose tensors (Hugging Face names and shapes, `shapes`)
/// `values` gives one at a time, in order (its index, name and shape asked).
fn write_gguf(
    config: &LlamaConfig,
    shapes: Vec<(String, Vec<usize>)>,
    metadata: GgufMetadata,
    out: &Path,
    mut values: impl FnMut(usize, &str, &[usize]) -> Result<TensorData>,
) -> Result<()> {
    let ty = metadata.ty;
    let mut writer = GgufWriter::new();
    for (key, value) in metadata.entries {
        writer.metadata(&key, value)?;
    }
    let mut rope_tensors = rope_tensors(config);
    for (name, factors) in &rope_tensors {
        writer.tensor(name, &[factors.len()], GgmlType::F32)?;
    }
    let names = shapes
        .iter()
        .map(|(hf_name, shape)| match tensor_name(config.family, hf_name) {
            Some(name) => Ok((name, shape.clone())),
            None => Err(ExportError::Unsupported {
                what: hf_name.clone(),
                message: "llama.cpp has no name for this tensor".into(),
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    for ((name, shape), stored) in names.iter().zip(ty.tensor_types(config, &names)) {
        writer.tensor(name, shape, stored)?;
    }
    let arch = architecture(config.family);
    tracing::info!(arch, tensors = writer.tensors().len(), ty = ty.name(), out = %out.display(), "writing GGUF");
    let mut next = 0usize;
    writer.write(out, |info| -> std::result::Result<Vec<f32>, ExportError> {
        if let Some((_, factors)) = rope_tensors.iter_mut().find(|(name, _)| *name == info.name) {
            return Ok(std::mem::take(factors));
        }
        let (name, shape) = shapes
            .get(next)
            .ok_or_else(|| ExportError::Unsupported { what: info.name.clone(), message: "no data".into() })?;
        let data = values(next, name, shape)?;
        next += 1;
        transformed(transform(config, name), data, shape, name)
    })?;
    Ok(())
}
