//! Reading a GGUF v3 file: header, metadata and descriptors at open, tensor data on request.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{GgufError, Result};
use crate::types::{GgmlType, TensorInfo, decode};
use crate::value::{Value, ValueType};
use crate::{ALIGNMENT, MAGIC, VERSION};

/// An open GGUF file.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    file: File,
    /// The metadata, in file order.
    pub metadata: Vec<(String, Value)>,
    /// The tensors, in file order, with their data offsets (from the start of the data section).
    pub tensors: Vec<(TensorInfo, u64)>,
    data_start: u64,
}

/// A cursor over the bytes read so far, for parse errors with offsets.
struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn error(&self, message: impl std::fmt::Display) -> GgufError {
        GgufError::Format { path: self.path.to_owned(), message: format!("{message} (at byte {})", self.at) }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| self.error("truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n).ok().filter(|&n| n <= self.bytes.len()).ok_or_else(|| self.error(format!("length {n}")))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        let bytes = self.take(n)?.to_vec();
        String::from_utf8(bytes).map_err(|_| self.error("a string is not UTF-8"))
    }

    fn value(&mut self, ty: ValueType) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>()?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array()?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array()?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array()?)),
            ValueType::U32 => Value::U32(self.u32()?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array()?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array()?)),
            ValueType::Bool => Value::Bool(self.array::<1>()?[0] != 0),
            ValueType::String => Value::String(self.string()?),
            ValueType::U64 => Value::U64(self.u64()?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array()?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array()?)),
            ValueType::Array => {
                let id = self.u32()?;
                let element = ValueType::from_id(id)
                    .filter(|&t| t != ValueType::Array)
                    .ok_or_else(|| self.error(format!("array element type {id}")))?;
                let n = self.len()?;
                let items = (0..n).map(|_| self.value(element)).collect::<Result<Vec<_>>>()?;
                Value::Array { element, items }
            }
        })
    }
}

impl GgufFile {
    /// Opens `path` and reads everything but the tensor data. A file that is not GGUF v3, is truncated, or holds
    /// a tensor type this crate does not read is an error naming the file and the byte offset.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| GgufError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        // The header part is read whole; it is small next to the tensors (tokenizer vocabularies included).
        let mut head = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX).min(256 << 20)];
        let mut read = 0;
        while read < head.len() {
            let n = file.read_at(&mut head[read..], read as u64).map_err(io)?;
            if n == 0 {
                break;
            }
            read += n;
        }
        head.truncate(read);
        let mut c = Cursor { path, bytes: &head, at: 0 };
        if c.array::<4>()? != MAGIC {
            return Err(c.error("not a GGUF file (no `GGUF` magic)"));
        }
        let version = c.u32()?;
        if version != VERSION {
            return Err(c.error(format!("GGUF version {version}; only version {VERSION} is read")));
        }
        let (tensors, kvs) = (c.u64()?, c.u64()?);
        let mut metadata = Vec::new();
        for _ in 0..kvs {
            let key = c.string()?;
            let id = c.u32()?;
            let ty = ValueType::from_id(id).ok_or_else(|| c.error(format!("metadata `{key}`: value type {id}")))?;
            metadata.push((key, c.value(ty)?));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            Some((_, v)) => v.as_u64().filter(|&a| a > 0).ok_or_else(|| c.error("general.alignment"))? as usize,
            None => ALIGNMENT,
        };
        let mut infos = Vec::new();
        for _ in 0..tensors {
            let name = c.string()?;
            let dims = c.u32()? as usize;
            if dims == 0 || dims > 4 {
                return Err(c.error(format!("tensor `{name}`: {dims} dimensions")));
            }
            let mut shape = (0..dims).map(|_| c.u64().map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
            shape.reverse();
            let id = c.u32()?;
            let ty = GgmlType::from_id(id).ok_or_else(|| {
                c.error(format!(
                    "tensor `{name}`: ggml type {id} is not read here ({})",
                    GgmlType::ALL.map(GgmlType::name).join(", ")
                ))
            })?;
            let last = shape.last().copied().unwrap_or(0);
            if !last.is_multiple_of(ty.block_size()) {
                return Err(c.error(format!(
                    "tensor `{name}`: its last axis ({last}) is not a multiple of {}'s block of {}",
                    ty.name(),
                    ty.block_size()
                )));
            }
            let offset = c.u64()?;
            infos.push((TensorInfo { name, shape, ty }, offset));
        }
        let data_start = c.at.next_multiple_of(alignment) as u64;
        for (info, offset) in &infos {
            if data_start + offset + info.bytes() as u64 > size {
                return Err(c.error(format!("tensor `{}` runs past the end of the file", info.name)));
            }
        }
        Ok(Self { path: path.to_owned(), file, metadata, tensors: infos, data_start })
    }

    /// The metadata value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The descriptor of tensor `name`.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|(t, _)| t.name == name).map(|(t, _)| t)
    }

    /// The raw bytes of tensor `name`.
    pub fn tensor_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let (info, offset) = self
            .tensors
            .iter()
            .find(|(t, _)| t.name == name)
            .ok_or_else(|| GgufError::MissingTensor { path: self.path.clone(), name: name.to_owned() })?;
        let mut bytes = vec![0u8; info.bytes()];
        self.file
            .read_exact_at(&mut bytes, self.data_start + offset)
            .map_err(|source| GgufError::Io { path: self.path.clone(), source })?;
        Ok(bytes)
    }

    /// The values of tensor `name`, dequantized to f32, row-major.
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let bytes = self.tensor_bytes(name)?;
        let ty = self.info(name).map_or(GgmlType::F32, |t| t.ty);
        Ok(decode(&bytes, ty))
    }
}
