//! TensorBoard event files: byte-identical to tensorboard's Python writer (fixtures made by
//! `tests/fixtures/tensorboard/make_fixture.py`), CRC checking on read, and the callback's tags over a run.

use std::path::{Path, PathBuf};

use sft_testkit::tensorboard::{TensorBoardEvent, read_event_file};
use sft_train::{
    Callback, IntervalStrategy, LogEntry, TensorBoardCallback, TensorBoardWriter, TrainerState, TrainingArguments,
};

use crate::{args, examples, lora, model, trainer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tensorboard").join(name)
}

/// The file_version event's wall time in the fixtures.
const START: f64 = 1_700_000_000.0;

/// make_fixture.py's SCALARS: (tag, value, step, wall_time).
fn scalars() -> Vec<(String, f64, u64, f64)> {
    vec![
        ("train/loss".into(), 2.5, 1, 1_700_000_001.5),
        ("train/learning_rate".into(), 0.0002, 1, 1_700_000_001.5),
        ("train/zero".into(), 0.0, 0, 1_700_000_000.25),
        ("eval/loss".into(), -1.25, 300, 1_700_000_002.75),
        ("train/epoch".into(), 1e-8, 1 << 40, 1_700_000_003.0),
        (format!("train/{}", "\u{fc}".repeat(70)), 3.0, 7, 1_700_000_004.0),
        ("train/inf".into(), f64::INFINITY, 8, 1_700_000_005.0),
        ("train/nan".into(), f64::NAN, 9, 1_700_000_006.0),
        ("train/no_wall_time".into(), 1.0, 10, 0.0),
    ]
}

/// Writes the fixtures' events with our writer into `dir`; returns the event file.
fn write_scalars(dir: &Path) -> PathBuf {
    let mut writer = TensorBoardWriter::create_at(dir, START).unwrap();
    for (tag, value, step, wall_time) in scalars() {
        writer.add_scalar(&tag, value, step, wall_time).unwrap();
    }
    writer.path().to_path_buf()
}

/// The length of the first TFRecord of `bytes`.
fn first_record_len(bytes: &[u8]) -> usize {
    16 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn writer_bytes_equal_tensorboards_record_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scalars(&dir.path().join("runs/x"));
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let prefix = "events.out.tfevents.1700000000.";
    assert!(name.starts_with(prefix), "{name}");
    let pid_suffix = format!(".{}.", std::process::id());
    assert!(name[prefix.len()..].contains(&pid_suffix), "{name}");
    assert_eq!(path.parent(), Some(dir.path().join("runs/x").as_path()));
    let ours = std::fs::read(&path).unwrap();
    let theirs = std::fs::read(fixture("scalars.tfevents")).unwrap();
    assert_eq!(ours, theirs, "event file bytes differ from tensorboard's RecordWriter + event_pb2");
}

#[test]
fn reads_and_matches_what_event_file_writer_wrote() {
    let theirs_path = fixture("event_file_writer.tfevents");
    let events = read_event_file(&theirs_path).unwrap();
    assert_eq!(events.len(), 1 + scalars().len());
    // The first event also has source_metadata (skipped by the reader).
    assert_eq!(
        events[0],
        TensorBoardEvent { wall_time: START, step: 0, file_version: Some("brain.Event:2".into()), values: vec![] }
    );
    for (event, (tag, value, step, wall_time)) in events[1..].iter().zip(scalars()) {
        assert_eq!((event.wall_time, event.step, event.file_version.as_deref()), (wall_time, step as i64, None));
        assert_eq!(event.values.len(), 1);
        assert_eq!(event.values[0].tag, tag);
        let got = event.values[0].simple_value.unwrap();
        assert_eq!(got.to_bits(), (value as f32).to_bits(), "{tag}: {got} vs {value}");
    }

    // Every record after the first is byte-identical to ours; ours reads back the same events.
    let dir = tempfile::tempdir().unwrap();
    let ours_path = write_scalars(dir.path());
    let (ours, theirs) = (std::fs::read(&ours_path).unwrap(), std::fs::read(&theirs_path).unwrap());
    assert_eq!(ours[first_record_len(&ours)..], theirs[first_record_len(&theirs)..]);
    let ours_events = read_event_file(&ours_path).unwrap();
    assert_eq!(format!("{ours_events:?}"), format!("{events:?}"), "NaN ≠ NaN, so compare the Debug forms");
}

