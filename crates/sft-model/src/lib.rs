//! # sft-model
//!
//! The Llama architecture on Burn 0.22, computing what transformers' `LlamaForCausalLM` computes, loaded from
//! Hugging Face checkpoints (`config.json` + `model.safetensors` or shards) without name-mapping tables: module
//! fields carry the HF names (`model.layers.N.self_attn.q_proj`, `mlp.gate_proj`, `input_layernorm`, `lm_head`).
//!
//! ```text
//! ModelInput { input_ids, position_ids, blocked }      (from sft-collate's host batch)
//!   └─ LlamaForCausalLM::forward ─► logits [batch, seq, vocab]
//!        embed_tokens → N × (RMSNorm → GQA attention with rotate-half RoPE → RMSNorm → SwiGLU) → norm → lm_head
//! causal_lm_loss(logits, labels) ─► LossOutput { sum, count }   (shift by one, -100 ignored)
//! ```
#![deny(missing_docs)]

mod attention;
mod backend;
mod checkpoint;
mod config;
mod decoder;
mod error;
mod family;
pub mod fused;
mod generate;
mod hf_json;
mod init;
mod input;
mod kernels;
mod layout;
mod load;
mod loss;
mod mlp;
mod model;
mod presets;
mod projection;
pub mod rope;
mod safetensors_out;
mod save;
mod scaling;
pub mod softmax;

pub use attention::{AttentionBias, LlamaAttention};
pub use backend::has_extensions;
pub use checkpoint::Checkpoint;
pub use config::LlamaConfig;
pub use decoder::LlamaDecoderLayer;
pub use error::{ModelError, Result};
pub use family::{Activation, ModelFamily, SUPPORTED_ARCHITECTURES};
pub use generate::{GenerationConfig, generate};
pub use input::ModelInput;
pub use layout::{CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
pub use load::dense;
pub use loss::{ChunkedLoss, LossOptions, LossOutput, causal_lm_loss, chunked_causal_lm_loss};
pub use mlp::LlamaMlp;
pub use model::{KvCache, LlamaForCausalLM, LlamaModel, expected_shapes};
pub use presets::PRESETS;
pub use projection::{PROJECTIONS, Projection, layer_projections, projection_names};
pub use safetensors_out::{TensorEntry, write_atomic, write_safetensors};
pub use scaling::RopeScaling;
