//! The upload side against the fake Hub: whoami, repo creation, preupload, LFS batch + upload + verify, commit.

use std::path::Path;

use sft_hub::{HubError, HubSettings, HubUploader, RepoKind, UploadFile, folder_files};
use sft_testkit::FakeHub;

const TOKEN: &str = "hf_write_alice_0123456789";
const REPO: &str = "alice/legal-lora";

fn settings(hub: &FakeHub, token: Option<&str>, max_retries: usize) -> HubSettings {
    HubSettings {
        endpoint: hub.endpoint(),
        token: token.map(str::to_owned),
        cache_dir: std::env::temp_dir(),
        offline: false,
        max_retries,
        download_timeout: std::time::Duration::from_secs(10),
        username: None,
    }
}

/// An adapter-like folder: two text files and two binary ones (bytes with NULs, as safetensors have).
fn adapter_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("adapter_config.json"), br#"{"r": 8, "lora_alpha": 16}"#).unwrap();
    std::fs::write(dir.path().join("README.md"), b"---\nlibrary_name: peft\n---\n# card\n").unwrap();
    let weights: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.path().join("adapter_model.safetensors"), &weights).unwrap();
    std::fs::create_dir(dir.path().join("runs")).unwrap();
    std::fs::write(dir.path().join("runs/events.bin"), [0u8, 1, 2, 3, 0, 0, 7]).unwrap();
    dir
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    folder_files(dir, |_| false)
        .unwrap()
        .into_iter()
        .map(|f| (f.path_in_repo, std::fs::read(f.local).unwrap()))
        .collect()
}

fn lfs_puts(hub: &FakeHub) -> usize {
    hub.requests().iter().filter(|r| r.starts_with("PUT /lfs/")).count()
}

#[test]
fn pushes_a_folder_with_lfs_for_binary_files() {
    let hub = FakeHub::start().unwrap();
    hub.add_user("alice", TOKEN);
    let up = HubUploader::new(&settings(&hub, Some(TOKEN), 0)).unwrap();
    assert_eq!(up.whoami().unwrap(), "alice");
    let url = up.create_repo(RepoKind::Model, REPO, true).unwrap();
    assert_eq!(url, format!("{}/{REPO}", hub.endpoint()));
    assert_eq!(hub.is_private(RepoKind::Model, REPO), Some(true));

    let dir = adapter_dir();
    let files = folder_files(dir.path(), |_| false).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path_in_repo.as_str()).collect();
    assert_eq!(names, ["README.md", "adapter_config.json", "adapter_model.safetensors", "runs/events.bin"]);
    let info = up.upload_files(RepoKind::Model, REPO, "main", &files, "Upload adapter").unwrap();
    assert_eq!(info.commit_oid.len(), 40);
    assert!(info.commit_url.ends_with(&info.commit_oid));

    let pushed: Vec<(String, Vec<u8>)> = hub.repo_files(RepoKind::Model, REPO).unwrap().into_iter().collect();
    assert_eq!(pushed, snapshot(dir.path()));
    // The two binary files went through LFS (one PUT each to the URL the batch answer gave); the text inline.
    assert_eq!(lfs_puts(&hub), 2);
    let requests = hub.requests();
    for route in [
        "GET /api/whoami-v2",
        "POST /api/repos/create",
        "POST /api/models/alice/legal-lora/preupload/main",
        "POST /alice/legal-lora.git/info/lfs/objects/batch",
        "POST /api/models/alice/legal-lora/commit/main",
    ] {
        assert!(requests.iter().any(|r| r == route), "{route} not in {requests:?}");
    }
    assert_eq!(requests.iter().filter(|r| r.ends_with("/verify")).count(), 2);

    // Pushing again: the repo exists (409 is fine), the LFS objects are on the Hub, nothing is uploaded twice.
    up.create_repo(RepoKind::Model, REPO, true).unwrap();
    up.upload_files(RepoKind::Model, REPO, "main", &files, "Again").unwrap();
    assert_eq!(lfs_puts(&hub), 2);
}

#[test]
fn tokens_are_checked() {
    let hub = FakeHub::start().unwrap();
    hub.add_user("alice", TOKEN);
    let missing = HubUploader::new(&settings(&hub, None, 0)).unwrap_err();
    assert!(matches!(missing, HubError::TokenRequired), "{missing}");
    assert!(missing.to_string().contains("HF_TOKEN"));
    let mut offline = settings(&hub, Some(TOKEN), 0);
    offline.offline = true;
    assert!(matches!(HubUploader::new(&offline).unwrap_err(), HubError::Offline { .. }));

    let wrong = HubUploader::new(&settings(&hub, Some("hf_wrong"), 0)).unwrap();
    let err = wrong.whoami().unwrap_err();
    assert!(matches!(err, HubError::Unauthorized { had_token: true, .. }), "{err}");
    let err = wrong.create_repo(RepoKind::Model, REPO, false).unwrap_err();
    assert!(matches!(err, HubError::Unauthorized { .. }), "{err}");
    assert!(!err.to_string().contains("hf_wrong"), "{err}");
    assert_eq!(hub.repo_files(RepoKind::Model, REPO), None);

    // A valid token, but another namespace.
    let up = HubUploader::new(&settings(&hub, Some(TOKEN), 0)).unwrap();
    let err = up.create_repo(RepoKind::Model, "bob/legal-lora", false).unwrap_err();
    assert!(matches!(err, HubError::Forbidden { .. }), "{err}");
}

