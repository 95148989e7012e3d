//! Pushing adapters to the Hub through the `sft` binary, against the fake Hub on 127.0.0.1: after training
//! (`push_to_hub`), a push that fails in the middle of an LFS upload (clear error, the adapter intact, `sft push`
//! retries), a rejected token — and the token never appears in any file the run writes or in its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sft::hub::RepoKind;
use sft_testkit::FakeHub;

const TOKEN: &str = "hf_TestSecretToken0123456789abcdef";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `sft` online against `hub` with `token`, a private `HF_HOME` and debug logs.
fn sft(hub: &FakeHub, home: &Path, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(args)
        .current_dir(root())
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_USERNAME")
        .env("HF_ENDPOINT", hub.endpoint())
        .env("HF_TOKEN", token)
        .env("HF_HOME", home)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap()
}

fn train_args(output_dir: &Path) -> Vec<String> {
    crate::short_train_args(output_dir, &["training_args.push_to_hub=true", "training_args.hub_model_id=legal-lora"])
}

/// The files of `dir` (relative path → bytes), recursively.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The token reached the Hub (so the checks below are not vacuous) and nowhere else.
fn assert_token_kept_secret(hub: &FakeHub, output_dir: &Path, outputs: &[&Output]) {
    assert!(contains(&hub.received(), TOKEN), "the token was never sent");
    for (name, bytes) in files(output_dir) {
        assert!(!contains(&bytes, TOKEN), "the token is in {name}");
    }
    for output in outputs {
        assert!(!contains(&output.stdout, TOKEN) && !contains(&output.stderr, TOKEN), "the token was printed");
    }
}

/// What the Hub repo should hold: the output directory without checkpoints.
fn pushed_part(output_dir: &Path) -> Vec<(String, Vec<u8>)> {
    files(output_dir).into_iter().filter(|(name, _)| !name.starts_with("checkpoint-")).collect()
}

#[test]
fn train_pushes_the_adapter_and_a_model_card() {
    let hub = FakeHub::start().unwrap();
    hub.add_user("alice", TOKEN);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("run");
    let args = train_args(&output_dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = sft(&hub, home.path(), TOKEN, &args);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&result.stderr));
    // `hub_model_id` without a namespace: the token's owner (whoami).
    assert!(stdout.contains("pushed      alice/legal-lora"), "{stdout}");

    let repo: Vec<(String, Vec<u8>)> =
        hub.repo_files(RepoKind::Model, "alice/legal-lora").unwrap().into_iter().collect();
    assert_eq!(repo, pushed_part(&output_dir));
    let names: Vec<&str> = repo.iter().map(|(n, _)| n.as_str()).collect();
    for file in
        ["README.md", "adapter_config.json", "adapter_model.safetensors", "run_config.json", "trainer_state.json"]
    {
        assert!(names.contains(&file), "{file} not pushed: {names:?}");
    }
    let card = String::from_utf8(repo.iter().find(|(n, _)| n == "README.md").unwrap().1.clone()).unwrap();
    assert!(card.starts_with("---\n") && card.contains("library_name: peft\n"), "{card}");
    assert!(
        card.contains("# legal-lora") && card.contains("| 2 |") && card.contains("\"push_to_hub\": true"),
        "{card}"
    );
    assert_token_kept_secret(&hub, &output_dir, &[&result]);
}

#[test]
fn a_failed_push_keeps_the_adapter_and_sft_push_retries() {
    let hub = FakeHub::start().unwrap();
    hub.add_user("alice", TOKEN);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("run");
    let args = train_args(&output_dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Every LFS upload fails with 500: the run's push gives up after its retries.
    hub.fail_lfs_uploads(0, usize::MAX);
    let failed = sft(&hub, home.path(), TOKEN, &args);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: alice/legal-lora: upload adapter_model.safetensors (LFS) failed (HTTP 500)"),
        "{last}"
    );
    assert!(last.contains(&format!("retry with `sft push --adapter {}`", output_dir.display())), "{last}");
    // Nothing was committed; the adapter is complete and loads.
    assert_eq!(hub.repo_files(RepoKind::Model, "alice/legal-lora").unwrap().len(), 0);
    let before = files(&output_dir);
    sft::peft::read_adapter_config(&output_dir).unwrap();

    // A token the Hub rejects: a clear 401, nothing printed of the token.
    let wrong = "hf_WrongToken_000000000000";
    let rejected = sft(&hub, home.path(), wrong, &["push", "--adapter", output_dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert_eq!(rejected.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().contains("401 Unauthorized to the token given (check HF_TOKEN)"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong));

    // The Hub recovers: `sft push` finds the repo name in the run config and pushes the same files.
    hub.fail_lfs_uploads(0, 0);
    let retried = sft(&hub, home.path(), TOKEN, &["push", "--adapter", output_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&retried.stdout);
    assert!(retried.status.success(), "{stdout}{}", String::from_utf8_lossy(&retried.stderr));
    assert!(stdout.contains("→ alice/legal-lora"), "{stdout}");
    assert_eq!(files(&output_dir), before, "the push changed local files");
    let repo: Vec<(String, Vec<u8>)> =
        hub.repo_files(RepoKind::Model, "alice/legal-lora").unwrap().into_iter().collect();
    assert_eq!(repo, pushed_part(&output_dir));
    assert_token_kept_secret(&hub, &output_dir, &[&failed, &rejected, &retried]);
}
