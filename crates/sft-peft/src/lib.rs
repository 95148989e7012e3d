//! # sft-peft
//!
//! LoRA for the `sft-model` Llama, with PEFT's names, semantics and files.
//!
//! ```text
//! LlamaForCausalLM (plain) ── inject(config, seed) ──► LlamaForCausalLM<LoraLinear>
//!        ▲                                                   │  base(x) + scaling · B(A(dropout(x)))
//!        └──────────── merge_and_unload ─────────────────────┤
//!                                                            └─ save_adapter / load_adapter
//!                                                               adapter_config.json + adapter_model.safetensors
//! ```
#![deny(missing_docs)]

mod config;
mod dropout;
mod error;
mod files;
mod inject;
mod lora;
mod merge;
pub mod nf4;
mod quantization;
mod stream_merge;
mod target;

pub use config::{ALL_LINEAR, InitLoraWeights, LayerSelection, LoraBias, LoraConfig, TargetModules};
pub use dropout::{seed_dropout, seed_dropout_tokens};
pub use error::{PeftError, Result};
pub use files::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapter_key, load_adapter, read_adapter_config, save_adapter};
pub use inject::{ParameterCount, SavedModule, inject, modules_to_save, parameter_count};
pub use lora::{BaseLinear, LoraAdapter, LoraLinear};
pub use merge::{merge, merge_and_unload, unmerge};
pub use quantization::{ComputeDtype, QuantType, QuantizationConfig};
pub use stream_merge::{MAX_SHARD_BYTES, MergedCheckpoint, merge_checkpoint};
pub use target::{
    LLAMA_DEFAULT_TARGETS, NOT_ADAPTABLE, PHI3_DEFAULT_TARGETS, default_targets, layer_index, matches_projection,
    select_targets,
};
