//! Segments → `input_ids` + `loss_mask`, with truncation and drops of examples that would teach nothing.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sft_data::{Example, Location, Segments};

use crate::chat::Turns;
use crate::error::{Result, TokenizeError};
use crate::tokenizer::SftTokenizer;

/// One tokenized example: token ids and, per token, whether it is a prediction target.
///
/// `loss_mask[t]` is `true` when token `t` carries loss, i.e. the model's output at position `t - 1` is trained to
/// predict `input_ids[t]`. Position 0 is never a target (nothing precedes it), so `loss_mask[0]` is always
/// `false`; this is also what keeps packed examples from learning across their boundaries. The `-100` label
/// convention exists only in `sft-collate`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenizedExample {
    /// Token ids, BOS (if the tokenizer adds one) first, EOS last unless truncated away.
    pub input_ids: Vec<u32>,
    /// Per token: carries loss.
    pub loss_mask: Vec<bool>,
}

impl TokenizedExample {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    /// Number of supervised tokens.
    pub fn num_supervised(&self) -> usize {
        self.loss_mask.iter().filter(|&&m| m).count()
    }
}

/// Which tokens carry loss.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Masking {
    /// The completion (and EOS) of text examples; the assistant turns of chat examples. The boundary is exact by
    /// construction: the whole text is tokenized once with byte offsets and split where the prompt's text ends; if
    /// a token straddles that point (the tokenizer merged across it), the example is built from the prompt's tokens
    /// followed by the completion's instead (counted as a boundary merge), so no prompt text ever carries loss.
    CompletionOnly,
    /// Every token but the first (the seed's `assistant_only_masking: false`).
    FullSequence,
    /// Everything up to and including the first occurrence of `response_template` in the example's *text* is
    /// masked; tokens starting after it carry loss. An example without the marker is dropped and counted, never
    /// trained on in full.
    Marker {
        /// The marker text, e.g. `"### Output\n"`.
        response_template: String,
    },
}

/// Which end a too-long example keeps (TRL's `truncation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncationMode {
    /// Keep the first `max_length` tokens (the completion's end and EOS may be cut).
    #[default]
    KeepStart,
    /// Keep the last `max_length` tokens (the prompt's start, BOS included, may be cut).
    KeepEnd,
}

/// Encoding settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Maximum tokens per example, EOS included.
    pub max_length: usize,
    /// Which end to keep when truncating.
    pub truncation_mode: TruncationMode,
    /// Which tokens carry loss.
    pub masking: Masking,
}

/// Why an example was dropped instead of trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropReason {
    /// The completion is empty or whitespace.
    EmptyCompletion,
    /// No token carries loss after masking and truncation (e.g. the prompt fills `max_length`).
    NoSupervisedTokens,
    /// Marker mode, and the response template does not occur in the example.
    MarkerNotFound,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::EmptyCompletion => "empty completion",
            Self::NoSupervisedTokens => "no supervised tokens (prompt fills max_length?)",
            Self::MarkerNotFound => "response template not found",
        })
    }
}

/// The result of encoding one example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Trained on.
    Kept {
        /// The tokens and mask.
        example: TokenizedExample,
        /// Whether it was cut to `max_length`.
        truncated: bool,
        /// Whether the prompt's tokens were not a prefix of the whole text's (the tokens then come from the
        /// separately tokenized prompt and completion).
        boundary_merged: bool,
    },
    /// Not trained on.
    Dropped(DropReason),
}

/// The encoding seam: one formatted example in, tokens and loss mask (or a drop) out.
pub trait Encode {
    /// Encodes one example; errors name its file and row.
    fn encode(&self, example: &Example) -> Result<Outcome>;
}

/// Encodes examples with an [`SftTokenizer`] and [`EncodeOptions`].
#[derive(Debug, Clone, Copy)]
pub struct Encoder<'a> {
    tokenizer: &'a SftTokenizer,
    options: &'a EncodeOptions,
}

/// The tokenized examples of one split and what happened to the others.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedSplit {
    /// The kept examples, in input order.
    pub examples: Vec<TokenizedExample>,
    /// For each kept example, its index in the input.
    pub rows: Vec<usize>,
    /// Counts.
    pub report: EncodeReport,
}

