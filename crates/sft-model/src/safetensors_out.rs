//! Writing safetensors files tensor by tensor, atomically.
//!
//! The format (<https://github.com/huggingface/safetensors>): an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}` padded with spaces to a multiple of 8,
//! then the tensors' bytes back to back. The header needs only names, dtypes and shapes, so the bytes are produced
//! and written one tensor at a time: saving never holds a second copy of the model.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;

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

/// A temporary file next to `path` (same directory, so the final rename stays on one filesystem); removed when
/// dropped unless persisted.
fn temporary(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    let mut builder = tempfile::Builder::new();
    builder.prefix(&name).suffix(".tmp");
    // tempfile creates 0600 files; the written files get what `std::fs::write` gives (0666 less the umask).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(dir)
}

/// Flushes `file` to disk and renames it to `path`.
fn persist(file: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    file.as_file().sync_all()?;
    file.persist(path).map(|_| ()).map_err(|e| e.error)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, flushed to disk and renamed, so a crash
/// leaves the old file or the new one, never half of one; on an error the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    let mut file = temporary(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    persist(file, path).map_err(io)
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
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    let file = temporary(path).map_err(io)?;
    let mut out = BufWriter::new(file);
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
    // Any error above drops the temporary file, which deletes it.
    persist(out.into_inner().map_err(|e| io(e.into_error()))?, path).map_err(io)
}
