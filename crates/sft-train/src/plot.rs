//! `loss_curve.png`: the training and evaluation loss against the optimizer step, drawn without a plotting library
//! (a small RGB rasteriser, a built-in 5×7 bitmap font, and the `png` encoder) so it needs no fonts or system
//! libraries.

mod canvas;
mod font;

use std::path::Path;

use canvas::{Canvas, Rect, Rgb};

use crate::error::{Result, TrainError, io};
use crate::keys;
use crate::state::LogEntry;

/// The file name of the loss curve in `output_dir`.
pub const LOSS_CURVE_FILE: &str = "loss_curve.png";

const WIDTH: usize = 800;
const HEIGHT: usize = 500;
/// The plot area (inclusive bounds); the documented contract of [`write_loss_curve`].
const PLOT: Rect = Rect { left: 100, top: 40, right: 779, bottom: 439 };
/// Each axis's range is the data's range widened by this fraction of it on both sides.
const MARGIN: f64 = 0.04;
/// Font pixels are `SCALE` × `SCALE` image pixels (so glyphs are 10 × 14).
const SCALE: i64 = 2;

const WHITE: Rgb = Rgb(255, 255, 255);
const GRID: Rgb = Rgb(230, 230, 230);
const FRAME: Rgb = Rgb(64, 64, 64);
const INK: Rgb = Rgb(34, 34, 34);
const TRAIN: Rgb = Rgb(0x1f, 0x77, 0xb4);
const EVAL: Rgb = Rgb(0xff, 0x7f, 0x0e);
/// Polyline thickness and marker side, in pixels.
const LINE_WIDTH: i64 = 2;
const MARKER: i64 = 7;

/// Draws the training loss (`loss` entries of `history`) and the evaluation loss (`eval_loss` entries) against
/// their `step` and writes the picture to `path` as an 800 × 500 8-bit RGB PNG, atomically (a temporary file in
/// the same directory, then a rename; the parent directory is created if missing).
///
/// Units: x is the optimizer step of the entry (`step`, 1-based as in `log_history`); y is the mean cross-entropy
/// in nats per supervised token. Other metrics of the entries are ignored.
///
/// What is drawn, on a white background: a light grey grid and labelled ticks, the axis titles "step" and
/// "loss", the training loss as a 2 px blue (`#1f77b4`) polyline, the evaluation loss as a 2 px orange
/// (`#ff7f0e`) polyline with 7 × 7 px square markers at its points, and a legend ("train loss", "eval loss", only
/// for the series present) in the band above the plot area. Points of each series are joined in
/// step order; a series with one point is drawn as its marker alone. Tick spacing is the smallest of 1, 2 or
/// 5 × 10^k (k ≥ 0 on the step axis) that is at least a fifth of the axis's span, with a tick at each of its
/// multiples on the axis (2 to 6 ticks).
///
/// Values that are NaN or infinite, and entries without a finite `step`, are skipped. If no entry has a finite
/// `loss` or `eval_loss` (an empty history, a run that never logged), nothing is written, any file at `path` is
/// left as it is, and the result is `Ok(())`.
///
/// Axis mapping (rows count from the top of the image): the plot area is columns 100..=779 and rows 40..=439.
/// The x axis spans `[s_min − m, s_max + m]`, where `s_min`, `s_max` are the smallest and largest step among the
/// plotted points of both series and `m = 0.04 · (s_max − s_min)` (`m = 1` when all points share one step); the y
/// axis spans `[l_min − m, l_max + m]` over the plotted losses of both series the same way (`m = max(0.1·|l|, 0.1)`
/// when they are all equal to `l`). A point maps to the pixel column `100 + round((step − x_lo) / (x_hi − x_lo)
/// · 679)` and row `439 − round((loss − y_lo) / (y_hi − y_lo) · 399)` (`round` rounds half away from zero).
///
/// # Errors
///
/// [`TrainError::Io`] naming the directory if it cannot be created, or `path` if the PNG cannot be encoded;
/// [`TrainError::Model`] (an I/O error naming `path`) if the file cannot be written or renamed.
pub fn write_loss_curve(path: &Path, history: &[LogEntry]) -> Result<()> {
    let train = series(history, keys::LOSS);
    let eval = series(history, keys::EVAL_LOSS);
    if train.is_empty() && eval.is_empty() {
        tracing::debug!(path = %path.display(), "no loss in the log history; no loss curve written");
        return Ok(());
    }
    let png =
        draw(&train, &eval).encode_png().map_err(|e| TrainError::Io { path: path.to_path_buf(), source: e.into() })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    sft_model::write_atomic(path, &png)?;
    tracing::info!(path = %path.display(), train_points = train.len(), eval_points = eval.len(), "loss curve written");
    Ok(())
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

/// A linear map from a value range onto a pixel range.
#[derive(Debug, Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    /// The pixel of `lo` and of `hi` (a column, or a row: then `pixel_hi < pixel_lo`).
    pixel_lo: i64,
    pixel_hi: i64,
    /// Steps are integers: no tick spacing below 1.
    integer: bool,
}

