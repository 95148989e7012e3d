//! Checkpoint directories: `output_dir/checkpoint-<step>/`, written whole into a temporary directory and renamed,
//! so a crash (even SIGKILL mid-write) leaves earlier checkpoints intact and never a partial `checkpoint-<step>`.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError, io};
use crate::state::TRAINER_STATE;

/// Directory name prefix of checkpoints.
pub const CHECKPOINT_PREFIX: &str = "checkpoint-";

/// Prefix of directories being written (never read as checkpoints; removed when found).
const PARTIAL_PREFIX: &str = "tmp-checkpoint-";

/// `output_dir/checkpoint-<step>`.
pub fn checkpoint_dir(output_dir: &Path, step: u64) -> PathBuf {
    output_dir.join(format!("{CHECKPOINT_PREFIX}{step}"))
}

/// Writes `output_dir/checkpoint-<step>`: `write` fills a fresh temporary directory, every file in it is flushed
/// to disk, then the directory is renamed into place (replacing an older checkpoint of the same step).
pub fn write_checkpoint(output_dir: &Path, step: u64, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    std::fs::create_dir_all(output_dir).map_err(io(output_dir))?;
    let tmp = output_dir.join(format!("{PARTIAL_PREFIX}{step}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    write(&tmp)?;
    for entry in std::fs::read_dir(&tmp).map_err(io(&tmp))? {
        let path = entry.map_err(io(&tmp))?.path();
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
    }
    let target = checkpoint_dir(output_dir, step);
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    std::fs::File::open(output_dir).and_then(|d| d.sync_all()).map_err(io(output_dir))?;
    Ok(target)
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

/// The complete checkpoints in `output_dir` (named `checkpoint-<step>`, holding `trainer_state.json`), by step.
/// Temporary directories of writes in progress (or interrupted) are not checkpoints.
pub fn list_checkpoints(output_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
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
            && path.join(TRAINER_STATE).is_file()
        {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The checkpoint with the highest step in `output_dir`.
pub fn latest_checkpoint(output_dir: &Path) -> Result<PathBuf> {
    list_checkpoints(output_dir)?.pop().map(|(_, path)| path).ok_or_else(|| TrainError::Checkpoint {
        path: output_dir.into(),
        message: "resume_from_checkpoint is true, but there is no checkpoint here".into(),
    })
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
        std::fs::create_dir(dir.path().join("checkpoint-40")).unwrap(); // no state: incomplete
        std::fs::create_dir(dir.path().join("tmp-checkpoint-50-1")).unwrap();
        let steps: Vec<u64> = list_checkpoints(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, [2, 10, 30]);
        assert!(dir.path().join("tmp-checkpoint-50-1").exists(), "listing never deletes");
        remove_partial_checkpoints(dir.path()).unwrap();
        assert!(!dir.path().join("tmp-checkpoint-50-1").exists());
        assert_eq!(latest_checkpoint(dir.path()).unwrap(), dir.path().join("checkpoint-30"));
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
