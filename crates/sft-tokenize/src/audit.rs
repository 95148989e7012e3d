//! The mask audit: an example rendered with its supervised tokens marked, to see exactly what trains.

use std::fmt;

use crate::encode::TokenizedExample;
use crate::error::TokenizeError;
use crate::tokenizer::SftTokenizer;

/// A run of consecutive tokens with the same mask value, decoded to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSpan {
    /// The decoded text of the run (special tokens included).
    pub text: String,
    /// Whether these tokens carry loss.
    pub supervised: bool,
    /// Number of tokens in the run.
    pub tokens: usize,
}

/// An example as runs of masked and supervised text. `Display` writes masked text as is and supervised text
/// between `⟦` and `⟧`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskAudit {
    /// The runs, in order.
    pub spans: Vec<AuditSpan>,
}

impl MaskAudit {
    /// Builds the audit of `example`. Runs are decoded separately, so a multi-byte character split between a
    /// masked and a supervised token shows as a replacement character at the run boundary.
    pub fn new(tokenizer: &SftTokenizer, example: &TokenizedExample) -> Result<Self, TokenizeError> {
        let mut spans = Vec::new();
        let mut start = 0;
        let n = example.len();
        for t in 1..=n {
            if t == n || example.loss_mask[t] != example.loss_mask[start] {
                spans.push(AuditSpan {
                    text: tokenizer.decode(&example.input_ids[start..t])?,
                    supervised: example.loss_mask[start],
                    tokens: t - start,
                });
                start = t;
            }
        }
        Ok(Self { spans })
    }

    /// Supervised tokens in the example.
    pub fn supervised_tokens(&self) -> usize {
        self.spans.iter().filter(|s| s.supervised).map(|s| s.tokens).sum()
    }
}

impl fmt::Display for MaskAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for span in &self.spans {
            if span.supervised {
                write!(f, "⟦{}⟧", span.text)?;
            } else {
                f.write_str(&span.text)?;
            }
        }
        Ok(())
    }
}