/// What encoding a split did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EncodeReport {
    /// Examples in.
    pub total: usize,
    /// Examples kept.
    pub kept: usize,
    /// Kept examples that were truncated.
    pub truncated: usize,
    /// Kept examples whose prompt tokens were not a prefix of the whole text's tokens.
    pub boundary_merged: usize,
    /// Dropped examples by reason.
    pub dropped: BTreeMap<DropReason, usize>,
    /// Tokens in kept examples.
    pub tokens: usize,
    /// Supervised tokens in kept examples.
    pub supervised_tokens: usize,
    /// Where each dropped example came from, and why.
    #[serde(skip)]
    pub dropped_examples: Vec<(Location, DropReason)>,
}

impl EncodeReport {
    /// Total dropped examples.
    pub fn num_dropped(&self) -> usize {
        self.dropped.values().sum()
    }
}

impl<'a> Encoder<'a> {
    /// An encoder; `options.max_length` must be ≥ 1.
    pub fn new(tokenizer: &'a SftTokenizer, options: &'a EncodeOptions) -> Self {
        Self { tokenizer, options }
    }

    /// Encodes every example on all cores (rayon), keeping input order; drops are counted in the report and
    /// logged. The first error (by input order) stops the whole split.
    pub fn encode_all(&self, examples: &[Example]) -> Result<EncodedSplit> {
        self.encode_all_observed(examples, &|| {})
    }

