//! A repo on the Hugging Face Hub, through `hf-hub`, with the standard cache and an offline mode.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hf_hub::repository::RepoTreeEntry;
use hf_hub::{HFClient, HFClientSync, HFError, HFRepositorySync, RepoTypeAny};

use crate::error::{HubError, Result};
use sft_repo::{Repo, list_dir};

use crate::repo::RepoKind;
use crate::settings::HubSettings;

/// A Hub repo at a revision.
///
/// Online, `list` asks the Hub's tree API and `get` downloads into the standard cache
/// (`<cache>/<kind>--<owner>--<name>/{blobs,refs,snapshots}`, shared with Python's `huggingface_hub`), reusing a
/// cached copy whose ETag still matches. Offline (`HF_HUB_OFFLINE=1`), both read the cache only: the revision is
/// resolved through `refs/<revision>` and files are those of `snapshots/<commit>/`. If the Hub cannot be reached
/// while online, a cached snapshot of the revision is used with a warning, as `huggingface_hub` does.
pub struct HubRepo {
    settings: HubSettings,
    kind: RepoKind,
    owner: String,
    name: String,
    revision: String,
    client: Option<HFRepositorySync<RepoTypeAny>>,
    /// Sizes from the last listing, used to verify downloads.
    sizes: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for HubRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubRepo").field("id", &self.id()).field("settings", &self.settings).finish()
    }
}

