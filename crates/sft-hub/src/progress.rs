//! Transfer progress: one process-wide observer of file downloads and uploads, for progress bars. Libraries
//! report; a binary installs the observer ([`set_transfer_observer`]); without one, reporting costs nothing.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use hf_hub::progress::{DownloadEvent, FileStatus, ProgressEvent, ProgressHandler};

/// What a progress display is told about each file transferred.
pub trait TransferObserver: Send + Sync {
    /// A transfer of `file` (its path in the repo) begins; `total_bytes` is 0 when unknown.
    fn start(&self, file: &str, total_bytes: u64, direction: Direction);
    /// `bytes_done` bytes of `file` are transferred so far.
    fn advance(&self, file: &str, bytes_done: u64);
    /// The transfer of `file` ended (completed, or failed: the caller gets the error).
    fn finish(&self, file: &str);
}

/// Which way a file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the Hub.
    Download,
    /// To the Hub.
    Upload,
}

static OBSERVER: OnceLock<Arc<dyn TransferObserver>> = OnceLock::new();

/// Installs the process's transfer observer; false (and nothing changes) if one is already installed.
pub fn set_transfer_observer(observer: Arc<dyn TransferObserver>) -> bool {
    OBSERVER.set(observer).is_ok()
}

pub(crate) fn observer() -> Option<&'static Arc<dyn TransferObserver>> {
    OBSERVER.get()
}

/// Translates `hf-hub`'s download events into observer calls.
#[derive(Debug)]
pub(crate) struct DownloadReporter;

impl ProgressHandler for DownloadReporter {
    fn on_progress(&self, event: &ProgressEvent) {
        let (Some(observer), ProgressEvent::Download(DownloadEvent::Progress { files })) = (observer(), event) else {
            return;
        };
        for file in files {
            match file.status {
                FileStatus::Started => observer.start(&file.filename, file.total_bytes, Direction::Download),
                FileStatus::InProgress => observer.advance(&file.filename, file.bytes_completed),
                FileStatus::Complete => {
                    observer.advance(&file.filename, file.bytes_completed);
                    observer.finish(&file.filename);
                }
            }
        }
    }
}

/// A reader that reports the bytes read of an upload.
pub(crate) struct CountingReader<R> {
    inner: R,
    file: String,
    done: u64,
}

impl<R> CountingReader<R> {
    /// Reports `start` for `file` and counts from `done` (the offset of a multipart chunk).
    pub(crate) fn new(inner: R, file: &str, total_bytes: u64, done: u64) -> Self {
        if let Some(o) = observer()
            && done == 0
        {
            o.start(file, total_bytes, Direction::Upload);
        }
        Self { inner, file: file.to_owned(), done }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(o) = observer() {
            o.advance(&self.file, self.done);
        }
        Ok(n)
    }
}

/// Reports the end of an upload of `file`.
pub(crate) fn upload_finished(file: &str) {
    if let Some(o) = observer() {
        o.finish(file);
    }
}