#[test]
fn corrupted_or_truncated_files_are_rejected_naming_file_and_record() {
    let bytes = std::fs::read(fixture("scalars.tfevents")).unwrap();
    let second = first_record_len(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.out.tfevents.bad");
    let error = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let e = read_event_file(&path).unwrap_err().to_string();
        assert!(e.contains(path.to_str().unwrap()), "{e}");
        e
    };

    let mut data_flip = bytes.clone();
    data_flip[second + 12 + 3] ^= 0x01; // a byte of the second record's data
    let e = error(&data_flip);
    assert!(e.contains(&format!("record 1 at byte {second}: data CRC mismatch")), "{e}");

    let mut length_flip = bytes.clone();
    length_flip[second] ^= 0x01; // the second record's length
    let e = error(&length_flip);
    assert!(e.contains(&format!("record 1 at byte {second}: length CRC mismatch")), "{e}");

    let mut crc_flip = bytes.clone();
    *crc_flip.last_mut().unwrap() ^= 0x80; // the last record's data CRC
    assert!(error(&crc_flip).contains("data CRC mismatch"));

    let e = error(&bytes[..bytes.len() - 1]);
    assert!(e.contains("truncated data"), "{e}");
    let e = error(&bytes[..second + 5]);
    assert!(e.contains("record 1") && e.contains("truncated header"), "{e}");
}

/// `(tag, step, value)` of every scalar after the file_version event.
fn scalars_of(events: &[TensorBoardEvent]) -> Vec<(String, i64, f32)> {
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    events[1..]
        .iter()
        .flat_map(|e| {
            assert!(e.wall_time > START, "wall time is now");
            e.values.iter().map(|v| (v.tag.clone(), e.step, v.simple_value.unwrap()))
        })
        .collect()
}

#[test]
fn callback_tags_follow_transformers_rewrite_logs() {
    let entry = |pairs: &[(&str, f64)]| -> LogEntry { pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect() };
    let history = [
        entry(&[("loss", 2.5), ("learning_rate", 2e-4), ("grad_norm", 0.75), ("epoch", 0.5), ("step", 1.0)]),
        entry(&[("eval_loss", 2.25), ("eval_mean_token_accuracy", 0.125), ("epoch", 0.5), ("step", 1.0)]),
        entry(&[("loss", 2.0), ("test_loss", 1.5), ("train_tokens_per_second", 1000.0), ("step", 2.0)]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut callback = TensorBoardCallback::new(&dir.path().join("runs/now_host")).unwrap();
    assert_eq!(callback.name(), "TensorBoardCallback");
    let mut state = TrainerState::new(2, 1, 2, 0);
    for entry in &history {
        state.global_step = entry["step"] as u64;
        callback.on_log(&state, entry);
    }
    let path = callback.path().unwrap().to_path_buf();
    assert!(path.starts_with(dir.path().join("runs/now_host")));
    let got = scalars_of(&read_event_file(&path).unwrap());
    // Entries are BTreeMaps, so each entry's scalars come in key order.
    let want = [
        ("train/epoch", 1, 0.5),
        ("train/grad_norm", 1, 0.75),
        ("train/learning_rate", 1, 2e-4),
        ("train/loss", 1, 2.5),
        ("train/epoch", 1, 0.5),
        ("eval/loss", 1, 2.25),
        ("eval/mean_token_accuracy", 1, 0.125),
        ("train/loss", 2, 2.0),
        ("test/loss", 2, 1.5),
        ("train/train_tokens_per_second", 2, 1000.0),
    ];
    let want: Vec<(String, i64, f32)> = want.iter().map(|&(t, s, v)| (t.to_owned(), s, v as f32)).collect();
    assert_eq!(got, want);
}

#[test]
fn callback_in_a_training_run_writes_the_log_history() {
    let config = lora();
    let (train, eval) = (examples(8, 4), examples(4, 5));
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let args = TrainingArguments {
        per_device_train_batch_size: 2,
        max_steps: 3,
        eval_strategy: IntervalStrategy::Steps,
        eval_steps: Some(2),
        ..args(dir.path())
    };
    let mut trainer = trainer(args, config.clone(), &train, Some(&eval[..]), 2)
        .with_callback(TensorBoardCallback::new(&runs).unwrap());
    let out = trainer.train(model(&config)).unwrap();
    drop(trainer);

    let files: Vec<PathBuf> = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let got = scalars_of(&read_event_file(&files[0]).unwrap());
    let want: Vec<(String, i64, f32)> = out
        .state
        .log_history
        .iter()
        .flat_map(|entry| {
            let step = entry["step"] as i64;
            entry.iter().filter(|(k, _)| *k != "step").map(move |(k, &v)| {
                let tag = match k.strip_prefix("eval_") {
                    Some(rest) => format!("eval/{rest}"),
                    None => format!("train/{k}"),
                };
                (tag, step, v as f32)
            })
        })
        .collect();
    assert!(want.iter().any(|(t, s, _)| t == "eval/loss" && *s == 2), "{want:?}");
    assert!(want.iter().filter(|(t, _, _)| t == "train/loss").count() >= 3, "{want:?}");
    assert_eq!(got, want);
}
