//! The Hub path end to end against a fake Hub on 127.0.0.1 (`sft_testkit::FakeHub`).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

mod upload;

use sft_hub::{AnyRepo, HubError, HubRepo, HubSettings, Repo, RepoKind};
use sft_testkit::FakeHub;

const ID: &str = "NebulaSense/Legal_Clause_Instructions";
const TRAIN: &[u8] = b"Instruction,Input,Output\nDraft a clause.,,This Agreement...\n";
const TEST: &[u8] = b"Instruction,Input,Output\nSummarise.,x,y\n";

fn settings(hub: &FakeHub, cache: &Path) -> HubSettings {
    HubSettings {
        endpoint: hub.endpoint(),
        token: None,
        cache_dir: cache.to_path_buf(),
        offline: false,
        max_retries: 0,
        download_timeout: std::time::Duration::from_secs(10),
        username: None,
    }
}

fn legal_hub() -> (FakeHub, String) {
    let hub = FakeHub::start().unwrap();
    let commit = hub.add_repo(
        RepoKind::Dataset,
        ID,
        &[("LegalClause_train.csv", TRAIN), ("LegalClause_test.csv", TEST), ("README.md", b"# card")],
    );
    (hub, commit)
}

#[test]
fn lists_and_downloads_into_the_standard_cache() {
    let (hub, commit) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, None).unwrap();
    assert_eq!(repo.list().unwrap(), ["LegalClause_test.csv", "LegalClause_train.csv", "README.md"]);
    let path = repo.get("LegalClause_train.csv").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), TRAIN);
    // The huggingface_hub layout: snapshots/<commit>/<file> -> ../../blobs/<etag>, refs/main = commit.
    let folder = cache.path().join("datasets--NebulaSense--Legal_Clause_Instructions");
    assert_eq!(path, folder.join("snapshots").join(&commit).join("LegalClause_train.csv"));
    assert_eq!(std::fs::read_to_string(folder.join("refs/main")).unwrap().trim(), commit);
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    let requests = hub.requests();
    assert!(requests.contains(&"GET /api/datasets/NebulaSense/Legal_Clause_Instructions/tree/main".to_owned()));
    assert!(requests.contains(
        &"GET /datasets/NebulaSense/Legal_Clause_Instructions/resolve/main/LegalClause_train.csv".to_owned()
    ));
}

#[test]
fn a_second_download_reuses_the_cached_blob() {
    let (hub, _) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, None).unwrap();
    repo.get("LegalClause_test.csv").unwrap();
    let gets = |hub: &FakeHub| hub.requests().iter().filter(|r| r.starts_with("GET /datasets/")).count();
    assert_eq!(gets(&hub), 1);
    repo.get("LegalClause_test.csv").unwrap();
    assert_eq!(gets(&hub), 1, "only a HEAD the second time");
}

#[test]
fn a_missing_repo_is_a_clear_404() {
    let (hub, _) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, "nobody/nothing", None).unwrap();
    let err = repo.list().unwrap_err();
    assert!(matches!(err, HubError::RepoNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "datasets/nobody/nothing: repository not found on {} (check the name; a private repo also needs HF_TOKEN)",
            hub.endpoint()
        )
    );
}

#[test]
fn a_missing_revision_and_file() {
    let (hub, _) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, Some("v9")).unwrap();
    let err = repo.list().unwrap_err();
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err:?}");
    assert!(err.to_string().ends_with("revision `v9` not found"), "{err}");

    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, None).unwrap();
    let err = repo.get("nope.csv").unwrap_err();
    assert_eq!(err.to_string(), format!("datasets/{ID}@main: no file `nope.csv`"));
}

#[test]
fn a_revision_by_commit_hash() {
    let (hub, commit) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, Some(&commit)).unwrap();
    assert_eq!(std::fs::read(repo.get("LegalClause_test.csv").unwrap()).unwrap(), TEST);
}

