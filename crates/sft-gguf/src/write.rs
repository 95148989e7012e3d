//! Writing a GGUF file: everything but the tensor data is known up front, so the header, metadata, descriptors
//! and offsets are written first and each tensor's values are asked for, encoded and written one at a time.

use std::io::Write;
use std::path::Path;

use crate::error::{GgufError, Result};
use crate::types::{GgmlType, TensorInfo, encode};
use crate::value::{Value, ValueType, write_string};
use crate::{ALIGNMENT, MAGIC, VERSION};

/// A GGUF file to be written: metadata and tensor descriptors in the order added.
#[derive(Debug, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
}

fn invalid(what: &'static str, name: &str, message: impl Into<String>) -> GgufError {
    GgufError::Invalid { what, name: name.to_owned(), message: message.into() }
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds metadata `key` = `value`. A key given twice, or an array whose items are not all of its element type
    /// (or are arrays), is an error.
    pub fn metadata(&mut self, key: &str, value: Value) -> Result<&mut Self> {
        if self.metadata.iter().any(|(k, _)| k == key) {
            return Err(invalid("metadata key", key, "given twice"));
        }
        if let Value::Array { element, items } = &value
            && (*element == ValueType::Array || items.iter().any(|i| i.value_type() != *element))
        {
            return Err(invalid("metadata key", key, format!("an array's items must all be {element:?}")));
        }
        self.metadata.push((key.to_owned(), value));
        Ok(self)
    }

    /// Adds tensor `name` of `shape` (PyTorch order, last axis contiguous) stored as `ty`. A name given twice, an
    /// empty shape, or a contiguous axis that is not a whole number of `ty`'s blocks is an error.
    pub fn tensor(&mut self, name: &str, shape: &[usize], ty: GgmlType) -> Result<&mut Self> {
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(invalid("tensor", name, "given twice"));
        }
        let Some(&last) = shape.last() else { return Err(invalid("tensor", name, "has no shape")) };
        if shape.len() > 4 {
            return Err(invalid("tensor", name, format!("{} axes; GGUF has at most 4", shape.len())));
        }
        if !last.is_multiple_of(ty.block_size()) {
            return Err(invalid(
                "tensor",
                name,
                format!("its last axis ({last}) is not a multiple of {}'s block of {}", ty.name(), ty.block_size()),
            ));
        }
        self.tensors.push(TensorInfo { name: name.to_owned(), shape: shape.to_vec(), ty });
        Ok(self)
    }

    /// The tensors, in the order they will be written.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Everything before the tensor data: header, metadata, descriptors with their offsets, padding.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(VERSION.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            out.extend(value.value_type().id().to_le_bytes());
            value.write_to(&mut out);
        }
        let mut offset = 0usize;
        for tensor in &self.tensors {
            write_string(&mut out, &tensor.name);
            out.extend((tensor.shape.len() as u32).to_le_bytes());
            for &dim in tensor.shape.iter().rev() {
                out.extend((dim as u64).to_le_bytes());
            }
            out.extend(tensor.ty.id().to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset += tensor.bytes().next_multiple_of(ALIGNMENT);
        }
        out.resize(out.len().next_multiple_of(ALIGNMENT), 0);
        out
    }

    /// Writes the file to `path`, asking `values(tensor)` for each tensor's values (row-major f32, as many as the
    /// shape holds) in order, so one tensor is in memory at a time. The file is written under a temporary name in
    /// the same directory and renamed when complete; an existing `path` is an error before anything is written,
    /// and a failing source leaves no file.
    pub fn write<E>(
        &self,
        path: &Path,
        mut values: impl FnMut(&TensorInfo) -> std::result::Result<Vec<f32>, E>,
    ) -> Result<()>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let io = |source| GgufError::Io { path: path.to_owned(), source };
        if path.exists() {
            return Err(GgufError::Exists { path: path.to_owned() });
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        {
            let mut out = std::io::BufWriter::new(file.as_file_mut());
            out.write_all(&self.header_bytes()).map_err(io)?;
            for tensor in &self.tensors {
                let data =
                    values(tensor).map_err(|e| GgufError::Source { tensor: tensor.name.clone(), source: e.into() })?;
                if data.len() != tensor.elements() {
                    return Err(invalid(
                        "tensor",
                        &tensor.name,
                        format!("{} values given for shape {:?}", data.len(), tensor.shape),
                    ));
                }
                let mut bytes = encode(&data, tensor.ty);
                bytes.resize(bytes.len().next_multiple_of(ALIGNMENT), 0);
                out.write_all(&bytes).map_err(io)?;
            }
            out.flush().map_err(io)?;
        }
        // A temporary file is created private (0600); the output gets a plain file's permissions.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io)?;
        }
        file.as_file().sync_all().map_err(io)?;
        file.persist_noclobber(path).map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => GgufError::Exists { path: path.to_owned() },
            _ => io(e.error),
        })?;
        Ok(())
    }
}