impl HubRepo {
    /// The repo `id` (`owner/name`) of `kind` at `revision` (default `main`).
    pub fn new(settings: &HubSettings, kind: RepoKind, id: &str, revision: Option<&str>) -> Result<Self> {
        let (owner, name) = parse_id(id)?;
        let client = if settings.offline {
            None
        } else {
            // hf-hub's own client waits for a stalled body forever; this one gives up on a connection or a read
            // after `download_timeout`, and `get` retries.
            let http = reqwest::Client::builder()
                .user_agent(concat!("hf-hub/1.0; sft-rs/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(settings.download_timeout)
                .read_timeout(settings.download_timeout)
                .build()
                .map_err(|e| HubError::Transport {
                    endpoint: settings.endpoint.clone(),
                    step: "building the HTTP client".into(),
                    source: e.without_url(),
                })?;
            let mut builder = HFClient::builder()
                .client(http)
                .endpoint(settings.endpoint.clone())
                .cache_dir(settings.cache_dir.clone())
                .retry_max_attempts(settings.max_retries);
            if let Some(token) = &settings.token {
                builder = builder.token(token.clone());
            }
            let client: HFClientSync =
                builder.build_sync().map_err(|e| HubError::Hub { repo: id.to_owned(), source: Box::new(e) })?;
            let any = match kind {
                RepoKind::Model => RepoTypeAny::Model,
                RepoKind::Dataset => RepoTypeAny::Dataset,
            };
            Some(client.repository(any, owner.clone(), name.clone()))
        };
        Ok(Self {
            settings: settings.clone(),
            kind,
            owner,
            name,
            revision: revision.unwrap_or("main").to_owned(),
            client,
            sizes: Mutex::new(HashMap::new()),
        })
    }

    /// The revision read.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// `<cache>/<kind>--<owner>--<name>`.
    pub fn cache_folder(&self) -> PathBuf {
        self.settings.cache_dir.join(format!("{}--{}--{}", self.kind.plural(), self.owner, self.name))
    }

    fn repo_name(&self) -> String {
        match self.kind {
            RepoKind::Model => format!("{}/{}", self.owner, self.name),
            RepoKind::Dataset => format!("datasets/{}/{}", self.owner, self.name),
        }
    }

    /// The cached snapshot directory of the revision, if the cache has one.
    fn cached_snapshot(&self) -> Option<PathBuf> {
        let folder = self.cache_folder();
        let commit = if is_commit_hash(&self.revision) {
            self.revision.clone()
        } else {
            std::fs::read_to_string(folder.join("refs").join(&self.revision)).ok()?.trim().to_owned()
        };
        let snapshot = folder.join("snapshots").join(commit);
        snapshot.is_dir().then_some(snapshot)
    }

    fn not_cached(&self, what: impl Into<String>) -> HubError {
        HubError::NotCached {
            repo: self.repo_name(),
            revision: self.revision.clone(),
            what: what.into(),
            cache: self.settings.cache_dir.clone(),
        }
    }

    fn list_cached(&self) -> Result<Vec<String>> {
        let snapshot = self.cached_snapshot().ok_or_else(|| self.not_cached("the file listing"))?;
        Ok(list_dir(&snapshot)?)
    }

    fn map_error(&self, error: HFError, file: Option<&str>) -> HubError {
        let repo = self.repo_name();
        let endpoint = self.settings.endpoint.clone();
        let entry = |file: Option<&str>| HubError::EntryNotFound {
            repo: self.repo_name(),
            revision: self.revision.clone(),
            file: file.unwrap_or_default().to_owned(),
        };
        let revision_not_found =
            || HubError::RevisionNotFound { repo: self.repo_name(), revision: self.revision.clone() };
        // hf-hub maps statuses to variants differently per call (a 401 is `AuthRequired` on downloads but `Http` on
        // listings), so decide on the status and the Hub's `X-Error-Code` wherever a response context exists.
        let http = match &error {
            HFError::Http { context } | HFError::AuthRequired { context } | HFError::Forbidden { context } => {
                Some((context.status.as_u16(), context.error_code.clone()))
            }
            _ => None,
        };
        match (http, error) {
            (Some((_, Some(code))), _) if code == "RepoNotFound" => HubError::RepoNotFound { repo, endpoint },
            (Some((_, Some(code))), _) if code == "RevisionNotFound" => revision_not_found(),
            (Some((_, Some(code))), _) if code == "EntryNotFound" => entry(file),
            (Some((401, _)), _) => HubError::Unauthorized { repo, endpoint, had_token: self.settings.token.is_some() },
            (Some((403, _)), _) => HubError::Forbidden { repo },
            (Some((404, _)), _) | (_, HFError::RepoNotFound { .. }) => HubError::RepoNotFound { repo, endpoint },
            (_, HFError::RevisionNotFound { .. }) => revision_not_found(),
            (_, HFError::EntryNotFound { .. }) => entry(file),
            (_, HFError::LocalEntryNotFound { .. }) => self.not_cached(file.unwrap_or("the file listing")),
            (_, e @ HFError::Request { .. }) => HubError::Network { repo, endpoint, source: Box::new(e) },
            (_, other) => HubError::Hub { repo, source: Box::new(other) },
        }
    }

    /// Downloads `file`, retrying (up to `max_retries` times, waits of [`crate::retry::backoff`]) an attempt whose
    /// body received no bytes for `download_timeout` or broke off: hf-hub retries the request itself, but not a body
    /// that stalls half-way, so each layer retries what the other does not. Every other error is final at once.
    fn download(&self, client: &HFRepositorySync<RepoTypeAny>, file: &str) -> Result<PathBuf> {
        let mut attempt = 0;
        loop {
            let reporter = crate::progress::observer().map(|_| crate::progress::DownloadReporter);
            let result = client
                .download_file()
                .filename(file.to_owned())
                .revision(self.revision.clone())
                .maybe_progress(reporter)
                .send();
            let error = match result {
                Ok(path) => return Ok(path),
                Err(e) => e,
            };
            if let Some(observer) = crate::progress::observer() {
                observer.finish(file);
            }
            if !is_broken_body(&error) {
                return Err(self.map_error(error, Some(file)));
            }
            attempt += 1;
            if attempt > self.settings.max_retries {
                return Err(HubError::Stalled {
                    repo: self.repo_name(),
                    file: file.to_owned(),
                    endpoint: self.settings.endpoint.clone(),
                    attempts: attempt,
                    timeout_seconds: self.settings.download_timeout.as_secs_f64(),
                    source: Box::new(error),
                });
            }
            let wait = crate::retry::backoff(attempt);
            tracing::warn!(repo = %self.id(), file, attempt, error = %error, "download failed; retrying in {wait:?}");
            std::thread::sleep(wait);
        }
    }

    /// Removes a downloaded file and the blob it points to, so a bad download is not reused.
    fn discard(path: &Path) {
        if let Ok(blob) = std::fs::canonicalize(path) {
            let _ = std::fs::remove_file(blob);
        }
        let _ = std::fs::remove_file(path);
    }
}

impl Repo for HubRepo {
    type Error = HubError;

    fn id(&self) -> String {
        format!("{}@{}", self.repo_name(), self.revision)
    }

    fn list(&self) -> Result<Vec<String>> {
        let Some(client) = &self.client else {
            return self.list_cached();
        };
        let entries = match client.list_tree().revision(self.revision.clone()).recursive(true).send() {
            Ok(entries) => entries,
            Err(e) => {
                let error = self.map_error(e, None);
                if matches!(error, HubError::Network { .. })
                    && let Ok(files) = self.list_cached()
                {
                    tracing::warn!(repo = %self.id(), %error, "Hub unreachable; using the cached snapshot");
                    return Ok(files);
                }
                return Err(error);
            }
        };
        let mut sizes = HashMap::new();
        let mut files = Vec::new();
        for entry in entries {
            if let RepoTreeEntry::File { path, size, .. } = entry {
                sizes.insert(path.clone(), size);
                files.push(path);
            }
        }
        files.sort();
        if let Ok(mut known) = self.sizes.lock() {
            *known = sizes;
        }
        tracing::debug!(repo = %self.id(), files = files.len(), "listed Hub repo");
        Ok(files)
    }

    fn get(&self, file: &str) -> Result<PathBuf> {
        let Some(client) = &self.client else {
            let snapshot = self.cached_snapshot().ok_or_else(|| self.not_cached(file))?;
            let path = snapshot.join(file);
            return if path.is_file() { Ok(path) } else { Err(self.not_cached(file)) };
        };
        let path = self.download(client, file)?;
        let expected = self.sizes.lock().ok().and_then(|s| s.get(file).copied());
        if let Some(expected) = expected {
            let found = std::fs::metadata(&path).map_err(|source| HubError::Io { path: path.clone(), source })?.len();
            if found != expected {
                Self::discard(&path);
                return Err(HubError::SizeMismatch { repo: self.repo_name(), file: file.to_owned(), expected, found });
            }
        }
        tracing::debug!(repo = %self.id(), file, path = %path.display(), "fetched Hub file");
        Ok(path)
    }
}

/// Whether `error` is a body that stalled (no bytes for the read timeout) or broke off after the response began:
/// the one transport failure hf-hub does not retry itself (its retries cover the requests: connection errors,
/// timeouts before the body, 408, 429 and 5xx), judged on the `reqwest` error in its source chain.
fn is_broken_body(error: &HFError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<reqwest::Error>() {
            return r.is_body() || r.is_decode();
        }
        source = e.source();
    }
    false
}

pub(crate) fn parse_id(id: &str) -> Result<(String, String)> {
    let invalid = || HubError::InvalidRepoId { id: id.to_owned() };
    let (owner, name) = id.split_once('/').ok_or_else(invalid)?;
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !ok(owner) || !ok(name) || name.contains("..") {
        return Err(invalid());
    }
    Ok((owner.to_owned(), name.to_owned()))
}

fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids() {
        assert_eq!(
            parse_id("NebulaSense/Legal_Clause_Instructions").unwrap(),
            ("NebulaSense".to_owned(), "Legal_Clause_Instructions".to_owned())
        );
        for bad in ["squad", "a/b/c", "/abs", "a/", "./data", "a/..", "a b/c"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }
}