#[test]
fn a_gated_repo_needs_the_token() {
    let (hub, _) = legal_hub();
    hub.require_token(RepoKind::Dataset, ID, "hf_secret");
    let cache = tempfile::tempdir().unwrap();
    let anonymous = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, None).unwrap();
    let err = anonymous.list().unwrap_err();
    assert!(matches!(err, HubError::Unauthorized { had_token: false, .. }), "{err:?}");
    assert!(err.to_string().contains("401 Unauthorized; this repo is private or gated: set HF_TOKEN"), "{err}");

    let wrong = HubSettings { token: Some("hf_wrong".into()), ..settings(&hub, cache.path()) };
    let err = HubRepo::new(&wrong, RepoKind::Dataset, ID, None).unwrap().list().unwrap_err();
    assert!(matches!(err, HubError::Unauthorized { had_token: true, .. }), "{err:?}");

    let good = HubSettings { token: Some("hf_secret".into()), ..settings(&hub, cache.path()) };
    let repo = HubRepo::new(&good, RepoKind::Dataset, ID, None).unwrap();
    assert_eq!(repo.list().unwrap().len(), 3);
    assert_eq!(std::fs::read(repo.get("LegalClause_train.csv").unwrap()).unwrap(), TRAIN);
}

#[test]
fn offline_rerun_uses_the_cache_only() {
    let (hub, _) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let online = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, None).unwrap();
    online.list().unwrap();
    online.get("LegalClause_train.csv").unwrap();
    online.get("LegalClause_test.csv").unwrap();
    let endpoint = hub.endpoint();
    drop(hub); // the Hub is gone

    let offline = HubSettings { offline: true, endpoint, ..HubSettings::resolve(|_| None, None).unwrap() };
    let offline = HubSettings { cache_dir: cache.path().to_path_buf(), ..offline };
    let repo = HubRepo::new(&offline, RepoKind::Dataset, ID, None).unwrap();
    assert_eq!(repo.list().unwrap(), ["LegalClause_test.csv", "LegalClause_train.csv"], "what was downloaded");
    assert_eq!(std::fs::read(repo.get("LegalClause_train.csv").unwrap()).unwrap(), TRAIN);
    let err = repo.get("README.md").unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "{err:?}");
    assert!(err.to_string().contains("HF_HUB_OFFLINE is set"), "{err}");

    let other = HubRepo::new(&offline, RepoKind::Dataset, "nobody/nothing", None).unwrap();
    let err = other.list().unwrap_err();
    assert!(err.to_string().contains("`the file listing` is not in the cache"), "{err}");
}

#[test]
fn an_unreachable_hub_falls_back_to_the_cache_or_says_so() {
    let (hub, _) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let s = settings(&hub, cache.path());
    HubRepo::new(&s, RepoKind::Dataset, ID, None).unwrap().get("LegalClause_test.csv").unwrap();
    drop(hub);
    let repo = HubRepo::new(&s, RepoKind::Dataset, ID, None).unwrap();
    assert_eq!(repo.list().unwrap(), ["LegalClause_test.csv"], "cached snapshot");
    let empty = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings_for(&s, empty.path()), RepoKind::Dataset, ID, None).unwrap();
    let err = repo.list().unwrap_err();
    assert!(matches!(err, HubError::Network { .. }), "{err:?}");
    assert!(err.to_string().contains("set HF_HUB_OFFLINE=1 to use the local cache only"), "{err}");
}

fn settings_for(s: &HubSettings, cache: &Path) -> HubSettings {
    HubSettings { cache_dir: cache.to_path_buf(), ..s.clone() }
}

#[test]
fn an_error_page_is_never_kept_as_data() {
    let (hub, _) = legal_hub();
    hub.break_download(RepoKind::Dataset, ID, "LegalClause_train.csv");
    let cache = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, None).unwrap();
    repo.list().unwrap();
    let err = repo.get("LegalClause_train.csv").unwrap_err();
    assert!(matches!(err, HubError::SizeMismatch { found: 6, .. }), "{err:?}");
    let snapshot_file = cache.path().join("datasets--NebulaSense--Legal_Clause_Instructions/snapshots");
    let mut left = Vec::new();
    if snapshot_file.exists() {
        for commit in std::fs::read_dir(&snapshot_file).unwrap() {
            left.extend(std::fs::read_dir(commit.unwrap().path()).unwrap().map(|e| e.unwrap().file_name()));
        }
    }
    assert!(left.is_empty(), "the bad copy was removed: {left:?}");
}

