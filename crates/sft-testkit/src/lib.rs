//! # sft-testkit
//!
//! What the workspace's tests share and no library should carry in its public API: [`FakeHub`], a stand-in for the
//! Hugging Face Hub on 127.0.0.1 that speaks the routes `hf-hub` reads through and `sft_hub::HubUploader` writes
//! through (no network in tests); [`Tensors`], a safetensors reader for reference outputs and written files; and
//! [`micro`], the tiny Llama fixture's directory; [`RecordingRepo`], a directory that records what is fetched; [`tensorboard::read_event_file`], a reader of
//! TensorBoard event files. `publish = false`; crates take it as a dev-dependency only.
#![deny(missing_docs)]

mod fake_hub;
mod repo;
pub mod tensorboard;
mod tensors;
mod tokenizer;
mod training;

pub use fake_hub::FakeHub;
pub use repo::RecordingRepo;
pub use tensors::{Tensors, micro, model_fixture};
pub use tokenizer::{reference_tokenizer, tokenizer_fixtures};
pub use training::{Steps, adamw_steps};
