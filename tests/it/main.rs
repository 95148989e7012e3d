//! Integration tests of the `sft` facade: the run config and data loading from local paths and the Hub.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr)]

mod cli;
mod config;
mod dataset;
mod model;
mod push;
mod tokenize;
mod train;
#[cfg(feature = "wgpu")]
mod wgpu;
