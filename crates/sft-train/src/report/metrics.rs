//! `output_dir/metrics.jsonl`: one JSON object per log entry (training logs and evaluations), appended as they
//! happen, so a run can be followed with `tail -f` and plotted without parsing logs.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::callback::Callback;
use crate::error::{Result, io};
use crate::keys;
use crate::state::{LogEntry, TrainerState};

/// The metrics each evaluation produces: the mean loss over supervised tokens, the share of them predicted
/// exactly, how many there were, and the evaluation's wall time in seconds. `metric_for_best_model` must name one
/// of them (with or without the `eval_` prefix), which the run config checks when it loads.
pub const EVAL_METRICS: [&str; 4] =
    [keys::EVAL_LOSS, keys::EVAL_MEAN_TOKEN_ACCURACY, keys::EVAL_TOKENS, keys::EVAL_RUNTIME];

/// The file name of the metrics log.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// An append-only JSON-lines metrics file.
#[derive(Debug, Clone)]
pub struct MetricsFile {
    path: PathBuf,
}

impl MetricsFile {
    /// `output_dir/metrics.jsonl`, rewritten to hold exactly `history` (on resume, entries a crashed run logged
    /// after its last checkpoint are dropped, so the file matches the resumed run).
    pub fn create(output_dir: &Path, history: &[LogEntry]) -> Result<Self> {
        std::fs::create_dir_all(output_dir).map_err(io(output_dir))?;
        let path = output_dir.join(METRICS_FILE);
        let mut text = String::new();
        for entry in history {
            text.push_str(&line(entry));
        }
        sft_model::write_atomic(&path, text.as_bytes())?;
        Ok(Self { path })
    }

    /// Appends one entry.
    pub fn append(&self, entry: &LogEntry) -> Result<()> {
        let mut file =
            std::fs::OpenOptions::new().append(true).create(true).open(&self.path).map_err(io(&self.path))?;
        file.write_all(line(entry).as_bytes()).map_err(io(&self.path))
    }
}

/// The callback that keeps `output_dir/metrics.jsonl`: rewritten to the (restored) history when training begins,
/// then one line per log entry. If the file cannot be written, a warning is logged and the log stops.
#[derive(Debug)]
pub struct MetricsLog {
    output_dir: PathBuf,
    file: Option<MetricsFile>,
}

impl MetricsLog {
    /// The log of a run writing to `output_dir`.
    pub fn new(output_dir: impl Into<PathBuf>) -> Self {
        Self { output_dir: output_dir.into(), file: None }
    }
}

impl Callback for MetricsLog {
    fn name(&self) -> &str {
        "MetricsLog"
    }

    fn on_train_begin(&mut self, state: &TrainerState) {
        match MetricsFile::create(&self.output_dir, &state.log_history) {
            Ok(file) => self.file = Some(file),
            Err(error) => tracing::warn!(%error, "cannot write {METRICS_FILE}; no metrics file for this run"),
        }
    }

    fn on_log(&mut self, _state: &TrainerState, entry: &LogEntry) {
        if let Some(file) = &self.file
            && let Err(error) = file.append(entry)
        {
            tracing::warn!(%error, "cannot append to {METRICS_FILE}; the metrics file stops here");
            self.file = None;
        }
    }
}

fn line(entry: &LogEntry) -> String {
    let object: serde_json::Map<String, serde_json::Value> = entry
        .iter()
        .map(|(k, &v)| {
            let value = if (k == "step" || k.starts_with("num_")) && v.fract() == 0.0 && v >= 0.0 {
                serde_json::Value::from(v as u64)
            } else {
                serde_json::Value::from(v)
            };
            (k.clone(), value)
        })
        .collect();
    let mut s = serde_json::Value::Object(object).to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(step: f64, loss: f64) -> LogEntry {
        LogEntry::from([(keys::STEP.to_owned(), step), (keys::LOSS.to_owned(), loss)])
    }

    #[test]
    fn the_callback_rewrites_the_history_then_appends_and_a_write_error_only_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(METRICS_FILE), "{\"from\": \"a crashed run\"}\n").unwrap();
        let mut state = TrainerState::new(10, 1, 10, 0);
        state.log_history.push(entry(1.0, 2.5));
        let mut log = MetricsLog::new(dir.path());
        log.on_train_begin(&state);
        log.on_log(&state, &entry(2.0, 2.25));
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert_eq!(text, "{\"loss\":2.5,\"step\":1}\n{\"loss\":2.25,\"step\":2}\n");

        // An output directory that is a file: a warning, no file, no panic, and later entries are ignored.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, "").unwrap();
        let mut log = MetricsLog::new(&blocked);
        log.on_train_begin(&state);
        log.on_log(&state, &entry(2.0, 2.25));
        assert!(blocked.is_file());
    }
}
