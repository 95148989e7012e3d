//! The reporting layer: what a run writes for people to follow it, attached to the loop only through
//! [`Callback`](crate::Callback). [`Trainer::new`](crate::Trainer::new) registers [`MetricsLog`]
//! (`metrics.jsonl`) and [`LossCurve`] (`loss_curve.svg`) first; the facade adds [`TensorBoardCallback`] with
//! `report_to: "tensorboard"`.
//!
//! A reporter that cannot write logs a warning and stops writing; the run goes on (its history is also in
//! `trainer_state.json` of every checkpoint and of the output directory).

mod metrics;
mod plot;
mod tensorboard;

pub use metrics::{EVAL_METRICS, METRICS_FILE, MetricsFile, MetricsLog};
pub use plot::{LOSS_CURVE_FILE, LossCurve, write_loss_curve};
pub use tensorboard::{TensorBoardCallback, TensorBoardWriter};
