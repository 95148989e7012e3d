//! # sft-export
//!
//! A model as llama.cpp runs it: [`export_gguf`] writes a [`LlamaForCausalLM`](sft_model::LlamaForCausalLM) (a
//! merged fine-tune) as one GGUF file with llama.cpp's tensor names and layouts ([`arch`]), the metadata keys its
//! loader reads, and the tokenizer ([`vocab`]), one tensor in memory at a time.
//!
//! ```text
//! LlamaForCausalLM + LlamaConfig + the base repo's tokenizer files ─ export_gguf(out, FileType) ─► model.gguf
//! PEFT adapter dir + the base's LlamaConfig ─ export_lora_gguf(out, GgmlType) ─► adapter.gguf (llama.cpp --lora)
//! ```
#![deny(missing_docs)]

pub mod arch;
pub mod check;
mod error;
mod file_type;
mod gguf;
mod lora;
pub mod ollama;
pub mod vocab;

pub use error::{ExportError, Result};
pub use file_type::FileType;
pub use gguf::{GgufExport, GgufMetadata, check_gguf_export, export_gguf, export_merged_gguf};
pub use lora::export_lora_gguf;
