//! `write_loss_curve` checked from the outside: the written file is decoded with the `png` crate and its pixels
//! compared with the geometry `write_loss_curve` documents (plot area columns 100..=779, rows 40..=439; axes
//! widened by 4 % of the data range; train loss #1f77b4, eval loss #ff7f0e with 7 × 7 markers).

use std::io::BufReader;
use std::path::Path;

use sft_train::{LOSS_CURVE_FILE, LogEntry, write_loss_curve};

const TRAIN: [u8; 3] = [0x1f, 0x77, 0xb4];
const EVAL: [u8; 3] = [0xff, 0x7f, 0x0e];
const LEFT: i64 = 100;
const RIGHT: i64 = 779;
const TOP: i64 = 40;
const BOTTOM: i64 = 439;

/// A decoded RGB image.
struct Image {
    width: i64,
    height: i64,
    pixels: Vec<u8>,
}

impl Image {
    fn read(path: &Path) -> Self {
        let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        pixels.truncate(info.buffer_size());
        Self { width: info.width.into(), height: info.height.into(), pixels }
    }

    fn is(&self, x: i64, y: i64, color: [u8; 3]) -> bool {
        let i = ((y * self.width + x) * 3) as usize;
        self.pixels[i..i + 3] == color
    }

    /// The pixels of `color` inside the plot area.
    fn plotted(&self, color: [u8; 3]) -> Vec<(i64, i64)> {
        (TOP..=BOTTOM)
            .flat_map(|y| (LEFT..=RIGHT).map(move |x| (x, y)))
            .filter(|&(x, y)| self.is(x, y, color))
            .collect()
    }
}

fn train_entry(step: u64, loss: f64) -> LogEntry {
    [("step", step as f64), ("loss", loss), ("learning_rate", 1e-4), ("epoch", step as f64 / 100.0)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn eval_entry(step: u64, loss: f64) -> LogEntry {
    [("step", step as f64), ("eval_loss", loss), ("eval_mean_token_accuracy", 0.5)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// The documented mapping of a value in `[min, max]` (the data's range) onto pixels `from..=to`.
fn pixel(value: f64, min: f64, max: f64, from: i64, to: i64) -> i64 {
    let (lo, hi) = (min - 0.04 * (max - min), max + 0.04 * (max - min));
    from + ((value - lo) / (hi - lo) * (to - from) as f64).round() as i64
}

/// Centres of the 7 × 7 markers of `color`: the pixels whose 5 × 5 neighbourhood is all `color` (a 2 px line
/// never fills one), grouped into clusters of touching pixels, each reported as its mean position.
fn markers(image: &Image, color: [u8; 3]) -> Vec<(f64, f64)> {
    let solid: Vec<(i64, i64)> = image
        .plotted(color)
        .into_iter()
        .filter(|&(x, y)| (-2..=2).all(|dy| (-2..=2).all(|dx| image.is(x + dx, y + dy, color))))
        .collect();
    let mut clusters: Vec<Vec<(i64, i64)>> = Vec::new();
    for p in solid {
        match clusters.iter_mut().find(|c| c.iter().any(|q| (q.0 - p.0).abs() <= 1 && (q.1 - p.1).abs() <= 1)) {
            Some(cluster) => cluster.push(p),
            None => clusters.push(vec![p]),
        }
    }
    let mut centres: Vec<(f64, f64)> = clusters
        .iter()
        .map(|c| {
            let n = c.len() as f64;
            (c.iter().map(|p| p.0 as f64).sum::<f64>() / n, c.iter().map(|p| p.1 as f64).sum::<f64>() / n)
        })
        .collect();
    centres.sort_by(|a, b| a.0.total_cmp(&b.0));
    centres
}

#[test]
fn the_curve_is_an_800_by_500_rgb_png_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join(LOSS_CURVE_FILE);
    let history: Vec<LogEntry> = (1..=50).map(|s| train_entry(s, 3.0 / s as f64)).collect();
    write_loss_curve(&path, &history).unwrap();
    let image = Image::read(&path);
    assert_eq!((image.width, image.height), (800, 500));
    assert_eq!(image.pixels.len(), 800 * 500 * 3);
    // The corner is background, and the temporary file is gone.
    assert!(image.is(0, 0, [255, 255, 255]));
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [LOSS_CURVE_FILE]);
}

#[test]
fn a_decreasing_train_loss_runs_from_top_left_to_bottom_right() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOSS_CURVE_FILE);
    let history: Vec<LogEntry> = (1..=200).map(|s| train_entry(s, 2.5 * 0.99f64.powi(s as i32) + 0.3)).collect();
    write_loss_curve(&path, &history).unwrap();
    let blue = Image::read(&path).plotted(TRAIN);
    let tenth = (RIGHT - LEFT + 1) / 10;
    let mean_row = |columns: std::ops::RangeInclusive<i64>| {
        let rows: Vec<f64> = blue.iter().filter(|p| columns.contains(&p.0)).map(|p| p.1 as f64).collect();
        assert!(!rows.is_empty(), "no train loss pixels in columns {columns:?}");
        rows.iter().sum::<f64>() / rows.len() as f64
    };
    let (left, right) = (mean_row(LEFT..=LEFT + tenth - 1), mean_row(RIGHT - tenth + 1..=RIGHT));
    assert!(left + 100.0 < right, "left tenth at row {left}, right tenth at row {right}");
    // The first point (highest loss) sits 4 % of the range below the top of the y axis: row 40 + round(399·0.04/1.08).
    let top_of_curve = blue.iter().map(|p| p.1).min().unwrap();
    assert!((top_of_curve - pixel(1.0, 0.0, 1.0, BOTTOM, TOP)).abs() <= 2, "{top_of_curve}");
}

