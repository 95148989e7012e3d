//! TensorBoard event files: the scalars of a run in the format `torch.utils.tensorboard.SummaryWriter` writes
//! (tensorboard's `EventFileWriter`), so `tensorboard --logdir <dir>` plots them while the run goes on.
//!
//! A file `events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.<n>` is a sequence of TFRecords:
//!
//! ```text
//! u64 LE length │ u32 LE masked CRC-32C of the 8 length bytes │ data │ u32 LE masked CRC-32C of the data
//! masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8   (wrapping, u32)
//! ```
//!
//! Each record's data is a protobuf `tensorboard.Event` (tensorboard/compat/proto/event.proto, summary.proto),
//! the subset below declared with `prost` (proto3: zero `wall_time`/`step` are omitted; `file_version` and
//! `simple_value` sit in `oneof`s, so they are written when set, 0.0 included). The checksums are the `crc32c`
//! crate's:
//!
//! | message | field | number | wire type |
//! |---|---|---|---|
//! | `Event` | `wall_time` (double, seconds since the Unix epoch) | 1 | 1 (fixed64) |
//! | `Event` | `step` (int64) | 2 | 0 (varint) |
//! | `Event` | `file_version` (string, `"brain.Event:2"`, first record only) | 3 | 2 |
//! | `Event` | `summary` (`Summary`) | 5 | 2 |
//! | `Summary` | `value` (repeated `Summary.Value`) | 1 | 2 |
//! | `Summary.Value` | `tag` (string) | 1 | 2 |
//! | `Summary.Value` | `simple_value` (float) | 2 | 5 (fixed32) |
//!
//! A scalar is one `Event` holding one `Summary.Value` with `simple_value`, exactly as `SummaryWriter.add_scalar`
//! writes it (not the newer tensor + `scalars` plugin form). The bytes equal those of tensorboard's Python writer
//! for the same events (tests/fixtures/tensorboard/). The first record carries no `source_metadata` (tensorboard
//! names its own Python module there; readers do not need it).
//!
//! [`TensorBoardCallback`] is transformers' `TensorBoardCallback` for our trainer: every log entry's values as
//! scalars at `state.global_step`, tagged `train/<key>`, `eval/<x>` for `eval_<x>` and `test/<x>` for `test_<x>`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::callback::Callback;
use crate::error::{Result, TrainError, io};
use crate::keys;
use crate::state::{LogEntry, TrainerState};

/// The `file_version` of the first record.
const FILE_VERSION: &str = "brain.Event:2";

/// The last component of event file names, unique per process (tensorboard's `_global_uid`).
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An open event file; each `add_*` call appends one record with one `write` call on an unbuffered file, so a
/// reader (TensorBoard) sees every record as soon as the call returns. There is nothing to flush.
#[derive(Debug)]
pub struct TensorBoardWriter {
    path: PathBuf,
    file: File,
}

impl TensorBoardWriter {
    /// Creates `dir` (and its parents) and a new event file in it, stamped with the current time, and writes the
    /// `file_version` record. An existing file is never overwritten. Errors name the directory or the file.
    pub fn create(dir: &Path) -> Result<Self> {
        Self::create_at(dir, unix_now())
    }

    /// [`create`](Self::create) with the clock read as `wall_time` (seconds since the Unix epoch): it is the
    /// `file_version` record's wall time and, truncated to whole seconds, the file name's timestamp. For
    /// reproducible files.
    pub fn create_at(dir: &Path, wall_time: f64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let host = hostname();
        let pid = std::process::id();
        // Like tensorboard: `%010d` of the time, truncated.
        let seconds = wall_time.max(0.0) as u64;
        let mut tries = 0;
        let (path, file) = loop {
            let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("events.out.tfevents.{seconds:010}.{host}.{pid}.{n}"));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                Err(e) => return Err(TrainError::Io { path, source: e }),
            }
        };
        let mut writer = Self { path, file };
        writer.write_record(&event(wall_time, 0, What::FileVersion(FILE_VERSION.to_owned())))?;
        tracing::debug!(path = %writer.path.display(), "TensorBoard event file created");
        Ok(writer)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one scalar: `value` (stored as `f32`, rounded to nearest; non-finite values are kept) under `tag`
    /// at `step` (below 2⁶³; protobuf `int64`), at `wall_time` seconds since the Unix epoch. Errors name the file.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: u64, wall_time: f64) -> Result<()> {
        let value = SummaryValueProto { tag: tag.to_owned(), value: Some(ValueKind::SimpleValue(value as f32)) };
        self.write_record(&event(wall_time, step, What::Summary(SummaryProto { value: vec![value] })))
    }

    /// Frames `data` as one TFRecord and writes it with a single call.
    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let record = frame(data);
        self.file.write_all(&record).map_err(io(&self.path))
    }
}

/// transformers' `TensorBoardCallback`: writes each log entry's values to an event file as scalars at
/// `state.global_step` (wall time: now). Tags follow transformers' `rewrite_logs`: `eval_<x>` → `eval/<x>`,
/// `test_<x>` → `test/<x>`, anything else → `train/<key>` (so `epoch` is `train/epoch`, also on evaluation
/// entries). The `step` key is not written: transformers adds it to the log history only, and it is the x axis.
///
/// An I/O error while logging never stops training: it is reported once with `tracing::warn!` and TensorBoard
/// logging stops for the rest of the run (a half-written record would hide everything after it).
#[derive(Debug)]
pub struct TensorBoardCallback {
    writer: Option<TensorBoardWriter>,
}

