//! The upload side of the Hub: who am I, create a repo, and commit files, with large and binary files through Git
//! LFS, the way `huggingface_hub.HfApi.create_commit` does it.
//!
//! About 530 lines in one file: the four request kinds below are one protocol that shares the client, the retry
//! policy and the error context; split apart, each step would have to carry that state across files.
//!
//! A commit of local files takes four kinds of request:
//!
//! 1. `POST /api/{models|datasets}/{id}/preupload/{revision}` with each file's path, size and first 512 bytes: the
//!    Hub answers `uploadMode` `regular` (sent inline in the commit) or `lfs`, and which paths to ignore;
//! 2. `POST /{[datasets/]id}.git/info/lfs/objects/batch` (the Git LFS batch API) with the SHA-256 and size of each
//!    LFS file: the Hub answers, per object, nothing (already stored) or an upload action — `basic` (one `PUT`) or
//!    `multipart` (numbered part URLs, `chunk_size`, then a completion `POST`) — and a `verify` action;
//! 3. the uploads themselves, then `verify`;
//! 4. `POST /api/{models|datasets}/{id}/commit/{revision}`, NDJSON: a header (summary, description), one `file`
//!    line per regular file (base64) and one `lfsFile` line per LFS file (oid, size).
//!
//! Requests that may be repeated (preupload, batch, uploads, verify) are retried on connection errors, 408, 429 and
//! 5xx, `max_retries` times with doubling waits from 200 ms; the commit itself is sent once. A push that fails
//! leaves nothing half-done on the Hub side that a retry trips on: LFS objects already stored are skipped by the
//! batch answer, and the commit is what makes files appear. The token is sent only to the Hub endpoint (never to
//! the pre-signed upload URLs), marked sensitive in the HTTP client, and never logged.
//!
//! One file of about 500 lines, on purpose: the four requests are one protocol whose steps share the client, the
//! authorisation and the retry loop, and read best in order.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use reqwest::blocking::{Body, Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{HubError, Result};
use crate::progress::{CountingReader, upload_finished};
use crate::repo::RepoKind;
use crate::settings::HubSettings;

const LFS_JSON: &str = "application/vnd.git-lfs+json";
/// Bytes of each file sent to the preupload route (as `huggingface_hub` does).
const SAMPLE_BYTES: usize = 512;

/// A file to commit: its path in the repo and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    /// Path in the repo, `/`-separated.
    pub path_in_repo: String,
    /// The local file.
    pub local: PathBuf,
}

/// The result of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommitInfo {
    /// The new commit's hash.
    #[serde(rename = "commitOid")]
    pub commit_oid: String,
    /// Its page on the Hub.
    #[serde(rename = "commitUrl")]
    pub commit_url: String,
}

/// A Hub client with write access: a token is required.
pub struct HubUploader {
    endpoint: String,
    max_retries: usize,
    auth: HeaderValue,
    client: Client,
}

impl std::fmt::Debug for HubUploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubUploader").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// One local file, measured: size, SHA-256 and the preupload sample.
#[derive(Debug)]
struct Prepared {
    file: UploadFile,
    size: u64,
    sha256: String,
    sample: Vec<u8>,
}

