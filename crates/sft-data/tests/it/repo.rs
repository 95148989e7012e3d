//! `SplitFiles::from_repo`: a data repo read through the `Repo` seam.

use sft_data::{DataError, SplitFiles};
use sft_repo::{Repo, RepoError};
use sft_testkit::RecordingRepo;

#[test]
fn picks_splits_by_name_and_fetches_only_the_data_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    for file in ["README.md", "data/test-00000-of-00001.csv", "data/train-00000-of-00001.csv", "notes.txt"] {
        std::fs::write(dir.path().join(file), "instruction,output\na,b\n").unwrap();
    }
    let repo = RecordingRepo::new(dir.path());
    let files = SplitFiles::from_repo(&repo).unwrap();
    assert_eq!(files.train, [dir.path().join("data/train-00000-of-00001.csv")]);
    assert!(files.validation.is_empty());
    assert_eq!(files.test, [dir.path().join("data/test-00000-of-00001.csv")]);
    assert_eq!(repo.fetched(), ["data/train-00000-of-00001.csv", "data/test-00000-of-00001.csv"]);
}

#[test]
fn a_repo_without_data_files_lists_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "# no data").unwrap();
    let repo = RecordingRepo::new(dir.path());
    let err = SplitFiles::from_repo(&repo).unwrap_err();
    assert!(matches!(&err, DataError::Repo(e) if matches!(**e, RepoError::Missing { .. })), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: no .csv, .jsonl, .json or .parquet files; files found: README.md", repo.id())
    );
    assert!(repo.fetched().is_empty());
}