impl Axis {
    /// The axis over `values` (at least one, all finite), widened as [`write_loss_curve`] documents.
    fn fit(values: impl Iterator<Item = f64>, pixels: (i64, i64), integer: bool) -> Self {
        let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let margin = if max > min {
            MARGIN * (max - min)
        } else if integer {
            1.0
        } else {
            (0.1 * min.abs()).max(0.1)
        };
        Self { lo: min - margin, hi: max + margin, pixel_lo: pixels.0, pixel_hi: pixels.1, integer }
    }

    fn pixel(&self, value: f64) -> i64 {
        let t = (value - self.lo) / (self.hi - self.lo);
        self.pixel_lo + (t * (self.pixel_hi - self.pixel_lo) as f64).round() as i64
    }

    fn ticks(&self) -> (f64, Vec<f64>) {
        nice_ticks(self.lo, self.hi, self.integer)
    }
}

/// The tick spacing and tick values of an axis spanning `[lo, hi]`.
///
/// The rule: the spacing is the smallest number of the form 1, 2 or 5 × 10^k (k any integer; k ≥ 0 when
/// `integer`) that is at least `(hi − lo) / 5`, and the ticks are its multiples inside `[lo, hi]` — so an axis
/// has 2 to 6 ticks (no more than 6 because the spacing is at least a fifth of the span; at least 2 because
/// consecutive spacings differ by at most 2.5×, so the span is more than two spacings). For example `[0, 210]` →
/// spacing 50, ticks 0, 50, 100, 150, 200; `[1.3, 8.4]` → spacing 2, ticks 2, 4, 6, 8. An empty or non-finite
/// range has no ticks.
fn nice_ticks(lo: f64, hi: f64, integer: bool) -> (f64, Vec<f64>) {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return (f64::NAN, Vec::new());
    }
    let raw = (hi - lo) / 5.0;
    let mut k = raw.log10().floor() as i32;
    if integer {
        k = k.max(0);
    }
    // A tolerance of one part in 10^9 keeps a raw spacing of exactly 2 (say) from rounding up to 5.
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * 10f64.powi(k))
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * 10f64.powi(k));
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).take(16).map(|i| i as f64 * step).collect();
    (step, ticks)
}

/// The label of tick `value` on an axis with tick spacing `step` (1, 2 or 5 × 10^k): fixed-point with the
/// decimals the spacing needs (`0.25`, `150`), or scientific (`1.5e-5`, `2e6`) when the spacing is below 10^-4
/// or the value is 10^6 or more in magnitude.
fn tick_label(value: f64, step: f64) -> String {
    let k = (step.log10() + 1e-9).floor() as i32;
    if value == 0.0 {
        return "0".into();
    }
    if k >= -4 && value.abs() < 1e6 {
        return format!("{:.*}", (-k).max(0) as usize, value);
    }
    let exponent = (value.abs().log10() + 1e-9).floor() as i32;
    format!("{:.*e}", (exponent - k).clamp(0, 6) as usize, value)
}