impl HubUploader {
    /// A client for `settings.endpoint` with `settings.token`. Fails without a token (naming `HF_TOKEN`) and in
    /// offline mode.
    pub fn new(settings: &HubSettings) -> Result<Self> {
        if settings.offline {
            return Err(HubError::Offline { action: "pushing to the Hub".into() });
        }
        let token = settings.token.as_deref().ok_or(HubError::TokenRequired)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| HubError::TokenRequired)?;
        auth.set_sensitive(true);
        let client = Client::builder()
            .user_agent(concat!("sft-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(None)
            .build()
            .map_err(|e| HubError::Transport {
                endpoint: settings.endpoint.clone(),
                step: "building the HTTP client".into(),
                source: e.without_url(),
            })?;
        Ok(Self { endpoint: settings.endpoint.clone(), max_retries: settings.max_retries, auth, client })
    }

    /// The account the token belongs to (`GET /api/whoami-v2`).
    pub fn whoami(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct WhoAmI {
            name: String,
        }
        let url = format!("{}/api/whoami-v2", self.endpoint);
        let response =
            self.send("whoami", "whoami", true, || Ok(self.client.get(&url).header(AUTHORIZATION, &self.auth)))?;
        let who: WhoAmI = json(response, "whoami", "whoami")?;
        Ok(who.name)
    }

    /// Creates repo `id` of `kind` (`POST /api/repos/create`); an existing repo is fine (`exist_ok=True`). Returns
    /// the repo's URL.
    pub fn create_repo(&self, kind: RepoKind, id: &str, private: bool) -> Result<String> {
        #[derive(Deserialize)]
        struct Created {
            url: String,
        }
        let (namespace, name) = crate::hub::parse_id(id)?;
        let body = serde_json::json!({
            "name": name,
            "organization": namespace,
            "private": private,
            "type": kind.singular(),
        });
        let url = format!("{}/api/repos/create", self.endpoint);
        let response = self.send(id, "create the repo", true, || {
            Ok(self.client.post(&url).header(AUTHORIZATION, &self.auth).json(&body))
        });
        match response {
            Ok(r) => Ok(json::<Created>(r, id, "create the repo")?.url),
            Err(HubError::Upload { status: Some(409), .. }) => {
                tracing::debug!(repo = id, "repo exists");
                Ok(format!("{}/{}{}", self.endpoint, kind.url_prefix(), id))
            }
            Err(e) => Err(e),
        }
    }

    /// Commits `files` to `revision` of repo `id` with the commit message `summary`: preupload, LFS uploads of the
    /// files the Hub wants in LFS, then one commit. Every local file is read, never changed.
    pub fn upload_files(
        &self,
        kind: RepoKind,
        id: &str,
        revision: &str,
        files: &[UploadFile],
        summary: &str,
    ) -> Result<CommitInfo> {
        let prepared = files.iter().map(prepare).collect::<Result<Vec<_>>>()?;
        let modes = self.preupload(kind, id, revision, &prepared)?;
        let mut lines = vec![serde_json::json!({"key": "header", "value": {"summary": summary, "description": ""}})];
        let mut lfs = Vec::new();
        for p in &prepared {
            match modes.get(&p.file.path_in_repo) {
                Some(Mode { should_ignore: true, .. }) => {
                    tracing::info!(file = %p.file.path_in_repo, "ignored by the Hub (.gitignore)");
                }
                Some(Mode { upload_mode, .. }) if upload_mode == "lfs" => lfs.push(p),
                _ => {
                    let bytes = std::fs::read(&p.file.local).map_err(io(&p.file.local))?;
                    let content = base64::engine::general_purpose::STANDARD.encode(bytes);
                    lines.push(serde_json::json!({"key": "file", "value": {
                        "content": content, "path": p.file.path_in_repo, "encoding": "base64"}}));
                }
            }
        }
        if !lfs.is_empty() {
            self.upload_lfs(kind, id, revision, &lfs)?;
        }
        for p in &lfs {
            lines.push(serde_json::json!({"key": "lfsFile", "value": {
                "path": p.file.path_in_repo, "algo": "sha256", "oid": p.sha256, "size": p.size}}));
        }
        let mut body = Vec::new();
        for line in &lines {
            body.extend_from_slice(line.to_string().as_bytes());
            body.push(b'\n');
        }
        let url = format!("{}/api/{}/{id}/commit/{}", self.endpoint, kind.plural(), encode(revision));
        let response = self.send(id, "commit", false, || {
            Ok(self
                .client
                .post(&url)
                .header(AUTHORIZATION, &self.auth)
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .body(body.clone()))
        })?;
        let info: CommitInfo = json(response, id, "commit")?;
        tracing::info!(repo = id, commit = %info.commit_oid, files = prepared.len(), lfs = lfs.len(), "pushed");
        Ok(info)
    }

    fn preupload(
        &self,
        kind: RepoKind,
        id: &str,
        revision: &str,
        prepared: &[Prepared],
    ) -> Result<BTreeMap<String, Mode>> {
        #[derive(Deserialize)]
        struct Answer {
            files: Vec<Mode>,
        }
        let files: Vec<serde_json::Value> = prepared
            .iter()
            .map(|p| {
                serde_json::json!({
                    "path": p.file.path_in_repo,
                    "sample": base64::engine::general_purpose::STANDARD.encode(&p.sample),
                    "size": p.size,
                })
            })
            .collect();
        let body = serde_json::json!({ "files": files });
        let url = format!("{}/api/{}/{id}/preupload/{}", self.endpoint, kind.plural(), encode(revision));
        let response = self
            .send(id, "preupload", true, || Ok(self.client.post(&url).header(AUTHORIZATION, &self.auth).json(&body)))?;
        let answer: Answer = json(response, id, "preupload")?;
        Ok(answer.files.into_iter().map(|m| (m.path.clone(), m)).collect())
    }

    fn upload_lfs(&self, kind: RepoKind, id: &str, revision: &str, lfs: &[&Prepared]) -> Result<()> {
        let objects: Vec<serde_json::Value> =
            lfs.iter().map(|p| serde_json::json!({"oid": p.sha256, "size": p.size})).collect();
        let body = serde_json::json!({
            "operation": "upload",
            "transfers": ["basic", "multipart"],
            "objects": objects,
            "hash_algo": "sha256",
            "ref": {"name": revision},
        });
        let url = format!("{}/{}{id}.git/info/lfs/objects/batch", self.endpoint, kind.url_prefix());
        let response = self.send(id, "LFS batch", true, || {
            Ok(self
                .client
                .post(&url)
                .header(AUTHORIZATION, &self.auth)
                .header(reqwest::header::ACCEPT, LFS_JSON)
                .header(reqwest::header::CONTENT_TYPE, LFS_JSON)
                .body(body.to_string()))
        })?;
        let batch: Batch = json(response, id, "LFS batch")?;
        for object in &batch.objects {
            let Some(p) = lfs.iter().find(|p| p.sha256 == object.oid) else {
                continue;
            };
            let step = format!("upload {} (LFS)", p.file.path_in_repo);
            if let Some(error) = &object.error {
                return Err(HubError::Upload {
                    repo: id.to_owned(),
                    step,
                    status: Some(error.code),
                    message: error.message.clone(),
                });
            }
            let Some(actions) = &object.actions else {
                tracing::debug!(file = %p.file.path_in_repo, "LFS object already on the Hub");
                continue;
            };
            let Some(upload) = &actions.upload else {
                continue;
            };
            if upload.header.contains_key("chunk_size") {
                self.upload_multipart(id, &step, p, upload)?;
            } else {
                self.send(id, &step, true, || {
                    let file = std::fs::File::open(&p.file.local).map_err(io(&p.file.local))?;
                    let file = CountingReader::new(file, &p.file.path_in_repo, p.size, 0);
                    Ok(self.client.put(&upload.href).headers(headers(&upload.header)).body(Body::sized(file, p.size)))
                })
                .inspect_err(|_| upload_finished(&p.file.path_in_repo))?;
            }
            if let Some(verify) = &actions.verify {
                self.send(id, &format!("verify {} (LFS)", p.file.path_in_repo), true, || {
                    Ok(self
                        .client
                        .post(&verify.href)
                        .headers(headers(&verify.header))
                        .header(AUTHORIZATION, &self.auth)
                        .header(reqwest::header::ACCEPT, LFS_JSON)
                        .json(&serde_json::json!({"oid": p.sha256, "size": p.size})))
                })?;
            }
            upload_finished(&p.file.path_in_repo);
            tracing::info!(file = %p.file.path_in_repo, bytes = p.size, "LFS upload done");
        }
        Ok(())
    }

    /// S3-style multipart: part `i` (1-based, header key `00001`…) is bytes `[(i-1)·chunk, i·chunk)`; the ETags of
    /// the parts are posted to the upload URL to complete.
    fn upload_multipart(&self, id: &str, step: &str, p: &Prepared, upload: &Action) -> Result<()> {
        let bad =
            |message: String| HubError::Upload { repo: id.to_owned(), step: step.to_owned(), status: None, message };
        let chunk: u64 = upload
            .header
            .get("chunk_size")
            .and_then(|v| v.parse().ok())
            .filter(|&c| c > 0)
            .ok_or_else(|| bad("the Hub sent a multipart upload without a usable chunk_size".into()))?;
        let mut parts: Vec<(u64, &String)> = upload
            .header
            .iter()
            .filter_map(|(k, v)| {
                k.parse::<u64>().ok().filter(|_| k.bytes().all(|b| b.is_ascii_digit())).map(|n| (n, v))
            })
            .collect();
        parts.sort();
        if parts.len() as u64 != p.size.div_ceil(chunk) {
            return Err(bad(format!("{} part URLs for {} bytes in chunks of {chunk}", parts.len(), p.size)));
        }
        let mut etags = Vec::new();
        for (number, href) in parts {
            let offset = (number - 1) * chunk;
            let len = chunk.min(p.size - offset);
            let response = self
                .send(id, step, true, || {
                    let mut file = std::fs::File::open(&p.file.local).map_err(io(&p.file.local))?;
                    file.seek(SeekFrom::Start(offset)).map_err(io(&p.file.local))?;
                    let part = CountingReader::new(file.take(len), &p.file.path_in_repo, p.size, offset);
                    Ok(self.client.put(href.as_str()).body(Body::sized(part, len)))
                })
                .inspect_err(|_| upload_finished(&p.file.path_in_repo))?;
            let etag = response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| bad(format!("part {number} came back without an ETag")))?;
            etags.push(serde_json::json!({"partNumber": number, "etag": etag}));
        }
        let completion = serde_json::json!({"oid": p.sha256, "parts": etags});
        self.send(id, step, true, || {
            Ok(self
                .client
                .post(&upload.href)
                .header(reqwest::header::ACCEPT, LFS_JSON)
                .header(reqwest::header::CONTENT_TYPE, LFS_JSON)
                .body(completion.to_string()))
        })?;
        Ok(())
    }