#[test]
fn model_repos_and_local_directories_share_the_seam() {
    let hub = FakeHub::start().unwrap();
    hub.add_repo(RepoKind::Model, "acme/tiny-llama", &[("config.json", b"{}"), ("model.safetensors", b"xx")]);
    let cache = tempfile::tempdir().unwrap();
    let repo = AnyRepo::open("acme/tiny-llama", RepoKind::Model, None, &settings(&hub, cache.path())).unwrap();
    assert!(matches!(repo, AnyRepo::Hub(_)));
    assert_eq!(repo.list().unwrap(), ["config.json", "model.safetensors"]);
    assert!(repo.get("config.json").unwrap().starts_with(cache.path().join("models--acme--tiny-llama")));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let local =
        AnyRepo::open(dir.path().to_str().unwrap(), RepoKind::Model, None, &settings(&hub, cache.path())).unwrap();
    assert!(matches!(local, AnyRepo::Local(_)));
    assert_eq!(local.list().unwrap(), ["config.json"]);
    let err = AnyRepo::open("not a repo", RepoKind::Model, None, &settings(&hub, cache.path())).unwrap_err();
    assert!(err.to_string().contains("is not a Hub repo id"), "{err}");
}

#[test]
fn a_download_that_stalls_half_way_times_out_and_is_retried() {
    let (hub, _) = legal_hub();
    let cache = tempfile::tempdir().unwrap();
    let timeout = std::time::Duration::from_millis(300);
    let settings = HubSettings { max_retries: 2, download_timeout: timeout, ..settings(&hub, cache.path()) };
    // The first GET sends half the file, then nothing for longer than the timeout: the retry gets it whole.
    hub.stall_download("LegalClause_train.csv", 1, timeout * 3);
    let repo = HubRepo::new(&settings, RepoKind::Dataset, ID, None).unwrap();
    let path = repo.get("LegalClause_train.csv").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), TRAIN);
    let gets = hub.requests().iter().filter(|r| r.starts_with("GET /datasets/") && r.ends_with("train.csv")).count();
    assert_eq!(gets, 2, "{:?}", hub.requests());

    // Every attempt stalls: a clear error after 1 + 2 attempts, and nothing half-written in the cache.
    let cache = tempfile::tempdir().unwrap();
    let settings = HubSettings { cache_dir: cache.path().to_path_buf(), ..settings };
    hub.stall_download("LegalClause_test.csv", 3, timeout * 3);
    let repo = HubRepo::new(&settings, RepoKind::Dataset, ID, None).unwrap();
    let err = repo.get("LegalClause_test.csv").unwrap_err();
    assert!(matches!(err, HubError::Stalled { attempts: 3, .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "datasets/{ID}: downloading `LegalClause_test.csv` from {} failed 3 times",
            hub.endpoint()
        )),
        "{message}"
    );
    assert!(message.contains("no bytes arrived for 0.3 s (HF_HUB_DOWNLOAD_TIMEOUT)"), "{message}");
    let snapshot_files: Vec<_> =
        walkdir(cache.path()).into_iter().filter(|p| p.ends_with("LegalClause_test.csv")).collect();
    assert!(snapshot_files.is_empty(), "{snapshot_files:?}");
}

/// Every file under `dir`, recursively.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn paths_with_multi_byte_characters_are_listed_and_downloaded() {
    let hub = FakeHub::start().unwrap();
    let name = "données/été 2024.csv";
    hub.add_repo(RepoKind::Dataset, ID, &[(name, TRAIN)]);
    let cache = tempfile::tempdir().unwrap();
    let repo = HubRepo::new(&settings(&hub, cache.path()), RepoKind::Dataset, ID, None).unwrap();
    assert_eq!(repo.list().unwrap(), [name]);
    assert_eq!(std::fs::read(repo.get(name).unwrap()).unwrap(), TRAIN);
    // The request carried the path percent-encoded (UTF-8 bytes), and the server decoded it.
    let encoded = "donn%C3%A9es/%C3%A9t%C3%A9%202024.csv";
    assert!(hub.requests().iter().any(|r| r.ends_with(&format!("/resolve/main/{encoded}"))), "{:?}", hub.requests());

    // A malformed escape next to a multi-byte character (which a byte-sliced decoder panics on) is a 404: `é`
    // encoded, a lone `%`, then a truncated UTF-8 sequence.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(hub.endpoint().trim_start_matches("http://")).unwrap();
    write!(stream, "GET /datasets/{ID}/resolve/main/%C3%A9%%e9%C3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}
