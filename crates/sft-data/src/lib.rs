//! # sft-data
//!
//! The first stage of the sft-rs pipeline: instruction data in, formatted examples out.
//!
//! ```text
//! SplitFiles (which files are train / validation / test)
//!   └─ FileSource: RecordSource (CSV, JSON Lines, JSON, Parquet) ─► Vec<Record>   (cells + file/row)
//!        └─ split_indices (seeded sample + train/validation/test carve)
//!             └─ Formatter: PromptFormat ─► Segments (prompt | completion, or chat turns)
//! ```
//!
//! [`load_splits`] runs the whole stage from a [`DataConfig`] (the `dataset_config` section of a run config).
//! Hub datasets are resolved to local files by `sft-hub` and the `sft` facade; this crate reads local files only.
//!
//! Design rules:
//! - formatting yields **segments**, never one string, so that the loss mask is exact by construction;
//! - every error about user data names the file and the row/line, column or config key;
//! - splits are deterministic for a seed, by an algorithm fixed in this crate ([`rng`]).
#![deny(missing_docs)]

mod config;
mod dataset;
mod error;
mod files;
pub mod format;
mod record;
pub mod rng;
pub mod sources;
mod split;

pub use config::{DataConfig, PromptTemplate, RecordFormat};
pub use dataset::{DatasetSplits, Example, load_splits, read_all};
pub use error::{DataError, Result};
pub use files::SplitFiles;
pub use format::{Formatter, Message, PromptFormat, Segments};
pub use record::{Location, Position, Record};
pub use sources::{DataFormat, FileSource, RecordSource};
pub use split::{SplitIndices, SplitSize, split_indices};