    /// Sends the request `make` builds, retrying (when `retry`) connection errors, 408, 429 and 5xx. A non-success
    /// answer becomes [`HubError::Unauthorized`] (401), [`HubError::Forbidden`] (403) or [`HubError::Upload`] with
    /// the Hub's message.
    fn send(&self, repo: &str, step: &str, retry: bool, make: impl Fn() -> Result<RequestBuilder>) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let retryable = retry && attempt < self.max_retries;
            match make()?.send() {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    if retryable && (status == 408 || status == 429 || status >= 500) {
                        tracing::warn!(repo, step, status, attempt, "Hub request failed; retrying");
                    } else {
                        return Err(self.status_error(repo, step, response));
                    }
                }
                Err(e) if retryable && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    tracing::warn!(repo, step, error = %e.without_url(), attempt, "Hub request failed; retrying");
                }
                Err(e) => {
                    return Err(HubError::Transport {
                        endpoint: self.endpoint.clone(),
                        step: format!("{step} for {repo}"),
                        source: e.without_url(),
                    });
                }
            }
            attempt += 1;
            std::thread::sleep(crate::retry::backoff(attempt));
        }
    }

    fn status_error(&self, repo: &str, step: &str, response: Response) -> HubError {
        let status = response.status().as_u16();
        let header = response.headers().get("X-Error-Message").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().unwrap_or_default();
        let from_body = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str().map(str::to_owned)));
        let message = header.or(from_body).unwrap_or_else(|| body.chars().take(200).collect());
        match status {
            401 => HubError::Unauthorized { repo: repo.to_owned(), endpoint: self.endpoint.clone(), had_token: true },
            403 => HubError::Forbidden { repo: repo.to_owned() },
            _ => HubError::Upload { repo: repo.to_owned(), step: step.to_owned(), status: Some(status), message },
        }
    }
}

