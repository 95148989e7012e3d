//! # sft-tokenize
//!
//! The second stage of sft-rs: formatted [`Segments`](sft_data::Segments) in, token ids and a loss mask out.
//!
//! ```text
//! SftTokenizer (tokenizer.json + tokenizer_config.json: BOS/EOS/PAD, chat_template)
//!   └─ Encoder: Encode ─► Outcome::Kept(TokenizedExample { input_ids, loss_mask }) | Outcome::Dropped(reason)
//!        encode_all: rayon over a split ─► EncodedSplit { examples, report }
//! MaskAudit: an example with its supervised tokens marked
//! ```
//!
//! The rules, each the fix of a bug common in SFT pipelines:
//! - the loss boundary is exact by construction (the prompt is tokenized on its own), not found by searching
//!   marker tokens; the seed's marker mode exists, matched in text, and drops examples without the marker;
//! - BOS comes from the tokenizer's post-processor exactly once (never again when a chat template writes it);
//! - EOS is appended and supervised, so the model learns to stop; pad ≠ EOS unless the tokenizer has no pad token;
//! - an example left with no supervised token (truncation, empty completion) is dropped and counted;
//! - the `-100` label convention is not used here; masks are typed (`Vec<bool>`).
#![deny(missing_docs)]

mod audit;
mod chat;
mod config;
mod encode;
mod error;
mod special;
mod tokenizer;

pub use audit::{AuditSpan, MaskAudit};
pub use chat::{ChatOptions, ChatTemplate, Turns};
pub use config::TokenizeConfig;
pub use encode::{
    DropReason, Encode, EncodeOptions, EncodeReport, EncodedSplit, Encoder, Masking, Outcome, TokenizedExample,
    TruncationMode,
};
pub use error::{Result, TokenizeError};
pub use special::{SpecialToken, SpecialTokenOverrides, SpecialTokens};
pub use tokenizer::{CHAT_TEMPLATE_FILE, SftTokenizer, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, TOKENIZER_FILES};
