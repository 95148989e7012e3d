//! Safetensors checkpoints (single file or sharded), memory-mapped, read tensor by tensor.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};

/// Tensors that checkpoints may carry but the model recomputes (buffers saved by old transformers versions).
const IGNORED_SUFFIXES: &[&str] = &["rotary_emb.inv_freq"];

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// An opened checkpoint: every file memory-mapped, the header of each parsed once. Tensors are copied out one at
/// a time ([`Checkpoint::tensor`]), so loading never holds a second full copy of the weights; the mapped pages are
/// file-backed and can be dropped by the OS.
#[derive(Debug)]
pub struct Checkpoint {
    files: Vec<(PathBuf, Mmap)>,
    entries: HashMap<String, Entry>,
    used: BTreeSet<String>,
}

impl Checkpoint {
    /// Opens the checkpoint in `dir`: `model.safetensors`, or the shards listed by `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return Self::open(&[single]);
        }
        let index = dir.join("model.safetensors.index.json");
        if !index.is_file() {
            return Err(ModelError::Checkpoint {
                path: dir.to_path_buf(),
                message: "no model.safetensors or model.safetensors.index.json".into(),
            });
        }
        let shards = Self::shards(&index)?;
        let paths: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
        for (shard, path) in shards.iter().zip(&paths) {
            if !path.is_file() {
                return Err(ModelError::Checkpoint {
                    path: index.clone(),
                    message: format!("the index names shard `{shard}`, which does not exist"),
                });
            }
        }
        Self::open(&paths)
    }

    /// The shard file names listed by a `model.safetensors.index.json` (its `weight_map` values), sorted.
    pub fn shards(index: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io { path: index.into(), source })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Checkpoint { path: index.into(), message: e.to_string() })?;
        let map = value
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| ModelError::Checkpoint { path: index.into(), message: "no `weight_map` object".into() })?;
        let mut shards: Vec<String> = map.values().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        shards.sort();
        shards.dedup();
        Ok(shards)
    }

    /// Opens and indexes `paths` (safetensors files). A truncated or malformed file, or a tensor name present in two
    /// files, is an error naming the file.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut entries = HashMap::new();
        for (index, path) in paths.iter().enumerate() {
            let mmap = map(path)?;
            let (header, metadata) = SafeTensors::read_metadata(&mmap).map_err(|e| ModelError::Checkpoint {
                path: path.clone(),
                message: format!("not a valid safetensors file: {e}"),
            })?;
            let base = 8 + header;
            for (name, info) in metadata.tensors() {
                let entry = Entry {
                    file: index,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: base + info.data_offsets.0,
                    end: base + info.data_offsets.1,
                };
                if let Some(previous) = entries.insert(name.clone(), entry) {
                    return Err(ModelError::Checkpoint {
                        path: path.clone(),
                        message: format!("tensor `{name}` is also in {}", paths[previous.file].display()),
                    });
                }
            }
            files.push((path.clone(), mmap));
        }
        Ok(Self { files, entries, used: BTreeSet::new() })
    }

    /// Whether the checkpoint has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Tensor `name`, checked against `expected` shape, converted from the file's dtype (F32, F16 or BF16) to
    /// `dtype` on `device`, and marked as used.
    pub fn tensor<const D: usize>(
        &mut self,
        name: &str,
        expected: [usize; D],
        device: &Device,
        dtype: FloatDType,
    ) -> Result<Tensor<D>> {
        let entry = self.entries.get(name).ok_or_else(|| ModelError::MissingTensor {
            name: name.to_owned(),
            files: self.files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>().join(", "),
        })?;
        if entry.shape != expected {
            return Err(ModelError::ShapeMismatch {
                name: name.into(),
                expected: expected.to_vec(),
                found: entry.shape.clone(),
            });
        }
        let stored = match entry.dtype {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => return Err(ModelError::UnsupportedDtype { name: name.into(), dtype: format!("{other:?}") }),
        };
        let bytes = self.files[entry.file].1[entry.start..entry.end].to_vec();
        let data = TensorData::from_bytes_vec(bytes, expected.to_vec(), stored);
        self.used.insert(name.to_owned());
        Ok(Tensor::from_data(data, (device, DType::from(dtype))))
    }

    /// Marks `name` as deliberately unused (e.g. `lm_head.weight` saved next to tied embeddings).
    pub fn skip(&mut self, name: &str) {
        if self.entries.contains_key(name) {
            self.used.insert(name.to_owned());
        }
    }

    /// Errors if tensors remain that the model did not read (other than recomputed buffers).
    pub fn finish(self) -> Result<()> {
        let mut unexpected: Vec<&String> = self
            .entries
            .keys()
            .filter(|n| !self.used.contains(*n) && !IGNORED_SUFFIXES.iter().any(|s| n.ends_with(s)))
            .collect();
        if unexpected.is_empty() {
            return Ok(());
        }
        unexpected.sort();
        Err(ModelError::UnexpectedTensors {
            names: unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Memory-maps `path` read-only.
#[allow(unsafe_code)]
fn map(path: &Path) -> Result<Mmap> {
    let file = std::fs::File::open(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
    // SAFETY: the map is read-only and private to this process. Checkpoint files are not expected to change while
    // a model loads; if one is truncated concurrently, reads may fault, as with any memory-mapped loader (PyTorch's
    // and safetensors' included).
    unsafe { Mmap::map(&file) }.map_err(|source| ModelError::Io { path: path.into(), source })
}
