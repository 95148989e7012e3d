//! `write_loss_curve` checked from the outside: the written SVG is parsed and its series compared with the data —
//! every point present, in step order, on a linear map of step and loss (checked between the points with a hand
//! computation, to the pixel), train loss `#1F77B4`, eval loss `#FF7F0E` with a marker at each point.

use std::path::Path;

use sft_train::{LOSS_CURVE_FILE, LogEntry, write_loss_curve};

const TRAIN: &str = "#1F77B4";
const EVAL: &str = "#FF7F0E";

fn train_entry(step: u64, loss: f64) -> LogEntry {
    LogEntry::from([("step".to_owned(), step as f64), ("loss".to_owned(), loss), ("grad_norm".to_owned(), 1.0)])
}

fn eval_entry(step: u64, loss: f64) -> LogEntry {
    LogEntry::from([("step".to_owned(), step as f64), ("eval_loss".to_owned(), loss)])
}

fn attribute<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&element[start..start + element[start..].find('"')?])
}

/// The points of every `<polyline>` stroked with `color`.
fn polylines(svg: &str, color: &str) -> Vec<Vec<(f64, f64)>> {
    svg.split('<')
        .filter(|e| e.starts_with("polyline ") && attribute(e, "stroke") == Some(color))
        .map(|e| {
            attribute(e, "points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// The centres of the `<circle>`s filled with `color`.
fn circles(svg: &str, color: &str) -> Vec<(f64, f64)> {
    svg.split('<')
        .filter(|e| e.starts_with("circle ") && attribute(e, "fill") == Some(color))
        .map(|e| (attribute(e, "cx").unwrap().parse().unwrap(), attribute(e, "cy").unwrap().parse().unwrap()))
        .collect()
}

/// The texts of the document, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim().to_owned())
        .collect()
}

/// Where `value` falls on the line through `(v0, p0)` and `(v1, p1)`: the hand computation of a linear axis.
fn linear(value: f64, (v0, p0): (f64, f64), (v1, p1): (f64, f64)) -> f64 {
    p0 + (value - v0) / (v1 - v0) * (p1 - p0)
}

fn write(history: &[LogEntry]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out").join(LOSS_CURVE_FILE);
    write_loss_curve(&path, history).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    (dir, svg)
}

#[test]
fn the_curve_is_an_800_by_500_svg_written_atomically() {
    let (dir, svg) = write(&[train_entry(1, 2.0), train_entry(2, 1.5)]);
    assert_eq!(LOSS_CURVE_FILE, "loss_curve.svg");
    assert!(svg.starts_with("<svg width=\"800\" height=\"500\" viewBox=\"0 0 800 500\""), "{}", &svg[..80]);
    assert!(svg.trim_end().ends_with("</svg>"));
    // Only the file itself: no temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [LOSS_CURVE_FILE]);
    let texts = texts(&svg);
    for label in ["step", "loss", "train loss"] {
        assert!(texts.iter().any(|t| t == label), "{label} not in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t == "eval loss"), "no eval series, no eval legend: {texts:?}");
}

#[test]
fn the_train_loss_is_a_linear_map_of_step_and_loss_from_top_left_to_bottom_right() {
    let losses = [3.0, 2.2, 1.9, 1.0, 0.7, 0.65];
    let history: Vec<LogEntry> = losses.iter().enumerate().map(|(i, &l)| train_entry(10 * (i as u64 + 1), l)).collect();
    let (_dir, svg) = write(&history);
    let lines = polylines(&svg, TRAIN);
    assert_eq!(lines.len(), 2, "the series and its legend sample");
    let points = lines.iter().find(|l| l.len() == losses.len()).unwrap();
    let (first, last) = (points[0], points[points.len() - 1]);
    assert!(first.0 < last.0 && first.1 < last.1, "a falling loss runs down and right: {points:?}");
    for (i, &(x, y)) in points.iter().enumerate() {
        let step = 10.0 * (i as f64 + 1.0);
        let expected_x = linear(step, (10.0, first.0), (60.0, last.0));
        let expected_y = linear(losses[i], (losses[0], first.1), (losses[5], last.1));
        assert!((x - expected_x).abs() <= 1.0, "point {i}: x {x} vs {expected_x}");
        assert!((y - expected_y).abs() <= 1.0, "point {i}: y {y} vs {expected_y}");
    }
    // The 4 % margins: the data spans most of the plot but touches neither end.
    assert!(first.0 > 60.0 && last.0 < 790.0 && first.1 > 15.0 && last.1 < 460.0, "{points:?}");
}

#[test]
fn eval_points_have_markers_on_the_same_axes_as_the_train_loss() {
    let history = vec![
        train_entry(1, 4.0),
        train_entry(2, 3.0),
        eval_entry(2, 3.5),
        train_entry(3, 2.0),
        train_entry(4, 1.0),
        eval_entry(4, 1.5),
    ];
    let (_dir, svg) = write(&history);
    let train = polylines(&svg, TRAIN).into_iter().find(|l| l.len() == 4).unwrap();
    let markers = circles(&svg, EVAL);
    assert_eq!(markers.len(), 2, "{markers:?}");
    for (&(x, y), (step, loss)) in markers.iter().zip([(2.0, 3.5), (4.0, 1.5)]) {
        let expected_x = linear(step, (1.0, train[0].0), (4.0, train[3].0));
        let expected_y = linear(loss, (4.0, train[0].1), (1.0, train[3].1));
        assert!(
            (x - expected_x).abs() <= 1.0 && (y - expected_y).abs() <= 1.0,
            "({x}, {y}) vs ({expected_x}, {expected_y})"
        );
    }
    let eval_line = polylines(&svg, EVAL).into_iter().find(|l| l.len() == 2).unwrap();
    assert_eq!(eval_line, markers, "the eval line joins its markers");
    assert!(texts(&svg).iter().any(|t| t == "eval loss"));
}

#[test]
fn a_history_without_losses_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOSS_CURVE_FILE);
    write_loss_curve(&path, &[]).unwrap();
    assert!(!path.exists());
    std::fs::write(&path, "earlier").unwrap();
    let no_loss = LogEntry::from([("step".to_owned(), 1.0), ("learning_rate".to_owned(), 1e-4)]);
    write_loss_curve(&path, &[no_loss]).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier", "an existing file is left as it is");
}

#[test]
fn non_finite_values_are_skipped() {
    let mut history =
        vec![train_entry(1, 2.0), train_entry(2, f64::NAN), train_entry(3, 1.0), train_entry(4, f64::INFINITY)];
    history.push(LogEntry::from([("loss".to_owned(), 1.5)])); // no step
    let (_dir, svg) = write(&history);
    let points = polylines(&svg, TRAIN).into_iter().max_by_key(Vec::len).unwrap();
    assert_eq!(points.len(), 2, "{points:?}");
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "no non-finite coordinate is written");
}

#[test]
fn a_single_eval_point_still_draws_its_marker() {
    let (_dir, svg) = write(&[eval_entry(5, 2.0)]);
    assert_eq!(circles(&svg, EVAL).len(), 1);
    let texts = texts(&svg);
    assert!(texts.iter().any(|t| t == "eval loss") && !texts.iter().any(|t| t == "train loss"), "{texts:?}");
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let path = file.join(LOSS_CURVE_FILE);
    let err = write_loss_curve(Path::new(&path), &[train_entry(1, 1.0)]).unwrap_err().to_string();
    assert!(err.contains(file.to_str().unwrap()), "{err}");
}
