//! # sft-gguf
//!
//! GGUF v3, the file format of llama.cpp, Ollama and LM Studio: a header, typed key–value metadata, tensor
//! descriptors, then the tensors' bytes, each aligned to `general.alignment` (32).
//!
//! ```text
//! GgufWriter::new() ─ metadata(key, Value) ─ tensor(name, shape, GgmlType) ─ write(path, |info| f32 values)
//!   └─► path (a temporary file renamed into place; one tensor in memory at a time)
//! GgufFile::open(path) ─ metadata / tensors ─ tensor_f32(name) (dequantized)
//! ```
//!
//! Written by hand: no maintained standalone crate writes GGUF with streamed tensor data (candle's writer needs
//! every tensor in memory as candle tensors; the small crates found (`gguf-rs`, `ggus`, `gguf-rs-lib`) are young,
//! single-maintainer, and leave quantization out), and the format is a few hundred lines.
//!
//! Shapes are given in PyTorch order (`[rows, cols]`, the last axis contiguous); on disk GGUF lists them reversed
//! (`ne[0]` is the contiguous axis), which this crate does for you.
#![deny(missing_docs)]

mod error;
mod kquants;
mod read;
mod types;
mod value;
mod write;

pub use error::{GgufError, Result};
pub use read::GgufFile;
pub use types::{GgmlType, TensorInfo, decode, encode};
pub use value::{Value, ValueType};
pub use write::GgufWriter;

/// `"GGUF"`, the file's first four bytes.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The format version written (and the only one read).
pub const VERSION: u32 = 3;
/// The tensor-data alignment in bytes (`general.alignment`'s default).
pub const ALIGNMENT: usize = 32;
