//! Checkpoint directories: `output_dir/checkpoint-<step>/`, written whole into a temporary directory and renamed,
//! so a crash (even SIGKILL mid-write) leaves earlier checkpoints intact and never a partial `checkpoint-<step>`.
//! A write that fails (a full disk) removes its temporary directory and is an error; each checkpoint lists the
//! SHA-256 of its files in `checksums.sha256` (the format `sha256sum -c` reads), checked before a resume reads it.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError, io};
use crate::state::TRAINER_STATE;

/// The checksum list of a checkpoint: `<sha256 hex>  <file name>` per line, as `sha256sum` writes it.
pub const CHECKSUMS_FILE: &str = "checksums.sha256";

/// Directory name prefix of checkpoints.
pub const CHECKPOINT_PREFIX: &str = "checkpoint-";

/// Prefix of directories being written (never read as checkpoints; removed when found).
const PARTIAL_PREFIX: &str = "tmp-checkpoint-";

/// `output_dir/checkpoint-<step>`.
pub fn checkpoint_dir(output_dir: &Path, step: u64) -> PathBuf {
    output_dir.join(format!("{CHECKPOINT_PREFIX}{step}"))
}

/// Writes `output_dir/checkpoint-<step>`: `write` fills a fresh temporary directory, the SHA-256 of every file goes
/// to [`CHECKSUMS_FILE`], every file is flushed to disk, then the directory is renamed into place (replacing an
/// older checkpoint of the same step). When any of it fails, the temporary directory is removed (freeing what it
/// took of a full disk) and the error is [`TrainError::CheckpointWrite`]: the checkpoints before are untouched.
pub fn write_checkpoint(output_dir: &Path, step: u64, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let tmp = output_dir.join(format!("{PARTIAL_PREFIX}{step}-{}", std::process::id()));
    let written = fill_and_place(output_dir, &tmp, step, write);
    if written.is_err()
        && tmp.exists()
        && let Err(e) = std::fs::remove_dir_all(&tmp)
    {
        tracing::warn!(path = %tmp.display(), error = %e, "could not remove the partial checkpoint");
    }
    written.map_err(|source| TrainError::CheckpointWrite {
        step,
        output_dir: output_dir.into(),
        source: Box::new(source),
    })
}

fn fill_and_place(
    output_dir: &Path,
    tmp: &Path,
    step: u64,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(output_dir).map_err(io(output_dir))?;
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).map_err(io(tmp))?;
    }
    std::fs::create_dir(tmp).map_err(io(tmp))?;
    write(tmp)?;
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(tmp).map_err(io(tmp))? {
        let entry = entry.map_err(io(tmp))?;
        if entry.file_type().map_err(io(entry.path()))?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    let mut list = String::new();
    for name in &names {
        list.push_str(&format!("{}  {name}\n", sha256_file(&tmp.join(name))?));
    }
    std::fs::write(tmp.join(CHECKSUMS_FILE), list).map_err(io(tmp.join(CHECKSUMS_FILE)))?;
    for name in names.iter().map(String::as_str).chain([CHECKSUMS_FILE]) {
        let path = tmp.join(name);
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
    }
    let target = checkpoint_dir(output_dir, step);
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::rename(tmp, &target).map_err(io(&target))?;
    std::fs::File::open(output_dir).and_then(|d| d.sync_all()).map_err(io(output_dir))?;
    Ok(target)
}

/// The SHA-256 of the file at `path`, as lower-case hex.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks the checkpoint `dir` against its [`CHECKSUMS_FILE`] before a resume reads it: every listed file must be
/// there with the listed SHA-256. A missing or changed file is [`TrainError::Checkpoint`] naming it. A checkpoint
/// without the list (written before it existed) is read unchecked, with a warning.
pub fn verify_checkpoint(dir: &Path) -> Result<()> {
    let list = dir.join(CHECKSUMS_FILE);
    let text = match std::fs::read_to_string(&list) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(checkpoint = %dir.display(), "no {CHECKSUMS_FILE}: the checkpoint's files are not checked");
            return Ok(());
        }
        Err(e) => return Err(io(&list)(e)),
    };
    for (i, line) in text.lines().enumerate() {
        let bad = |message: String| TrainError::Checkpoint { path: list.clone(), message };
        let (hash, name) = line
            .split_once("  ")
            .filter(|(h, n)| h.len() == 64 && !n.is_empty() && !n.contains(['/', '\\']))
            .ok_or_else(|| bad(format!("line {}: expected `<sha256>  <file name>`", i + 1)))?;
        let path = dir.join(name);
        if !path.is_file() {
            return Err(TrainError::Checkpoint {
                path,
                message: format!("is missing (listed in {CHECKSUMS_FILE}); resume from another checkpoint"),
            });
        }
        if sha256_file(&path)? != hash {
            return Err(TrainError::Checkpoint {
                path,
                message: format!(
                    "its SHA-256 differs from the one in {CHECKSUMS_FILE}: the file is damaged or was changed after \
                     the checkpoint was written; resume from another checkpoint"
                ),
            });
        }
    }
    Ok(())
}

