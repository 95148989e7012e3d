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
//! | segments → token ids + loss mask, chat templates | [`tokenize`] (`sft-tokenize`) |
//! | padded / packed batches with -100 labels | [`collate`] (`sft-collate`) |
//! | the Llama model, loading, loss, generation | [`model_stage`] (`sft-model`) |
//! | LoRA adapters, merge, PEFT adapter files | [`peft`] (`sft-peft`) |
//! | the training loop, evaluation, early stopping, checkpoints, resume | [`train`] (`sft-train`) |
//! | Hugging Face Hub downloads, tokens, cache | [`hub`] (`sft-hub`) |
#![deny(missing_docs)]

pub mod allocator;
pub mod config;
mod dataset;
pub mod distributed;
mod error;
pub mod export;
mod model;
pub mod pipeline;
pub mod progress;
pub mod push;
pub mod stop;
mod tokenizer;

pub use dataset::load_dataset;
pub use error::{Result, SftError};
pub use model::{INIT_RECIPE, load_model, load_model_config, materialize_embedded};
/// Batching (`sft-collate`).
pub use sft_collate as collate;
/// The data stage (`sft-data`).
pub use sft_data as data;
/// Export for serving (`sft-export`).
pub use sft_export as export_stage;
/// Hub access (`sft-hub`).
pub use sft_hub as hub;
/// The Llama model (`sft-model`).
pub use sft_model as model_stage;
/// LoRA adapters and PEFT files (`sft-peft`).
pub use sft_peft as peft;
/// Tokenization (`sft-tokenize`).
pub use sft_tokenize as tokenize;
/// The trainer (`sft-train`).
pub use sft_train as train;
pub use tokenizer::load_tokenizer;
