//! `merge_and_unload` without the model in memory: the base checkpoint is read, merged and written one shard at a
//! time (shards of a bounded size with `model.safetensors.index.json`, as `save_pretrained` writes them), so the
//! peak memory is one shard, not the model.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use sft_model::{
    Checkpoint, LlamaConfig, TensorEntry, expected_shapes, projection_names, write_atomic, write_safetensors,
};

use crate::config::LoraConfig;
use crate::error::{PeftError, Result};
use crate::files::{ADAPTER_WEIGHTS, adapter_key, floats, read_adapter_config, strip_adapter_name};
use crate::inject::{SavedModule, modules_to_save};
use crate::lora::LoraAdapter;

/// save_pretrained's default `max_shard_size` (5 GB).
pub const MAX_SHARD_BYTES: usize = 5_000_000_000;

/// A base checkpoint with a PEFT adapter merged in, tensor by tensor: [`MergedCheckpoint::tensor`] reads one base
/// tensor (and the adapter's factors for it) and returns its merged value, so a caller holds one tensor at a time,
/// never the model. Each adapted projection becomes `W + (B·A)·scaling`, computed as
/// [`merge_and_unload`](crate::merge_and_unload) computes it, so the values equal the in-memory merge bit for bit. A
/// trained `modules_to_save` head or embedding table replaces the base's; when the base is tied, the result is
/// untied, with both tensors.
pub struct MergedCheckpoint<'a> {
    base: LlamaConfig,
    config: LlamaConfig,
    checkpoint: &'a mut Checkpoint,
    adapter: Adapter<'a>,
    device: Device,
}

impl std::fmt::Debug for MergedCheckpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergedCheckpoint")
            .field("adapter", &self.adapter.dir)
            .field("adapted", &self.adapter.adapted)
            .field("saved", &self.adapter.saved)
            .finish_non_exhaustive()
    }
}

impl<'a> MergedCheckpoint<'a> {
    /// The adapter in `adapter_dir` (`adapter_config.json`, `adapter_model.safetensors`) over the base model
    /// `checkpoint` with `config`. Reads the adapter's config and the names in its weights file; its factors are
    /// read as each tensor is asked for (a factor of the wrong shape is an error naming the adapter's file then).
    pub fn open(config: &LlamaConfig, checkpoint: &'a mut Checkpoint, adapter_dir: &'a Path) -> Result<Self> {
        let (lora, _) = read_adapter_config(adapter_dir)?;
        let weights = adapter_dir.join(ADAPTER_WEIGHTS);
        let mut tensors = Checkpoint::open(std::slice::from_ref(&weights))?;
        strip_adapter_name(&mut tensors, &weights)?;
        let adapted: Vec<String> = projection_names(config)
            .into_iter()
            .filter(|name| tensors.contains(&adapter_key(name, Some("lora_A"))))
            .collect();
        let saved = modules_to_save(&lora)?;
        // Every factor's shape against the base's, before any tensor is read: an adapter for another base fails
        // here, not half-way through a merge.
        let shapes: BTreeMap<String, Vec<usize>> = expected_shapes(config).into_iter().collect();
        for module in &adapted {
            let Some(&[d_out, d_in]) = shapes.get(&format!("{module}.weight")).map(Vec::as_slice) else { continue };
            for (factor, expected) in [("lora_A", [lora.r, d_in]), ("lora_B", [d_out, lora.r])] {
                let key = adapter_key(module, Some(factor));
                let found = tensors.shape(&key).unwrap_or_default();
                if found != expected {
                    return Err(PeftError::Adapter {
                        path: weights.clone(),
                        message: format!(
                            "`{key}` has shape {found:?} where the base's `{module}` (r = {}) needs {expected:?}: \
                             an adapter for another base model?",
                            lora.r
                        ),
                    });
                }
            }
        }
        let adapter = Adapter { tensors, dir: adapter_dir, lora, saved, adapted };
        // A trained head or embedding table on a tied base: both tensors are written, untied.
        let merged = LlamaConfig {
            tie_word_embeddings: config.tie_word_embeddings && adapter.saved.is_empty(),
            ..config.clone()
        };
        Ok(Self { base: config.clone(), config: merged, checkpoint, adapter, device: Device::flex() })
    }

    /// The merged model's config (untied when a tied base's head or embeddings trained).
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The merged model's tensors in `save_pretrained` order: Hugging Face names and shapes.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        expected_shapes(&self.config)
    }

    /// The merged value of tensor `name` with `shape` (one of [`MergedCheckpoint::shapes`]), f32, flattened
    /// row-major.
    pub fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor<1>> {
        merged_tensor(&self.base, self.checkpoint, &mut self.adapter, name, shape, &self.device)
    }
}