/// The picture of the two series (not both empty).
fn draw(train: &[(f64, f64)], eval: &[(f64, f64)]) -> Canvas {
    let points = || train.iter().chain(eval);
    let x = Axis::fit(points().map(|p| p.0), (PLOT.left, PLOT.right), true);
    let y = Axis::fit(points().map(|p| p.1), (PLOT.bottom, PLOT.top), false);
    let mut canvas = Canvas::new(WIDTH, HEIGHT, WHITE);
    let text_height = Canvas::text_height(SCALE);

    // Grid, tick marks and tick labels.
    let (x_step, x_ticks) = x.ticks();
    for &tick in &x_ticks {
        let column = x.pixel(tick);
        canvas.fill(Rect { left: column, top: PLOT.top, right: column, bottom: PLOT.bottom }, GRID);
        canvas.fill(Rect { left: column, top: PLOT.bottom + 1, right: column, bottom: PLOT.bottom + 5 }, FRAME);
        let label = tick_label(tick, x_step);
        canvas.text(column - Canvas::text_width(&label, SCALE) / 2, PLOT.bottom + 10, &label, SCALE, INK);
    }
    let (y_step, y_ticks) = y.ticks();
    for &tick in &y_ticks {
        let row = y.pixel(tick);
        canvas.fill(Rect { left: PLOT.left, top: row, right: PLOT.right, bottom: row }, GRID);
        canvas.fill(Rect { left: PLOT.left - 5, top: row, right: PLOT.left - 1, bottom: row }, FRAME);
        let label = tick_label(tick, y_step);
        let left = PLOT.left - 9 - Canvas::text_width(&label, SCALE);
        canvas.text(left, row - text_height / 2, &label, SCALE, INK);
    }

    // The series, clipped to the inside of the frame.
    canvas.set_clip(Some(Rect {
        left: PLOT.left + 1,
        top: PLOT.top + 1,
        right: PLOT.right - 1,
        bottom: PLOT.bottom - 1,
    }));
    let pixels = |series: &[(f64, f64)]| -> Vec<(i64, i64)> {
        series.iter().map(|&(step, loss)| (x.pixel(step), y.pixel(loss))).collect()
    };
    let (train_pixels, eval_pixels) = (pixels(train), pixels(eval));
    polyline(&mut canvas, &train_pixels, TRAIN, train_pixels.len() == 1);
    polyline(&mut canvas, &eval_pixels, EVAL, true);
    canvas.set_clip(None);

    // The frame, the legend and the axis titles.
    for side in [
        Rect { bottom: PLOT.top, ..PLOT },
        Rect { top: PLOT.bottom, ..PLOT },
        Rect { right: PLOT.left, ..PLOT },
        Rect { left: PLOT.right, ..PLOT },
    ] {
        canvas.fill(side, FRAME);
    }
    legend(&mut canvas, !train.is_empty(), !eval.is_empty());
    let title_width = Canvas::text_width("step", SCALE);
    canvas.text((PLOT.left + PLOT.right - title_width) / 2, PLOT.bottom + 36, "step", SCALE, INK);
    let title_width = Canvas::text_width("loss", SCALE);
    canvas.text_up(12, (PLOT.top + PLOT.bottom + title_width) / 2, "loss", SCALE, INK);
    canvas
}

/// Joins `points` with a 2 px line, with a square marker at each point when `markers`.
fn polyline(canvas: &mut Canvas, points: &[(i64, i64)], color: Rgb, markers: bool) {
    for pair in points.windows(2) {
        canvas.line(pair[0], pair[1], LINE_WIDTH, color);
    }
    if markers {
        for &(px, py) in points {
            canvas.square(px, py, MARKER, color);
        }
    }
}

