//! `early_stopping`: transformers' `EarlyStoppingCallback` arguments.
//!
//! This section moves into `sft-train` with the trainer.

use serde::{Deserialize, Serialize};

use super::{Invalid, check};

/// Stop when the evaluation metric has not improved for a number of evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// Evaluations without improvement before stopping (transformers' default 1).
    #[serde(default = "default_patience")]
    pub early_stopping_patience: usize,
    /// How much better than the best value a metric must be to count as an improvement (absolute, ≥ 0).
    #[serde(default)]
    pub early_stopping_threshold: f64,
}

fn default_patience() -> usize {
    1
}

impl EarlyStoppingConfig {
    /// Checks ranges; errors name `early_stopping.<key>`.
    pub fn validate(&self) -> Result<(), Invalid> {
        const K: &str = "early_stopping";
        check(self.early_stopping_patience >= 1, K, "early_stopping_patience", "expected a whole number >= 1")?;
        let t = self.early_stopping_threshold;
        check(t.is_finite() && t >= 0.0, K, "early_stopping_threshold", "expected a number >= 0")
    }
}