/// Merges the PEFT adapter in `adapter_dir` into the base model `checkpoint` (with `config`) and writes the result
/// to `out` (`config.json` and `model.safetensors`, or shards of at most `max_shard_bytes` of f32 data plus
/// `model.safetensors.index.json`), reading, merging and writing one shard at a time ([`MergedCheckpoint`]), so the
/// output equals the in-memory merge bit for bit. Returns the files written.
pub fn merge_checkpoint(
    config: &LlamaConfig,
    checkpoint: &mut Checkpoint,
    adapter_dir: &Path,
    out: &Path,
    max_shard_bytes: usize,
) -> Result<Vec<String>> {
    let mut merged = MergedCheckpoint::open(config, checkpoint, adapter_dir)?;
    let shapes = merged.shapes();

    // Shards by size, in order, as save_pretrained splits them.
    let mut shards: Vec<Vec<(String, Vec<usize>)>> = vec![Vec::new()];
    let mut size = 0usize;
    for (name, shape) in shapes {
        let bytes = shape.iter().product::<usize>() * 4;
        if size > 0 && size + bytes > max_shard_bytes {
            shards.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(last) = shards.last_mut() {
            last.push((name, shape));
        }
    }
    let count = shards.len();
    let file_name = |i: usize| {
        if count == 1 {
            sft_model::WEIGHTS_FILE.to_owned()
        } else {
            format!("model-{:05}-of-{count:05}.safetensors", i + 1)
        }
    };
    std::fs::create_dir_all(out).map_err(|source| PeftError::Io { path: out.into(), source })?;
    let metadata = BTreeMap::from([("format".to_owned(), "pt".to_owned())]);
    let mut weight_map = serde_json::Map::new();
    let mut total = 0usize;
    for (i, shard) in shards.into_iter().enumerate() {
        let mut entries = Vec::with_capacity(shard.len());
        for (name, shape) in shard {
            total += shape.iter().product::<usize>() * 4;
            weight_map.insert(name.clone(), file_name(i).into());
            let tensor = merged.tensor(&name, &shape)?;
            entries.push(TensorEntry {
                name,
                dtype: DType::F32,
                shape,
                data: Box::new(move || Ok(tensor.into_data())),
            });
        }
        write_safetensors(&out.join(file_name(i)), entries, &metadata)?;
    }
    let json = |value: &serde_json::Value, file: &str| -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(value).map_err(|source| PeftError::Json { path: out.join(file), source })?;
        Ok(write_atomic(&out.join(file), &bytes)?)
    };
    json(&merged.config().to_hf_json(FloatDType::F32), sft_model::CONFIG_FILE)?;
    let mut files: Vec<String> = (0..count).map(file_name).collect();
    if count > 1 {
        let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        json(&index, sft_model::WEIGHTS_INDEX_FILE)?;
        files.push(sft_model::WEIGHTS_INDEX_FILE.to_owned());
    }
    files.push(sft_model::CONFIG_FILE.to_owned());
    Ok(files)
}

/// The adapter being merged: its tensors (in `dir`), its config, the modules it saves in full and those it adapts.
struct Adapter<'a> {
    tensors: Checkpoint,
    dir: &'a Path,
    lora: LoraConfig,
    saved: Vec<SavedModule>,
    adapted: Vec<String>,
}

/// The merged value of output tensor `name` (HF layout), f32.
fn merged_tensor(
    config: &LlamaConfig,
    checkpoint: &mut Checkpoint,
    adapter: &mut Adapter<'_>,
    name: &str,
    shape: &[usize],
    device: &Device,
) -> Result<Tensor<1>> {
    let f32 = FloatDType::F32;
    let flat = |t: Tensor<2>| t.flatten::<1>(0, 1);
    let [vocab, hidden] = [config.vocab_size, config.hidden_size];
    match name {
        "lm_head.weight" if adapter.saved.contains(&SavedModule::LmHead) => {
            return Ok(flat(adapter.tensors.tensor(&adapter_key("lm_head", None), [vocab, hidden], device, f32)?));
        }
        // A tied base whose embeddings trained: the head keeps the original matrix.
        "lm_head.weight" if config.tie_word_embeddings => {
            return Ok(flat(checkpoint.tensor("model.embed_tokens.weight", [vocab, hidden], device, f32)?));
        }
        "model.embed_tokens.weight" if adapter.saved.contains(&SavedModule::EmbedTokens) => {
            return Ok(flat(adapter.tensors.tensor(
                &adapter_key("model.embed_tokens", None),
                [vocab, hidden],
                device,
                f32,
            )?));
        }
        _ => {}
    }
    let module = name.strip_suffix(".weight").unwrap_or(name);
    if let [d_out, d_in] = *shape
        && adapter.adapted.iter().any(|m| m == module)
    {
        let r = adapter.lora.r;
        let a = adapter.tensors.data(&adapter_key(module, Some("lora_A")), &[r, d_in])?;
        let b = adapter.tensors.data(&adapter_key(module, Some("lora_B")), &[d_out, r])?;
        let (a, b) = (floats(a, adapter.dir)?, floats(b, adapter.dir)?);
        let scaling = adapter.lora.scaling();
        let delta = LoraAdapter::from_peft(&a, &b, [r, d_in, d_out], scaling, 0.0, device).delta_weight();
        // The in-memory merge adds `delta` [in, out] to the transposed base; the same sums, element by element.
        let base: Tensor<2> = checkpoint.tensor(name, [d_out, d_in], device, f32)?;
        return Ok(flat((base.transpose() + delta).transpose()));
    }
    Ok(match *shape {
        [n] => checkpoint.tensor(name, [n], device, f32)?,
        [rows, cols] => flat(checkpoint.tensor(name, [rows, cols], device, f32)?),
        _ => return Err(PeftError::Adapter { path: name.into(), message: format!("unexpected shape {shape:?}") }),
    })
}