/// The legend in the band above the plot area, right-aligned with it: a line sample and the label per series.
fn legend(canvas: &mut Canvas, train: bool, eval: bool) {
    const SAMPLE: i64 = 28;
    let entries: Vec<(&str, Rgb, bool)> = [(train, ("train loss", TRAIN, false)), (eval, ("eval loss", EVAL, true))]
        .into_iter()
        .filter_map(|(present, entry)| present.then_some(entry))
        .collect();
    let width = |label: &str| SAMPLE + 8 + Canvas::text_width(label, SCALE);
    let total: i64 = entries.iter().map(|e| width(e.0)).sum::<i64>() + 24 * (entries.len() as i64 - 1).max(0);
    let middle = PLOT.top / 2;
    let mut left = PLOT.right - total;
    for (label, color, marker) in entries {
        canvas.line((left, middle), (left + SAMPLE - 1, middle), LINE_WIDTH, color);
        if marker {
            canvas.square(left + SAMPLE / 2, middle, MARKER, color);
        }
        canvas.text(left + SAMPLE + 8, middle - Canvas::text_height(SCALE) / 2, label, SCALE, INK);
        left += width(label) + 24;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_of_0_to_210_are_multiples_of_50() {
        // raw = 210 / 5 = 42 → 50 (1·10, 2·10 < 42 ≤ 5·10); multiples of 50 in [0, 210].
        assert_eq!(nice_ticks(0.0, 210.0, true), (50.0, vec![0.0, 50.0, 100.0, 150.0, 200.0]));
    }

    #[test]
    fn ticks_of_1_3_to_8_4_are_even_numbers() {
        // raw = 7.1 / 5 = 1.42 → 2 (1 < 1.42 ≤ 2); multiples of 2 in [1.3, 8.4].
        assert_eq!(nice_ticks(1.3, 8.4, false), (2.0, vec![2.0, 4.0, 6.0, 8.0]));
    }

    #[test]
    fn ticks_of_small_and_negative_ranges() {
        // raw = 0.02 / 5 = 0.004 → 0.005; multiples in [2.31, 2.33]: 2.310, 2.315, 2.320, 2.325, 2.330.
        let (step, ticks) = nice_ticks(2.31, 2.33, false);
        assert!((step - 0.005).abs() < 1e-15);
        let expected = [2.310, 2.315, 2.320, 2.325, 2.330];
        assert_eq!(ticks.len(), expected.len(), "{ticks:?}");
        assert!(ticks.iter().zip(expected).all(|(t, e)| (t - e).abs() < 1e-12), "{ticks:?}");
        // raw = 6 / 5 = 1.2 → 2; the ticks straddle zero.
        assert_eq!(nice_ticks(-3.0, 3.0, false), (2.0, vec![-2.0, 0.0, 2.0]));
        // raw exactly 2 stays 2 (not 5).
        assert_eq!(nice_ticks(0.0, 10.0, false), (2.0, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]));
    }

    #[test]
    fn step_ticks_are_whole_numbers() {
        // One step (say 7) gives the axis [6, 8]: raw 0.4 would be 0.5, but steps tick by at least 1.
        assert_eq!(nice_ticks(6.0, 8.0, true), (1.0, vec![6.0, 7.0, 8.0]));
        assert_eq!(nice_ticks(6.0, 8.0, false).0, 0.5);
    }

    #[test]
    fn degenerate_ranges_have_no_ticks() {
        assert!(nice_ticks(1.0, 1.0, false).1.is_empty());
        assert!(nice_ticks(2.0, 1.0, false).1.is_empty());
        assert!(nice_ticks(f64::NAN, 1.0, false).1.is_empty());
        assert!(nice_ticks(0.0, f64::INFINITY, false).1.is_empty());
    }

    #[test]
    fn every_range_has_two_to_six_ticks() {
        let mut lo = -3.7e-3;
        for i in 0..500 {
            let hi = lo + 10f64.powf(-6.0 + i as f64 * 0.025);
            let n = nice_ticks(lo, hi, false).1.len();
            assert!((2..=6).contains(&n), "[{lo}, {hi}]: {n} ticks");
            lo += 0.37;
        }
    }

    #[test]
    fn tick_labels_carry_the_decimals_of_the_spacing() {
        assert_eq!(tick_label(150.0, 50.0), "150");
        assert_eq!(tick_label(3.0 * 0.1, 0.1), "0.3");
        assert_eq!(tick_label(2.315, 0.005), "2.315");
        assert_eq!(tick_label(-2.0, 2.0), "-2");
        assert_eq!(tick_label(0.0, 0.25), "0");
        assert_eq!(tick_label(1.5e-5, 5e-6), "1.5e-5");
        assert_eq!(tick_label(2e6, 1e6), "2e6");
        assert_eq!(tick_label(2.5e6, 5e5), "2.5e6");
    }

    #[test]
    fn axis_maps_its_ends_to_its_pixels_and_widens_by_the_margin() {
        let x = Axis::fit([1.0, 101.0].into_iter(), (PLOT.left, PLOT.right), true);
        assert_eq!((x.lo, x.hi), (-3.0, 105.0));
        assert_eq!((x.pixel(x.lo), x.pixel(x.hi)), (PLOT.left, PLOT.right));
        let y = Axis::fit([2.0].into_iter(), (PLOT.bottom, PLOT.top), false);
        assert!((y.lo - 1.8).abs() < 1e-12 && (y.hi - 2.2).abs() < 1e-12, "{y:?}");
        // 1.9 is a quarter up [1.8, 2.2]: 439 − round(99.75); 2.0 is half-way, a tie float rounding may break.
        assert_eq!(y.pixel(1.9), PLOT.bottom - 100);
        assert!((PLOT.bottom - 200..=PLOT.bottom - 199).contains(&y.pixel(2.0)));
        let one = Axis::fit([7.0].into_iter(), (PLOT.left, PLOT.right), true);
        assert_eq!((one.lo, one.hi), (6.0, 8.0));
    }

    #[test]
    fn series_skips_non_finite_values_and_sorts_by_step() {
        let entry = |pairs: &[(&str, f64)]| pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect::<LogEntry>();
        let history = [
            entry(&[("step", 3.0), ("loss", 1.0)]),
            entry(&[("step", 1.0), ("loss", 2.0)]),
            entry(&[("step", 2.0), ("loss", f64::NAN)]),
            entry(&[("step", f64::INFINITY), ("loss", 1.5)]),
            entry(&[("loss", 1.5)]),
            entry(&[("step", 4.0), ("eval_loss", 1.2)]),
        ];
        assert_eq!(series(&history, "loss"), [(1.0, 2.0), (3.0, 1.0)]);
        assert_eq!(series(&history, "eval_loss"), [(4.0, 1.2)]);
    }

    #[test]
    fn a_single_point_is_a_marker_at_the_centre_of_the_plot_area() {
        // x: [4, 6] → column 100 + round(0.5 · 679) = 440; y: [1.8, 2.2] → row 439 − round(0.5 · 399) = 239
        // (or 240: (2 − 1.8) / 0.4 is a hair under 0.5 in floating point).
        let canvas = draw(&[(5.0, 2.0)], &[]);
        let (cx, cy) = (PLOT.left + 340, PLOT.bottom - 199);
        let blue: Vec<(i64, i64)> = (PLOT.top..=PLOT.bottom)
            .flat_map(|y| (PLOT.left..=PLOT.right).map(move |x| (x, y)))
            .filter(|&(x, y)| canvas.get(x, y) == Some(TRAIN))
            .collect();
        assert_eq!(blue.len(), (MARKER * MARKER) as usize);
        assert!(blue.iter().all(|&(x, y)| (x - cx).abs() <= 3 && (y - cy).abs() <= 3), "{blue:?}");
        assert_eq!(&canvas.encode_png().unwrap()[1..4], b"PNG");
    }
}
