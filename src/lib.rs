//! # sft
//!
//! Config-driven LoRA / QLoRA supervised fine-tuning of Llama-style models on Burn, without Python.
//!
//! This crate is the facade: it re-exports the stage crates and composes the run config ([`config::RunConfig`])
//! from their sections.
//!
//! | stage | crate |
//! |---|---|
//! | instruction data → formatted prompt/completion segments | [`data`] (`sft-data`) |
//! | Hugging Face Hub downloads, tokens, cache | [`hub`] (`sft-hub`) |
//!
//! Tokenization, collation, the model, adapters and the trainer arrive as their crates land.
#![deny(missing_docs)]

pub mod config;
mod dataset;
mod error;

pub use dataset::load_dataset;
pub use error::{Result, SftError};
/// The data stage (`sft-data`).
pub use sft_data as data;
/// Hub access (`sft-hub`).
pub use sft_hub as hub;