    /// [`encode_all`](Self::encode_all), calling `done` once per example encoded (from the worker threads, in no
    /// particular order), for progress displays.
    pub fn encode_all_observed(&self, examples: &[Example], done: &(dyn Fn() + Sync)) -> Result<EncodedSplit> {
        let _span = tracing::info_span!("encode", examples = examples.len()).entered();
        let outcomes: Vec<Outcome> = examples
            .par_iter()
            .map(|e| {
                let outcome = self.encode(e);
                done();
                outcome
            })
            .collect::<Result<_>>()?;
        let mut split =
            EncodedSplit { report: EncodeReport { total: examples.len(), ..Default::default() }, ..Default::default() };
        for (row, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Outcome::Kept { example, truncated, boundary_merged } => {
                    let report = &mut split.report;
                    report.kept += 1;
                    report.truncated += usize::from(truncated);
                    report.boundary_merged += usize::from(boundary_merged);
                    report.tokens += example.len();
                    report.supervised_tokens += example.num_supervised();
                    split.examples.push(example);
                    split.rows.push(row);
                }
                Outcome::Dropped(reason) => {
                    *split.report.dropped.entry(reason).or_default() += 1;
                    split.report.dropped_examples.push((examples[row].location.clone(), reason));
                }
            }
        }
        let report = &split.report;
        if report.num_dropped() > 0 {
            tracing::warn!(dropped = report.num_dropped(), reasons = ?report.dropped, total = report.total, "examples dropped");
        }
        tracing::info!(
            kept = report.kept,
            truncated = report.truncated,
            tokens = report.tokens,
            supervised_tokens = report.supervised_tokens,
            "tokenized"
        );
        Ok(split)
    }

    fn text_ids(&self, text: &str, special: bool, location: &Location) -> Result<Vec<u32>> {
        self.tokenizer.ids(text, special).map_err(|e| in_example(e, location))
    }

    fn completion(&self, prompt: &str, completion: &str, location: &Location) -> Result<Outcome> {
        if completion.trim().is_empty() {
            return Ok(Outcome::Dropped(DropReason::EmptyCompletion));
        }
        let text = format!("{prompt}{completion}");
        let (ids, mask, merged) = match &self.options.masking {
            Masking::CompletionOnly => {
                // One encoding of the whole text, split at the prompt's end by byte offsets: tokens ending at or
                // before it are the prompt (so are the post-processor's specials, which have empty spans), tokens
                // starting at or after it the completion. A token straddling the boundary means the tokenizer
                // merged across it; then the prompt and completion are tokenized apart and concatenated.
                let encoding = self.tokenizer.encoding(&text, true).map_err(|e| in_example(e, location))?;
                let boundary = prompt.len();
                let mut n = 0;
                let mut straddles = false;
                for (&(start, end), &special) in encoding.get_offsets().iter().zip(encoding.get_special_tokens_mask()) {
                    let in_prompt = (special == 1 && start == end) || (start < end && end <= boundary);
                    if !in_prompt {
                        straddles = start < boundary;
                        break;
                    }
                    n += 1;
                }
                if straddles {
                    let mut ids = self.text_ids(prompt, true, location)?;
                    let n = ids.len();
                    ids.extend(self.text_ids(completion, false, location)?);
                    let mask = (0..ids.len()).map(|t| t >= n).collect();
                    (ids, mask, true)
                } else {
                    let ids = encoding.get_ids().to_vec();
                    let mask = (0..ids.len()).map(|t| t >= n).collect();
                    (ids, mask, false)
                }
            }
            Masking::FullSequence => {
                let ids = self.text_ids(&text, true, location)?;
                let mask = vec![true; ids.len()];
                (ids, mask, false)
            }
            Masking::Marker { response_template } => {
                let Some(at) = text.find(response_template.as_str()) else {
                    return Ok(Outcome::Dropped(DropReason::MarkerNotFound));
                };
                let boundary = at + response_template.len();
                let encoding = self.tokenizer.encoding(&text, true).map_err(|e| in_example(e, location))?;
                let mask =
                    encoding.get_offsets().iter().map(|&(start, end)| end > start && start >= boundary).collect();
                (encoding.get_ids().to_vec(), mask, false)
            }
        };
        Ok(self.finish(ids, mask, true, merged))
    }

    fn chat(&self, turns: Turns<'_>, last_is_target: bool, location: &Location) -> Result<Outcome> {
        if let Masking::Marker { .. } = self.options.masking {
            return Err(TokenizeError::Unsupported {
                location: location.clone(),
                message: "a response_template (marker masking) applies to text examples; conversations are masked \
                          by assistant turns"
                    .into(),
            });
        }
        let template = self.tokenizer.chat_template().ok_or_else(|| TokenizeError::ChatTemplate {
            location: format!("{location}: "),
            message: "the tokenizer has no chat_template (tokenizer_config.json or chat_template.jinja), which \
                      conversational data needs"
                .into(),
        })?;
        let (text, spans) = template.spans(turns).map_err(|e| match e {
            TokenizeError::ChatTemplate { message, .. } => {
                TokenizeError::ChatTemplate { location: format!("{location}: "), message }
            }
            other => other,
        })?;
        // A template that writes the BOS text itself must not get a second BOS from the post-processor.
        let bos = template.bos_text();
        let add_special = bos.is_empty() || !text.starts_with(bos);
        let encoding = self.tokenizer.encoding(&text, add_special).map_err(|e| in_example(e, location))?;
        let full = self.options.masking == Masking::FullSequence;
        let mask = encoding
            .get_offsets()
            .iter()
            .map(|&(start, end)| full || (end > start && spans.iter().any(|&(s, e)| start >= s && start < e)))
            .collect();
        Ok(self.finish(encoding.get_ids().to_vec(), mask, full || last_is_target, false))
    }

    /// Appends EOS (supervised if `eos_supervised`) unless already last, clears position 0, truncates, and drops
    /// the example if nothing carries loss.
    fn finish(&self, mut ids: Vec<u32>, mut mask: Vec<bool>, eos_supervised: bool, merged: bool) -> Outcome {
        let eos = self.tokenizer.special().eos.id;
        if ids.last() != Some(&eos) {
            ids.push(eos);
            mask.push(eos_supervised);
        }
        let max = self.options.max_length;
        let truncated = ids.len() > max;
        if truncated {
            match self.options.truncation_mode {
                TruncationMode::KeepStart => {
                    ids.truncate(max);
                    mask.truncate(max);
                }
                TruncationMode::KeepEnd => {
                    let cut = ids.len() - max;
                    ids.drain(..cut);
                    mask.drain(..cut);
                }
            }
        }
        if let Some(first) = mask.first_mut() {
            *first = false;
        }
        if !mask.contains(&true) {
            return Outcome::Dropped(DropReason::NoSupervisedTokens);
        }
        Outcome::Kept {
            example: TokenizedExample { input_ids: ids, loss_mask: mask },
            truncated,
            boundary_merged: merged,
        }
    }
}

impl Encode for Encoder<'_> {
    fn encode(&self, example: &Example) -> Result<Outcome> {
        let location = &example.location;
        match &example.segments {
            Segments::Completion { prompt, completion } => self.completion(prompt, completion, location),
            Segments::Chat { messages } => {
                let last = messages.last().is_some_and(|m| m.is_assistant());
                self.chat(Turns::Chat(messages), last, location)
            }
            Segments::ChatCompletion { prompt, completion } => {
                self.chat(Turns::PromptCompletion(prompt, completion), true, location)
            }
            _ => Err(TokenizeError::Unsupported { location: location.clone(), message: "unknown segment kind".into() }),
        }
    }
}

/// A tokenizer failure inside an example, with the example's place.
fn in_example(error: TokenizeError, location: &Location) -> TokenizeError {
    match error {
        TokenizeError::Tokenizer { source, .. } => TokenizeError::Encode { location: location.clone(), source },
        other => other,
    }
}
