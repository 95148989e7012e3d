use std::path::{Path, PathBuf};

use sft::config::RunConfig;
use sft::data::{DataConfig, Segments, SplitSize};
use sft::hub::{HubSettings, RepoKind};
use sft::{SftError, load_dataset};
use sft_testkit::FakeHub;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn legal(dataset_name: &str) -> DataConfig {
    DataConfig {
        instruction_column: "Instruction".into(),
        input_column: Some("Input".into()),
        output_column: "Output".into(),
        ..DataConfig::new(dataset_name)
    }
}

fn offline_settings(cache: &Path) -> HubSettings {
    HubSettings {
        endpoint: "http://127.0.0.1:9".into(),
        token: None,
        cache_dir: cache.to_path_buf(),
        offline: true,
        max_retries: 0,
        download_timeout: std::time::Duration::from_secs(10),
        username: None,
    }
}

#[test]
fn the_embedded_data_set_splits_by_file_name() {
    let cache = tempfile::tempdir().unwrap();
    let config = RunConfig::from_file(root().join("configs/legal_clauses.json")).unwrap();
    let data =
        DataConfig { dataset_name: root().join("data/legal_clauses").display().to_string(), ..config.dataset_config };
    let splits = load_dataset(&data, &offline_settings(cache.path())).unwrap();
    // 368 train rows minus ceil(0.1 × 368) = 37 for validation; the 32 rows of test.csv are the test split.
    assert_eq!((splits.train.len(), splits.validation.len(), splits.test.len()), (331, 37, 32));
    assert!(splits.test[0].location.to_string().contains("test.csv: row 0"));
}

#[test]
fn a_single_local_file_is_the_train_split() {
    let cache = tempfile::tempdir().unwrap();
    let data = DataConfig {
        test_size: Some(SplitSize::Count(8)),
        ..legal(&root().join("data/legal_clauses/test.csv").display().to_string())
    };
    let splits = load_dataset(&data, &offline_settings(cache.path())).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (24, 8));
}

#[test]
fn a_missing_local_path_is_not_looked_up_on_the_hub() {
    let cache = tempfile::tempdir().unwrap();
    let err = load_dataset(&legal("./no/such/data.csv"), &offline_settings(cache.path())).unwrap_err();
    assert!(matches!(err, SftError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with("./no/such/data.csv: no such file or directory"), "{err}");
}

#[test]
fn a_hub_dataset_end_to_end_then_offline() {
    let train = std::fs::read(root().join("data/legal_clauses/train.csv")).unwrap();
    let test = std::fs::read(root().join("data/legal_clauses/test.csv")).unwrap();
    let hub = FakeHub::start().unwrap();
    let id = "NebulaSense/Legal_Clause_Instructions";
    hub.add_repo(
        RepoKind::Dataset,
        id,
        &[("LegalClause_train.csv", &train), ("LegalClause_test.csv", &test), (".gitattributes", b"*.csv")],
    );
    let cache = tempfile::tempdir().unwrap();
    let online = HubSettings { endpoint: hub.endpoint(), offline: false, ..offline_settings(cache.path()) };
    let seed = RunConfig::from_file(root().join("configs/llama-3.2-1b-legal-qlora.json")).unwrap();
    let splits = load_dataset(&seed.dataset_config, &online).unwrap();
    assert_eq!((splits.train.len(), splits.validation.len(), splits.test.len()), (368, 0, 32));
    let Segments::Completion { prompt, .. } = &splits.train[0].segments else { panic!("instruction data") };
    assert!(prompt.starts_with("### Instruction\nDraft a non-compete clause"), "{prompt}");
    let downloads = hub.requests().iter().filter(|r| r.starts_with("GET /datasets/")).count();
    assert_eq!(downloads, 2, "both CSV files, nothing else");
    drop(hub);

    // Offline re-run: same data from the cache, no server.
    let again = load_dataset(&seed.dataset_config, &offline_settings(cache.path())).unwrap();
    assert_eq!(again, splits);
}

#[test]
fn a_hub_repo_without_data_files() {
    let hub = FakeHub::start().unwrap();
    hub.add_repo(RepoKind::Dataset, "acme/empty", &[("README.md", b"# nothing")]);
    let cache = tempfile::tempdir().unwrap();
    let online = HubSettings { endpoint: hub.endpoint(), offline: false, ..offline_settings(cache.path()) };
    let err = load_dataset(&legal("acme/empty"), &online).unwrap_err();
    assert!(
        err.to_string().starts_with("datasets/acme/empty@main: dataset_config.dataset_name: no .csv, .jsonl, .json or .parquet files in the repo; files found: README.md"),
        "{err}"
    );
}