#[test]
fn eval_markers_sit_at_their_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOSS_CURVE_FILE);
    let mut history: Vec<LogEntry> = Vec::new();
    let eval_losses = [(30, 2.2), (60, 1.9), (90, 1.8), (120, 1.75)];
    for s in 1..=120 {
        history.push(train_entry(s, 3.0 - 1.5 * (s as f64 / 120.0).sqrt()));
        if let Some(&(_, loss)) = eval_losses.iter().find(|e| e.0 == s) {
            history.push(eval_entry(s, loss));
        }
    }
    write_loss_curve(&path, &history).unwrap();
    let image = Image::read(&path);
    let found = markers(&image, EVAL);
    assert_eq!(found.len(), eval_losses.len(), "{found:?}");
    // Steps 1..=120 over both series; losses from min(train 1.5, eval) = 1.5 to max(train, eval) = train at step 1.
    let loss_max = 3.0 - 1.5 * (1.0f64 / 120.0).sqrt();
    for (&(step, loss), &(x, y)) in eval_losses.iter().zip(&found) {
        let column = pixel(step as f64, 1.0, 120.0, LEFT, RIGHT);
        let row = pixel(loss, 1.5, loss_max, BOTTOM, TOP);
        assert!((x - column as f64).abs() <= 2.0, "step {step}: marker at column {x}, expected {column}");
        assert!((y - row as f64).abs() <= 2.0, "step {step}: marker at row {y}, expected {row}");
    }
    // The train loss has no markers (more than one point) but is drawn.
    assert!(markers(&image, TRAIN).is_empty());
    assert!(image.plotted(TRAIN).len() > 500);
}

#[test]
fn a_history_without_losses_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOSS_CURVE_FILE);
    write_loss_curve(&path, &[]).unwrap();
    assert!(!path.exists());
    let no_loss: LogEntry = [("step".to_owned(), 5.0), ("learning_rate".to_owned(), 1e-4)].into_iter().collect();
    let nan = train_entry(6, f64::NAN);
    let infinite_eval = eval_entry(6, f64::INFINITY);
    write_loss_curve(&path, &[no_loss, nan, infinite_eval]).unwrap();
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn non_finite_values_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let clean: Vec<LogEntry> = (1..=40)
        .map(|s| train_entry(s, 2.0 - s as f64 / 40.0))
        .chain([eval_entry(20, 1.6), eval_entry(40, 1.2)])
        .collect();
    let mut noisy = clean.clone();
    noisy.insert(3, train_entry(4, f64::NAN));
    noisy.insert(10, train_entry(11, f64::INFINITY));
    noisy.insert(20, train_entry(21, f64::NEG_INFINITY));
    noisy.push(eval_entry(30, f64::NAN));
    let mut stepless = train_entry(0, 0.5);
    stepless.insert("step".into(), f64::NAN);
    noisy.push(stepless);
    let (a, b) = (dir.path().join("clean.png"), dir.path().join("noisy.png"));
    write_loss_curve(&a, &clean).unwrap();
    write_loss_curve(&b, &noisy).unwrap();
    // Skipping means exactly that: the same picture as without those entries.
    assert_eq!(Image::read(&a).pixels, Image::read(&b).pixels);
    assert_eq!(markers(&Image::read(&b), EVAL).len(), 2);
}

#[test]
fn a_single_eval_point_still_draws_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOSS_CURVE_FILE);
    write_loss_curve(&path, &[eval_entry(10, 1.25)]).unwrap();
    let image = Image::read(&path);
    // One step s: the x axis is [s − 1, s + 1]; one loss l: [l − 0.125, l + 0.125]; the point is the centre.
    let found = markers(&image, EVAL);
    assert_eq!(found.len(), 1);
    let (x, y) = found[0];
    assert!(
        (x - (LEFT + RIGHT) as f64 / 2.0).abs() <= 2.0 && (y - (TOP + BOTTOM) as f64 / 2.0).abs() <= 2.0,
        "{x}, {y}"
    );
    assert_eq!(image.plotted(EVAL).len(), 49);
    assert!(image.plotted(TRAIN).is_empty());
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let error = write_loss_curve(&file.join(LOSS_CURVE_FILE), &[train_entry(1, 1.0)]).unwrap_err();
    assert!(error.to_string().contains("not-a-dir"), "{error}");
}