#[test]
fn a_500_in_the_middle_of_an_upload_fails_cleanly_and_a_retry_succeeds() {
    let hub = FakeHub::start().unwrap();
    hub.add_user("alice", TOKEN);
    let up = HubUploader::new(&settings(&hub, Some(TOKEN), 1)).unwrap();
    up.create_repo(RepoKind::Model, REPO, false).unwrap();
    let dir = adapter_dir();
    let before = snapshot(dir.path());
    let files = folder_files(dir.path(), |_| false).unwrap();

    // The first LFS upload succeeds, then the storage fails (more often than the one retry).
    hub.fail_lfs_uploads(1, 100);
    let err = up.upload_files(RepoKind::Model, REPO, "main", &files, "Upload adapter").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, HubError::Upload { status: Some(500), .. }), "{message}");
    assert!(message.contains("alice/legal-lora") && message.contains("(LFS)"), "{message}");
    assert!(message.contains("storage backend unavailable"), "{message}");
    assert_eq!(lfs_puts(&hub), 1 + 2, "one success, then the failing upload and its retry");
    // Nothing was committed; the local files are untouched.
    assert_eq!(hub.repo_files(RepoKind::Model, REPO).unwrap().len(), 0);
    assert_eq!(snapshot(dir.path()), before);

    // The Hub recovers: the retry uploads only the object that failed, and commits.
    hub.fail_lfs_uploads(0, 0);
    up.upload_files(RepoKind::Model, REPO, "main", &files, "Upload adapter").unwrap();
    assert_eq!(lfs_puts(&hub), 3 + 1);
    let pushed: Vec<(String, Vec<u8>)> = hub.repo_files(RepoKind::Model, REPO).unwrap().into_iter().collect();
    assert_eq!(pushed, before);
}

#[test]
fn a_transient_500_is_retried() {
    let hub = FakeHub::start().unwrap();
    hub.add_user("alice", TOKEN);
    let up = HubUploader::new(&settings(&hub, Some(TOKEN), 2)).unwrap();
    up.create_repo(RepoKind::Model, REPO, false).unwrap();
    let dir = adapter_dir();
    hub.fail_lfs_uploads(0, 1);
    let files = vec![UploadFile {
        path_in_repo: "adapter_model.safetensors".into(),
        local: dir.path().join("adapter_model.safetensors"),
    }];
    up.upload_files(RepoKind::Model, REPO, "main", &files, "Upload").unwrap();
    assert_eq!(lfs_puts(&hub), 2);
    assert_eq!(hub.repo_files(RepoKind::Model, REPO).unwrap().len(), 1);
}

/// Records the transfer events of the files whose names start with `progress-`.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl sft_hub::TransferObserver for Recorder {
    fn start(&self, file: &str, total_bytes: u64, direction: sft_hub::Direction) {
        if file.starts_with("progress-") {
            self.0.lock().unwrap().push(format!("start {file} {total_bytes} {direction:?}"));
        }
    }
    fn advance(&self, file: &str, bytes_done: u64) {
        if file.starts_with("progress-") {
            self.0.lock().unwrap().push(format!("advance {file} {bytes_done}"));
        }
    }
    fn finish(&self, file: &str) {
        if file.starts_with("progress-") {
            self.0.lock().unwrap().push(format!("finish {file}"));
        }
    }
}

#[test]
fn downloads_and_uploads_report_progress() {
    let recorder = std::sync::Arc::new(Recorder::default());
    assert!(sft_hub::set_transfer_observer(recorder.clone()), "installed once per process");
    let hub = FakeHub::start().unwrap();
    hub.add_user("alice", TOKEN);
    let content = vec![7u8; 5000];
    hub.add_repo(RepoKind::Model, "alice/source", &[("progress-down.bin", &content)]);
    let cache = tempfile::tempdir().unwrap();
    let repo = sft_hub::HubRepo::new(
        &HubSettings { cache_dir: cache.path().into(), ..settings(&hub, None, 0) },
        RepoKind::Model,
        "alice/source",
        None,
    )
    .unwrap();
    sft_hub::Repo::get(&repo, "progress-down.bin").unwrap();

    let up = HubUploader::new(&settings(&hub, Some(TOKEN), 0)).unwrap();
    up.create_repo(RepoKind::Model, REPO, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("progress-up.safetensors"), &content[..3000]).unwrap();
    let files = folder_files(dir.path(), |_| false).unwrap();
    up.upload_files(RepoKind::Model, REPO, "main", &files, "Upload").unwrap();

    let events = recorder.0.lock().unwrap().clone();
    let of = |name: &str| -> Vec<String> { events.iter().filter(|e| e.contains(name)).cloned().collect() };
    for (name, size, direction) in
        [("progress-down.bin", 5000, "Download"), ("progress-up.safetensors", 3000, "Upload")]
    {
        let events = of(name);
        assert_eq!(events.first().unwrap(), &format!("start {name} {size} {direction}"), "{events:?}");
        assert_eq!(events[events.len() - 2], format!("advance {name} {size}"), "{events:?}");
        assert_eq!(events.last().unwrap(), &format!("finish {name}"), "{events:?}");
    }
}
