//! `output_dir/metrics.jsonl`: one JSON object per log entry (training logs and evaluations), appended as they
//! happen, so a run can be followed with `tail -f` and plotted without parsing logs.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, io};
use crate::keys;
use crate::state::LogEntry;

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
