//! `loss_curve.svg`: the training and evaluation loss against the optimizer step, drawn with `plotters`' SVG
//! backend (text stays text, so no font files are needed, and any browser shows it).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::callback::Callback;
use crate::error::{Result, TrainError, io};
use crate::keys;
use crate::state::{LogEntry, TrainerState};

/// The file name of the loss curve in `output_dir`.
pub const LOSS_CURVE_FILE: &str = "loss_curve.svg";

/// The picture's size in SVG user units (pixels).
const SIZE: (u32, u32) = (800, 500);
/// Each axis's range is the data's range widened by this fraction of it on both sides.
const MARGIN: f64 = 0.04;
/// The training loss's colour (`#1f77b4`) and the evaluation loss's (`#ff7f0e`), as matplotlib's first two.
const TRAIN: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const EVAL: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// Draws the training loss (`loss` entries of `history`) and the evaluation loss (`eval_loss` entries) against
/// their `step` and writes the picture to `path` as an 800 × 500 SVG, atomically (a temporary file in the same
/// directory, then a rename; the parent directory is created if missing).
///
/// Units: x is the optimizer step of the entry (`step`, 1-based as in `log_history`); y is the mean cross-entropy
/// in nats per supervised token. Other metrics of the entries are ignored.
///
/// What is drawn: a grid with labelled ticks, the axis titles "step" and "loss", the training loss as a 2 px
/// `#1f77b4` polyline, the evaluation loss as a 2 px `#ff7f0e` polyline with a circle of radius 4 at each point,
/// and a legend ("train loss", "eval loss", only for the series present). Points of each series are joined in step
/// order. The x axis spans the plotted steps of both series widened by 4 % of their range on each side (±1 when
/// they share one step); the y axis spans the plotted losses the same way (±max(0.1·|l|, 0.1) when they are all
/// equal to `l`).
///
/// Values that are NaN or infinite, and entries without a finite `step`, are skipped. If no entry has a finite
/// `loss` or `eval_loss` (an empty history, a run that never logged), nothing is written, any file at `path` is
/// left as it is, and the result is `Ok(())`.
///
/// # Errors
///
/// [`TrainError::Io`] naming the directory if it cannot be created, or `path` if drawing fails;
/// [`TrainError::Model`] (an I/O error naming `path`) if the file cannot be written or renamed.
pub fn write_loss_curve(path: &Path, history: &[LogEntry]) -> Result<()> {
    let train = series(history, keys::LOSS);
    let eval = series(history, keys::EVAL_LOSS);
    if train.is_empty() && eval.is_empty() {
        tracing::debug!(path = %path.display(), "no loss in the log history; no loss curve written");
        return Ok(());
    }
    let svg = draw(&train, &eval).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("drawing the loss curve: {e}")),
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    sft_model::write_atomic(path, svg.as_bytes())?;
    tracing::info!(path = %path.display(), train_points = train.len(), eval_points = eval.len(), "loss curve written");
    Ok(())
}

/// The callback that draws `output_dir/loss_curve.svg` ([`write_loss_curve`]) when a run ends normally. If it
/// cannot be written, a warning is logged: the adapter is saved by then, and a missing picture is not worth failing
/// the run for.
#[derive(Debug)]
pub struct LossCurve {
    path: PathBuf,
}

impl LossCurve {
    /// The curve of a run writing to `output_dir`.
    pub fn new(output_dir: impl AsRef<Path>) -> Self {
        Self { path: output_dir.as_ref().join(LOSS_CURVE_FILE) }
    }
}

impl Callback for LossCurve {
    fn name(&self) -> &str {
        "LossCurve"
    }

    fn on_train_end(&mut self, state: &TrainerState) {
        if let Err(error) = write_loss_curve(&self.path, &state.log_history) {
            tracing::warn!(%error, "the loss curve was not written");
        }
    }
}

/// The finite (`step`, `key`) pairs of `history`, sorted by step (stable, so equal steps keep their order).
fn series(history: &[LogEntry], key: &str) -> Vec<(f64, f64)> {
    let mut skipped = 0usize;
    let mut points: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|entry| {
            let value = *entry.get(key)?;
            match entry.get(keys::STEP) {
                Some(&step) if step.is_finite() && value.is_finite() => Some((step, value)),
                _ => {
                    skipped += 1;
                    None
                }
            }
        })
        .collect();
    if skipped > 0 {
        tracing::debug!(key, skipped, "log entries with a non-finite value or step left out of the loss curve");
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// The range of `values` (at least one, all finite), widened as [`write_loss_curve`] documents.
fn axis(values: impl Iterator<Item = f64>, equal_margin: impl Fn(f64) -> f64) -> std::ops::Range<f64> {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let margin = if max > min { MARGIN * (max - min) } else { equal_margin(min) };
    (min - margin)..(max + margin)
}

/// The SVG document of the two series (at least one non-empty).
fn draw(train: &[(f64, f64)], eval: &[(f64, f64)]) -> std::result::Result<String, Box<dyn std::error::Error>> {
    let all = || train.iter().chain(eval);
    let x = axis(all().map(|p| p.0), |_| 1.0);
    let y = axis(all().map(|p| p.1), |l| (0.1 * l.abs()).max(0.1));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart =
            ChartBuilder::on(&root).margin(20).x_label_area_size(45).y_label_area_size(65).build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .x_labels(8)
            .y_labels(6)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        if !train.is_empty() {
            chart
                .draw_series(LineSeries::new(train.iter().copied(), TRAIN.stroke_width(2)))?
                .label("train loss")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], TRAIN.stroke_width(2)));
        }
        if !eval.is_empty() {
            chart
                .draw_series(LineSeries::new(eval.iter().copied(), EVAL.stroke_width(2)))?
                .label("eval loss")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], EVAL.stroke_width(2)));
            chart.draw_series(eval.iter().map(|&point| Circle::new(point, 4, EVAL.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}
