//! A reader of TensorBoard event files, for tests of what `sft_train`'s writer and callback wrote (and of the
//! Python writer's fixtures). Written apart from the writer: the framing is parsed here and the protobuf messages
//! are declared read-side (optional fields instead of the writer's oneofs; unknown fields such as
//! `source_metadata`, images or tensors are skipped by prost).

use std::path::Path;

use prost::Message;

/// One `Summary.Value` of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryValue {
    /// The tag (`train/loss`).
    pub tag: String,
    /// The scalar, when the value is a `simple_value` (other kinds give `None`).
    pub simple_value: Option<f32>,
}

/// A decoded `tensorboard.Event`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorBoardEvent {
    /// Seconds since the Unix epoch (0.0 when absent).
    pub wall_time: f64,
    /// The step (0 when absent).
    pub step: i64,
    /// `file_version`, when present.
    pub file_version: Option<String>,
    /// The summary's values, in order.
    pub values: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// Every event of the file at `path`, both CRC-32C checks of each TFRecord verified. A truncated record, a
/// checksum mismatch or a malformed event is an `InvalidData` error whose message names the file, the record's
/// index and its byte offset (`<path>: record 1 at byte 56: data CRC mismatch …`).
pub fn read_event_file(path: &Path) -> std::io::Result<Vec<TensorBoardEvent>> {
    let bytes = std::fs::read(path)?;
    let fail = |index: usize, offset: usize, what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: record {index} at byte {offset}: {what}", path.display()),
        )
    };
    let mut events = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let index = events.len();
        let record = &bytes[offset..];
        if record.len() < 12 {
            return Err(fail(index, offset, format!("truncated header ({} bytes)", record.len())));
        }
        // `stored` is the 4-byte little-endian masked CRC-32C of `data`.
        let crc = |what: &str, stored: &[u8], data: &[u8]| {
            let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
            let computed = masked(data);
            if stored == computed {
                return Ok(());
            }
            Err(fail(index, offset, format!("{what} CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")))
        };
        let (length_bytes, rest) = record.split_at(8);
        crc("length", rest, length_bytes)?;
        let length = u64::from_le_bytes(length_bytes.try_into().unwrap_or_default());
        let available = (rest.len() - 4).saturating_sub(4) as u64;
        if length > available {
            return Err(fail(index, offset, format!("truncated data (length {length}, {} bytes left)", record.len())));
        }
        let length = length as usize;
        let data = &rest[4..4 + length];
        crc("data", &rest[4 + length..8 + length], data)?;
        let event = Event::decode(data).map_err(|e| fail(index, offset, format!("malformed Event: {e}")))?;
        events.push(TensorBoardEvent {
            wall_time: event.wall_time,
            step: event.step,
            file_version: event.file_version,
            values: event
                .summary
                .map(|s| {
                    s.value.into_iter().map(|v| SummaryValue { tag: v.tag, simple_value: v.simple_value }).collect()
                })
                .unwrap_or_default(),
        });
        offset += 16 + length;
    }
    Ok(events)
}

/// TFRecord's masked CRC-32C.
fn masked(data: &[u8]) -> u32 {
    crc32c::crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}
