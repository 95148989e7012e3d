//! # sft-collate
//!
//! The third stage of sft-rs: tokenized examples in, padded host-side batches out (plain vectors; making Burn
//! tensors from them is a thin edge in the trainer).
//!
//! - [`Collator`]: dynamic right padding to the longest row, `pad_to_multiple_of`, `attention_mask`, labels with
//!   [`IGNORE_INDEX`] (-100) on masked and padded positions — identical to transformers'
//!   `DataCollatorForSeq2Seq`.
//! - Packing: [`pack_best_fit_decreasing`] fills rows of `max_length` tokens; [`Collator::collate_packed`] gives
//!   per-example `position_ids` restarting at 0 and `sequence_ids`, so attention and loss never cross examples.
//! - [`batch_plan`]: sequential, shuffled or length-grouped batches per epoch, deterministic for a seed.
//! - [`BatchSource`]: a split's seeded per-epoch micro-batches, its rows arranged by [`Rows`] (one example each,
//!   or packed); [`CollateConfig`] holds the run config's batching keys (`packing`, `pad_to_multiple_of`,
//!   `group_by_length`).
#![deny(missing_docs)]

mod batch;
mod collator;
mod config;
mod error;
mod pack;
mod plan;
mod source;

pub use batch::{Batch, IGNORE_INDEX, PADDING_KEY, PackedPositions};
pub use collator::{Collate, Collator};
pub use config::{CollateConfig, Rows};
pub use error::{CollateError, Result};
pub use pack::pack_best_fit_decreasing;
pub use plan::{Sampling, batch_plan};
pub use source::BatchSource;
