//! Safetensors checkpoints (single file or sharded), read tensor by tensor.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorInfo};

use crate::error::{ModelError, Result};

/// Tensors that checkpoints may carry but the model recomputes (buffers saved by old transformers versions).
const IGNORED_SUFFIXES: &[&str] = &["rotary_emb.inv_freq"];

/// Largest header accepted (the safetensors library's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// An opened checkpoint: every file open, the header of each parsed once. Tensors are read one at a time with
/// positioned reads ([`Checkpoint::tensor`]), so loading holds the model plus one tensor in flight, never a second
/// copy of the weights. (An earlier version memory-mapped the files; the mapped pages then counted toward the
/// process's resident memory until the checkpoint was dropped, which raised the peak by the file's size.)
#[derive(Debug)]
pub struct Checkpoint {
    files: Vec<(PathBuf, File)>,
    entries: HashMap<String, Entry>,
    used: BTreeSet<String>,
    metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The shard file names listed by a `model.safetensors.index.json` (its `weight_map` values), sorted.
    pub fn shards(index: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io { path: index.into(), source })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ModelError::Json { path: index.into(), source })?;
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
        let mut extra = BTreeMap::new();
        for (index, path) in paths.iter().enumerate() {
            let (file, base, metadata) = read_header(path)?;
            if let Some(m) = metadata.metadata() {
                extra.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
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
            files.push((path.clone(), file));
        }
        Ok(Self { files, entries, used: BTreeSet::new(), metadata: extra })
    }

    /// The `__metadata__` string map of the files (merged; a later file's key wins).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.keys().cloned().collect();
        names.sort();
        names
    }

    /// The shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.entries.get(name).map(|e| e.shape.clone())
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
        let data = self.data(name, &expected)?;
        Ok(Tensor::from_data(data, (device, DType::from(dtype))))
    }

    /// The raw data of tensor `name` in the file's dtype (F32, F16 or BF16), checked against `expected` shape, and
    /// marked as used.
    pub fn data(&mut self, name: &str, expected: &[usize]) -> Result<TensorData> {
        let entry = self.entries.get(name).ok_or_else(|| ModelError::MissingTensor {
            name: name.to_owned(),
            files: self.files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>().join(", "),
        })?;
        let path = &self.files[entry.file].0;
        if entry.shape != expected {
            return Err(ModelError::ShapeMismatch {
                path: path.clone(),
                name: name.into(),
                expected: expected.to_vec(),
                found: entry.shape.clone(),
            });
        }
        let stored = match entry.dtype {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => {
                return Err(ModelError::UnsupportedDtype {
                    path: path.clone(),
                    name: name.into(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let (path, file) = &self.files[entry.file];
        let len = expected.iter().product::<usize>() * stored.size();
        if entry.end - entry.start != len {
            return Err(ModelError::Checkpoint {
                path: path.clone(),
                message: format!(
                    "tensor `{name}` spans {} bytes, its shape and dtype need {len}",
                    entry.end - entry.start
                ),
            });
        }
        let mut bytes = vec![0u8; len];
        let mut reader = file;
        reader
            .seek(SeekFrom::Start(entry.start as u64))
            .and_then(|_| reader.read_exact(&mut bytes))
            .map_err(|source| ModelError::Io { path: path.clone(), source })?;
        self.used.insert(name.to_owned());
        Ok(TensorData::from_bytes_vec(bytes, expected.to_vec(), stored))
    }

    /// Renames tensor `from` to `to`, for readers that accept another spelling of a key (PEFT's in-memory adapter
    /// keys). False, changing nothing, when `from` is absent or `to` is already a tensor.
    pub fn rename(&mut self, from: &str, to: &str) -> bool {
        if self.entries.contains_key(to) {
            return false;
        }
        match self.entries.remove(from) {
            Some(entry) => {
                self.entries.insert(to.to_owned(), entry);
                true
            }
            None => false,
        }
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
        let mut files: Vec<usize> = unexpected.iter().map(|n| self.entries[*n].file).collect();
        files.sort_unstable();
        files.dedup();
        Err(ModelError::UnexpectedTensors {
            files: files.iter().map(|&f| self.files[f].0.display().to_string()).collect::<Vec<_>>().join(", "),
            names: unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Which tensor makes a header that does not parse as safetensors metadata inconsistent, and how: an entry that is
/// not a tensor description, a byte range that its shape and dtype do not fill, or ranges that leave a gap or
/// overlap. `None` when the header is not a JSON object at all (serde's message then says where). The safetensors
/// crate names no tensor for a size mismatch, which leaves a user with hundreds of tensors nothing to look for.
fn inconsistent_tensor(header: &str) -> Option<String> {
    let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_str(header).ok()?;
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if name == "__metadata__" {
            continue;
        }
        match serde_json::from_value::<TensorInfo>(value) {
            Ok(info) => tensors.push((name, info)),
            Err(e) => return Some(format!("tensor `{name}`: {e}")),
        }
    }
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    let mut end = 0;
    for (name, info) in tensors {
        let (start, stop) = info.data_offsets;
        let bits = info.shape.iter().try_fold(info.dtype.bitsize(), |n, &d| n.checked_mul(d));
        let need = bits.map(|b| b.div_ceil(8));
        if stop < start || need != Some(stop - start) {
            let need = need.map_or_else(|| "more bytes than fit in memory".to_owned(), |n| format!("{n} bytes"));
            return Some(format!(
                "tensor `{name}`: shape {:?} in {:?} needs {need}, its data_offsets [{start}, {stop}] span {}",
                info.shape,
                info.dtype,
                stop.saturating_sub(start)
            ));
        }
        if start != end {
            let how = if start > end { "leaving a gap after" } else { "overlapping" };
            return Some(format!(
                "tensor `{name}`: data_offsets [{start}, {stop}] start at byte {start}, {how} the previous tensor's \
                 end at {end}"
            ));
        }
        end = stop;
    }
    None
}

/// Opens a safetensors file and parses its header: `(file, offset of the data, metadata)`. A header that does not
/// parse, or data shorter or longer than the header describes (a truncated download), is an error naming the file.
fn read_header(path: &Path) -> Result<(File, usize, Metadata)> {
    let io = |source| ModelError::Io { path: path.into(), source };
    let invalid = |message: String| ModelError::Checkpoint {
        path: path.into(),
        message: format!("not a valid safetensors file: {message}"),
    };
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(|_| invalid(format!("{file_len} bytes is too short for a header")))?;
    let header_len = u64::from_le_bytes(prefix);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
        return Err(invalid(format!("header length {header_len} does not fit a file of {file_len} bytes")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let text = std::str::from_utf8(&header).map_err(|e| invalid(format!("header is not UTF-8: {e}")))?;
    let metadata: Metadata = serde_json::from_str(text)
        .map_err(|e| invalid(format!("header: {}", inconsistent_tensor(text).unwrap_or_else(|| e.to_string()))))?;
    let data_len = metadata.tensors().values().map(|info| info.data_offsets.1).max().unwrap_or(0) as u64;
    if 8 + header_len + data_len != file_len {
        return Err(invalid(format!(
            "the header describes {data_len} bytes of data, the file holds {} (truncated or padded)",
            file_len - 8 - header_len
        )));
    }
    Ok((file, 8 + header_len as usize, metadata))
}
