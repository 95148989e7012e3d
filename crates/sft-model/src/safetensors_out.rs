//! Writing safetensors files tensor by tensor, atomically.
//!
//! The format (<https://github.com/huggingface/safetensors>): an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}` padded with spaces to a multiple of 8,
//! then the tensors' bytes back to back. The header needs only names, dtypes and shapes, so the bytes are produced
//! and written one tensor at a time: saving never holds a second copy of the model.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};

use crate::error::{ModelError, Result};

/// A tensor to write: its name, dtype and shape, and a function producing its bytes (little-endian, row-major).
pub struct TensorEntry<'a> {
    /// The key in the file.
    pub name: String,
    /// Element type; F32, F16, BF16, I64 and U8 are written.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Produces the data, called once, in file order; must return `shape.product() × dtype.size()` bytes.
    pub data: Box<dyn FnOnce() -> Result<TensorData> + 'a>,
}

impl std::fmt::Debug for TensorEntry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorEntry")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .finish()
    }
}

fn dtype_name(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I64 => "I64",
        DType::U8 => "U8",
        _ => return None,
    })
}

/// The path a file is written to before it is renamed to `path`.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a crash leaves the
/// old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary(path);
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes `tensors` (in the given order) and `metadata` to `path` as a safetensors file, atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: Vec<TensorEntry<'_>>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let error = |message: String| ModelError::Checkpoint { path: path.to_path_buf(), message };
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(metadata).map_err(|e| error(e.to_string()))?);
    }
    let mut offset = 0usize;
    for t in &tensors {
        let name =
            dtype_name(t.dtype).ok_or_else(|| error(format!("tensor `{}`: cannot write {:?}", t.name, t.dtype)))?;
        let len = t.shape.iter().product::<usize>() * t.dtype.size();
        let entry = serde_json::json!({"dtype": name, "shape": t.shape, "data_offsets": [offset, offset + len]});
        if header.insert(t.name.clone(), entry).is_some() {
            return Err(error(format!("tensor `{}` is written twice", t.name)));
        }
        offset += len;
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| error(e.to_string()))?;
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let tmp = temporary(path);
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    let result = (|| {
        let mut out = BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        out.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
        out.write_all(&json).map_err(io)?;
        for t in tensors {
            let expected = t.shape.iter().product::<usize>() * t.dtype.size();
            let data = (t.data)()?;
            if data.dtype() != t.dtype || data.as_bytes().len() != expected {
                return Err(error(format!(
                    "tensor `{}`: produced {:?} with {} bytes, expected {:?} with {expected}",
                    t.name,
                    data.dtype(),
                    data.as_bytes().len(),
                    t.dtype
                )));
            }
            out.write_all(data.as_bytes()).map_err(io)?;
        }
        out.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