/// Removes the temporary directories that interrupted checkpoint writes left in `output_dir` (the trainer does
/// this when a run starts; never while another process may be writing there).
pub fn remove_partial_checkpoints(output_dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(output_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(output_dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(io(output_dir))?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(PARTIAL_PREFIX)) {
            tracing::warn!(path = %path.display(), "removing the partial checkpoint of an interrupted write");
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Every `checkpoint-<step>` directory in `output_dir`, complete or not, by step.
fn checkpoint_dirs(output_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(output_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io(output_dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(io(output_dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if let Some(step) = name.strip_prefix(CHECKPOINT_PREFIX).and_then(|s| s.parse::<u64>().ok())
            && path.is_dir()
        {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The complete checkpoints in `output_dir` (named `checkpoint-<step>`, holding `trainer_state.json`), by step.
/// Temporary directories of writes in progress (or interrupted) are not checkpoints.
pub fn list_checkpoints(output_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = checkpoint_dirs(output_dir)?;
    found.retain(|(_, path)| path.join(TRAINER_STATE).is_file());
    Ok(found)
}

/// The checkpoint with the highest step in `output_dir`. A newest `checkpoint-<step>` directory without
/// `trainer_state.json` is an error naming it (checkpoints are renamed into place whole, so such a directory is
/// damaged), never a silent resume from an older checkpoint.
pub fn latest_checkpoint(output_dir: &Path) -> Result<PathBuf> {
    let Some((step, path)) = checkpoint_dirs(output_dir)?.pop() else {
        return Err(TrainError::Checkpoint {
            path: output_dir.into(),
            message: "resume_from_checkpoint is true, but there is no checkpoint here".into(),
        });
    };
    if !path.join(TRAINER_STATE).is_file() {
        return Err(TrainError::Checkpoint {
            path: path.join(TRAINER_STATE),
            message: format!(
                "is missing, so checkpoint-{step} cannot resume; set resume_from_checkpoint to the path of an \
                 earlier checkpoint, or remove this directory"
            ),
        });
    }
    Ok(path)
}

/// Deletes the oldest checkpoints until at most `limit` remain, never deleting `keep` (the best model's); with a
/// limit of 1 and a best checkpoint older than the newest, both remain.
pub fn rotate_checkpoints(output_dir: &Path, limit: usize, keep: Option<&Path>) -> Result<()> {
    let checkpoints = list_checkpoints(output_dir)?;
    // transformers' rule: with a limit of 1 and a best checkpoint that is not the newest, keep both (the newest is
    // what a resume needs, the best is what load_best_model_at_end restores).
    let newest = checkpoints.last().map(|(_, p)| p.as_path());
    let limit = if limit == 1 && keep.is_some_and(|k| Some(k) != newest) { 2 } else { limit };
    let mut excess = checkpoints.len().saturating_sub(limit);
    for (step, path) in checkpoints {
        if excess == 0 {
            break;
        }
        if keep.is_some_and(|k| k == path) {
            continue;
        }
        tracing::debug!(path = %path.display(), "deleting an old checkpoint (save_total_limit)");
        // Renamed out of the way first, so a crash mid-deletion never leaves a half-deleted `checkpoint-<step>`.
        let doomed = output_dir.join(format!("{PARTIAL_PREFIX}deleted-{step}-{}", std::process::id()));
        std::fs::rename(&path, &doomed).map_err(io(&path))?;
        std::fs::remove_dir_all(&doomed).map_err(io(&doomed))?;
        excess -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(dir: &Path, step: u64) -> PathBuf {
        write_checkpoint(dir, step, |d| {
            std::fs::write(d.join(TRAINER_STATE), "{}").map_err(io(d))?;
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn lists_complete_checkpoints_by_step_and_cleans_partial_ones_on_request() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10, 2, 30] {
            fake(dir.path(), step);
        }
        std::fs::create_dir(dir.path().join("checkpoint-20")).unwrap(); // no state: damaged
        std::fs::create_dir(dir.path().join("tmp-checkpoint-50-1")).unwrap();
        let steps: Vec<u64> = list_checkpoints(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, [2, 10, 30]);
        assert!(dir.path().join("tmp-checkpoint-50-1").exists(), "listing never deletes");
        remove_partial_checkpoints(dir.path()).unwrap();
        assert!(!dir.path().join("tmp-checkpoint-50-1").exists());
        assert_eq!(latest_checkpoint(dir.path()).unwrap(), dir.path().join("checkpoint-30"));
        // The newest without its state: an error naming the file, not a resume from checkpoint-30.
        std::fs::create_dir(dir.path().join("checkpoint-40")).unwrap();
        let message = latest_checkpoint(dir.path()).unwrap_err().to_string();
        let missing = dir.path().join("checkpoint-40").join(TRAINER_STATE);
        assert!(message.starts_with(&format!("{}: is missing, so checkpoint-40 cannot resume", missing.display())));
    }

    #[test]
    fn checksums_are_written_as_sha256sum_does_and_catch_a_flipped_byte_or_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_checkpoint(dir.path(), 7, |d| {
            std::fs::write(d.join(TRAINER_STATE), "{}").map_err(io(d))?;
            std::fs::write(d.join("abc.bin"), b"abc").map_err(io(d))?;
            Ok(())
        })
        .unwrap();
        // SHA-256 of "abc" and of "{}" (FIPS 180-2's example; `printf '{}' | sha256sum`).
        let list = std::fs::read_to_string(written.join(CHECKSUMS_FILE)).unwrap();
        assert_eq!(
            list,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  abc.bin\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a  trainer_state.json\n"
        );
        verify_checkpoint(&written).unwrap();
        std::fs::write(written.join("abc.bin"), b"abd").unwrap();
        let message = verify_checkpoint(&written).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{}: its SHA-256 differs", written.join("abc.bin").display())),
            "{message}"
        );
        std::fs::remove_file(written.join("abc.bin")).unwrap();
        let message = verify_checkpoint(&written).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{}: is missing (listed in", written.join("abc.bin").display())),
            "{message}"
        );
    }

    #[test]
    fn a_write_that_fails_part_way_keeps_the_earlier_checkpoint_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = fake(dir.path(), 1);
        let before = std::fs::read_to_string(earlier.join(CHECKSUMS_FILE)).unwrap();
        let err = write_checkpoint(dir.path(), 2, |d| {
            std::fs::write(d.join("adapter_model.safetensors"), vec![0u8; 4096]).map_err(io(d))?;
            // What a full disk returns (ENOSPC), injected at the second file.
            Err(io(d.join("optimizer.safetensors"))(std::io::Error::from(std::io::ErrorKind::StorageFull)))
        })
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, TrainError::CheckpointWrite { step: 2, .. }), "{err:?}");
        assert!(message.starts_with(&format!("could not write checkpoint-2 in {}: ", dir.path().display())));
        assert!(message.contains("optimizer.safetensors: no storage space"), "{message}");
        assert!(message.ends_with("the checkpoints written before it are intact"), "{message}");
        let left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(left, ["checkpoint-1"], "no partial directory is left");
        assert_eq!(std::fs::read_to_string(earlier.join(CHECKSUMS_FILE)).unwrap(), before);
        verify_checkpoint(&earlier).unwrap();
    }

    #[test]
    fn rotation_keeps_the_newest_and_the_best() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (1..=5).map(|s| fake(dir.path(), s)).collect();
        rotate_checkpoints(dir.path(), 2, Some(&paths[1])).unwrap();
        let steps: Vec<u64> = list_checkpoints(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        // The best (2) is kept and counts toward the limit, as in transformers: the best and the newest remain.
        assert_eq!(steps, [2, 5]);
    }

    #[test]
    fn a_limit_of_one_keeps_the_best_and_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (1..=3).map(|s| fake(dir.path(), s)).collect();
        rotate_checkpoints(dir.path(), 1, Some(&paths[0])).unwrap();
        let steps: Vec<u64> = list_checkpoints(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, [1, 3], "the just-written checkpoint must survive");
        // When the newest is the best, one remains.
        let newest = fake(dir.path(), 4);
        rotate_checkpoints(dir.path(), 1, Some(&newest)).unwrap();
        let steps: Vec<u64> = list_checkpoints(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, [4]);
    }
}