/// The files under `dir` as an upload list (paths relative to `dir`, sorted), leaving out those for which `skip`
/// is true (it sees the relative path).
pub fn folder_files(dir: &Path, skip: impl Fn(&str) -> bool) -> Result<Vec<UploadFile>> {
    let names = sft_repo::list_dir(dir)?;
    Ok(names.into_iter().filter(|n| !skip(n)).map(|n| UploadFile { local: dir.join(&n), path_in_repo: n }).collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mode {
    path: String,
    upload_mode: String,
    #[serde(default)]
    should_ignore: bool,
}

#[derive(Debug, Deserialize)]
struct Batch {
    #[serde(default)]
    objects: Vec<BatchObject>,
}

#[derive(Debug, Deserialize)]
struct BatchObject {
    oid: String,
    #[serde(default)]
    actions: Option<Actions>,
    #[serde(default)]
    error: Option<BatchError>,
}

#[derive(Debug, Deserialize)]
struct BatchError {
    code: u16,
    message: String,
}

#[derive(Debug, Deserialize)]
struct Actions {
    upload: Option<Action>,
    verify: Option<Action>,
}

#[derive(Debug, Deserialize)]
struct Action {
    href: String,
    #[serde(default)]
    header: BTreeMap<String, String>,
}

fn headers(map: &BTreeMap<String, String>) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in map {
        // Multipart's `chunk_size` and part URLs are instructions, not headers.
        if k == "chunk_size" || k.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (k.parse::<reqwest::header::HeaderName>(), HeaderValue::from_str(v)) {
            out.insert(name, value);
        }
    }
    out
}

fn prepare(file: &UploadFile) -> Result<Prepared> {
    let mut reader = std::fs::File::open(&file.local).map_err(io(&file.local))?;
    let mut hasher = Sha256::new();
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(io(&file.local))?;
        if n == 0 {
            break;
        }
        if sample.len() < SAMPLE_BYTES {
            let take = (SAMPLE_BYTES - sample.len()).min(n);
            sample.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let sha256 = hex::encode(hasher.finalize());
    Ok(Prepared { file: file.clone(), size, sha256, sample })
}

fn json<T: serde::de::DeserializeOwned>(response: Response, repo: &str, step: &str) -> Result<T> {
    response.json().map_err(|e| HubError::Upload {
        repo: repo.to_owned(),
        step: step.to_owned(),
        status: None,
        message: format!("unexpected answer: {}", e.without_url()),
    })
}

/// Percent-encodes a revision for a URL path segment (`refs/pr/1` → `refs%2Fpr%2F1`).
fn encode(revision: &str) -> String {
    revision
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
    move |source| HubError::Io { path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_sample_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"abc").unwrap();
        let p = prepare(&UploadFile { path_in_repo: "a.txt".into(), local: path }).unwrap();
        // FIPS 180-2, appendix B.1: SHA-256("abc").
        assert_eq!(p.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!((p.size, p.sample.as_slice()), (3, b"abc".as_slice()));
    }

    #[test]
    fn revisions_are_one_path_segment() {
        assert_eq!(encode("main"), "main");
        assert_eq!(encode("refs/pr/1"), "refs%2Fpr%2F1");
    }
}