impl TensorBoardCallback {
    /// A callback writing to a new event file in `dir` (transformers: `<output_dir>/runs/<date>_<hostname>`, or
    /// `logging_dir`). Errors creating it are returned.
    pub fn new(dir: &Path) -> Result<Self> {
        Ok(Self::from_writer(TensorBoardWriter::create(dir)?))
    }

    /// A callback writing to `writer`.
    pub fn from_writer(writer: TensorBoardWriter) -> Self {
        Self { writer: Some(writer) }
    }

    /// The event file, or `None` once a write has failed.
    pub fn path(&self) -> Option<&Path> {
        self.writer.as_ref().map(TensorBoardWriter::path)
    }
}

impl Callback for TensorBoardCallback {
    fn name(&self) -> &str {
        "TensorBoardCallback"
    }

    fn on_log(&mut self, state: &TrainerState, entry: &LogEntry) {
        let Some(writer) = self.writer.as_mut() else { return };
        let wall_time = unix_now();
        for (key, &value) in entry {
            let Some(tag) = tensorboard_tag(key) else { continue };
            if let Err(error) = writer.add_scalar(&tag, value, state.global_step, wall_time) {
                tracing::warn!(%error, "cannot write the TensorBoard event file; TensorBoard logging stops for this run");
                self.writer = None;
                return;
            }
        }
    }
}

/// transformers' `rewrite_logs` for one key; `None` for `step`.
fn tensorboard_tag(key: &str) -> Option<String> {
    if key == keys::STEP {
        None
    } else if let Some(rest) = key.strip_prefix("eval_") {
        Some(format!("eval/{rest}"))
    } else if let Some(rest) = key.strip_prefix("test_") {
        Some(format!("test/{rest}"))
    } else {
        Some(format!("train/{key}"))
    }
}

/// Seconds since the Unix epoch (0.0 if the clock is before it).
fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The host name as `socket.gethostname()` gives it on Linux, else `$HOSTNAME`/`$COMPUTERNAME`, else `localhost`;
/// path separators are replaced so it stays one file name component.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().replace(['/', '\\'], "_"))
        .unwrap_or_default();
    if name.is_empty() { "localhost".to_owned() } else { name }
}

// ---- TFRecord framing ----

/// CRC-32C (Castagnoli) of `data`.
fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// TFRecord's masked CRC-32C.
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` as one TFRecord.
fn frame(data: &[u8]) -> Vec<u8> {
    let header = (data.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(data.len() + 16);
    record.extend_from_slice(&header);
    record.extend_from_slice(&masked_crc32c(&header).to_le_bytes());
    record.extend_from_slice(data);
    record.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    record
}

// ---- protobuf messages (the fields this module writes) ----

/// `tensorboard.Event`.
#[derive(Clone, PartialEq, prost::Message)]
struct EventProto {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

/// `Event.what`: the members this module writes.
#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(SummaryProto),
}

/// `tensorboard.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryProto {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValueProto>,
}

/// `tensorboard.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValueProto {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(oneof = "ValueKind", tags = "2")]
    value: Option<ValueKind>,
}

/// `Summary.Value.value`: the member this module writes.
#[derive(Clone, PartialEq, prost::Oneof)]
enum ValueKind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
}

/// The encoded `Event` with `what` at `wall_time` and `step`.
fn event(wall_time: f64, step: u64, what: What) -> Vec<u8> {
    EventProto { wall_time, step: step as i64, what: Some(what) }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn masked_crc_matches_tensorboards() {
        // tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c(b"123456789")
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn tags_follow_transformers_rewrite_logs() {
        assert_eq!(tensorboard_tag("loss").as_deref(), Some("train/loss"));
        assert_eq!(tensorboard_tag("epoch").as_deref(), Some("train/epoch"));
        assert_eq!(tensorboard_tag("eval_loss").as_deref(), Some("eval/loss"));
        assert_eq!(tensorboard_tag("test_mean_token_accuracy").as_deref(), Some("test/mean_token_accuracy"));
        assert_eq!(tensorboard_tag("train_tokens_per_second").as_deref(), Some("train/train_tokens_per_second"));
        assert_eq!(tensorboard_tag("step"), None);
    }

    #[test]
    fn a_write_error_stops_logging_without_panicking() {
        // /dev/full fails every write with ENOSPC.
        let Ok(file) = File::options().write(true).open("/dev/full") else { return };
        let mut callback =
            TensorBoardCallback::from_writer(TensorBoardWriter { path: PathBuf::from("/dev/full"), file });
        let state = TrainerState::new(1, 1, 1, 0);
        let entry: LogEntry = [("loss".to_owned(), 1.0)].into_iter().collect();
        callback.on_log(&state, &entry);
        assert_eq!(callback.path(), None);
        callback.on_log(&state, &entry);
    }
}
