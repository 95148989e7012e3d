//! `early_stopping`: transformers' `EarlyStoppingCallback`, its arguments and the callback.

use serde::{Deserialize, Serialize};

use crate::callback::{Callback, Metrics, TrainerControl};
use crate::error::{Result, check};
use crate::state::TrainerState;

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
    pub fn validate(&self) -> Result<()> {
        const K: &str = "early_stopping";
        check(self.early_stopping_patience >= 1, K, "early_stopping_patience", "expected a whole number >= 1")?;
        let t = self.early_stopping_threshold;
        check(t.is_finite() && t >= 0.0, K, "early_stopping_threshold", "expected a number >= 0")
    }
}

/// transformers' `EarlyStoppingCallback`: after each evaluation, the metric counts as an improvement when it is
/// better than the best so far (`TrainerState::best_metric`, from earlier evaluations) in the direction of
/// `greater_is_better` *and* differs from it by more than `early_stopping_threshold`. Otherwise the patience
/// counter grows; when it reaches `early_stopping_patience` the run stops.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    config: EarlyStoppingConfig,
    metric: String,
    greater_is_better: bool,
    /// Evaluations in a row without improvement.
    pub patience_counter: usize,
}

impl EarlyStopping {
    /// Early stopping on `metric` (such as `eval_loss`).
    pub fn new(config: EarlyStoppingConfig, metric: impl Into<String>, greater_is_better: bool) -> Self {
        Self { config, metric: metric.into(), greater_is_better, patience_counter: 0 }
    }

    /// Updates the counter for `value` against `best` (None before the first evaluation); true when the run
    /// should stop.
    pub fn observe(&mut self, value: f64, best: Option<f64>) -> bool {
        let improved = match best {
            None => true,
            Some(best) => {
                let better = if self.greater_is_better { value > best } else { value < best };
                better && (value - best).abs() > self.config.early_stopping_threshold
            }
        };
        if improved {
            self.patience_counter = 0;
        } else {
            self.patience_counter += 1;
        }
        self.patience_counter >= self.config.early_stopping_patience
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &str {
        "EarlyStoppingCallback"
    }

    fn on_evaluate(&mut self, state: &TrainerState, metrics: &mut Metrics, control: &mut TrainerControl) {
        let Some(&value) = metrics.get(&self.metric) else {
            tracing::warn!(metric = %self.metric, "early stopping: the evaluation has no such metric; not counted");
            return;
        };
        if self.observe(value, state.best_metric) {
            tracing::info!(
                step = state.global_step,
                patience = self.config.early_stopping_patience,
                metric = %self.metric,
                "early stopping"
            );
            control.should_training_stop = true;
        }
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "early_stopping_patience_counter": self.patience_counter }))
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), serde_json::Error> {
        /// What [`state`](Callback::state) writes.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Saved {
            early_stopping_patience_counter: usize,
        }
        let saved = Saved::deserialize(state)?;
        self.patience_counter = saved.early_stopping_patience_counter;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopper(patience: usize, threshold: f64) -> EarlyStopping {
        let config = EarlyStoppingConfig { early_stopping_patience: patience, early_stopping_threshold: threshold };
        EarlyStopping::new(config, "eval_loss", false)
    }

    /// Replays a metric sequence the way the trainer does (best updated after the callback, on any improvement);
    /// returns the 1-based evaluation at which the run stops.
    fn stops_at(mut stopper: EarlyStopping, values: &[f64], greater: bool) -> Option<usize> {
        let mut best: Option<f64> = None;
        for (i, &v) in values.iter().enumerate() {
            if stopper.observe(v, best) {
                return Some(i + 1);
            }
            if best.is_none_or(|b| if greater { v > b } else { v < b }) {
                best = Some(v);
            }
        }
        None
    }

    #[test]
    fn stops_after_patience_evaluations_without_improvement() {
        // 2.0 best at eval 2; evals 3, 4, 5 do not improve → stop at eval 5 with patience 3.
        assert_eq!(stops_at(stopper(3, 0.0), &[3.0, 2.0, 2.5, 2.1, 2.0, 1.0], false), Some(5));
        // An improvement resets the counter.
        assert_eq!(stops_at(stopper(2, 0.0), &[3.0, 3.1, 2.9, 3.0, 3.0], false), Some(5));
        assert_eq!(stops_at(stopper(2, 0.0), &[3.0, 2.0, 1.0], false), None);
    }

    #[test]
    fn the_threshold_is_absolute_and_strict() {
        // 1.995 improves on 2.0 by 0.005 ≤ 0.01: not an improvement (but it becomes the best).
        assert_eq!(stops_at(stopper(1, 0.01), &[2.0, 1.995], false), Some(2));
        // 1.98 improves by 0.02 > 0.01.
        assert_eq!(stops_at(stopper(1, 0.01), &[2.0, 1.98], false), None);
    }

    #[test]
    fn greater_is_better_flips_the_direction() {
        let config = EarlyStoppingConfig { early_stopping_patience: 1, early_stopping_threshold: 0.0 };
        let s = EarlyStopping::new(config, "eval_mean_token_accuracy", true);
        assert_eq!(stops_at(s.clone(), &[0.5, 0.6, 0.7], true), None);
        assert_eq!(stops_at(s, &[0.5, 0.4], true), Some(2));
    }
}
