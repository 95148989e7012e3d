//! # sft-testkit
//!
//! What the workspace's tests share and no library should carry in its public API: [`FakeHub`], a stand-in for the
//! Hugging Face Hub on 127.0.0.1 that speaks the routes `hf-hub` reads through and `sft_hub::HubUploader` writes
//! through (no network in tests); [`Tensors`], a safetensors reader for reference outputs and written files; and
//! [`micro`], the tiny Llama fixture's directory. `publish = false`; crates take it as a dev-dependency only.
#![deny(missing_docs)]

mod fake_hub;
mod tensors;
mod training;

pub use fake_hub::FakeHub;
pub use tensors::{Tensors, micro};
pub use training::{Steps, adamw_steps};
