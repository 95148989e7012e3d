//! A stand-in for the Hub on 127.0.0.1, for tests. One file (about 600 lines): the Hub's routes over one shared
//! state, in the order of the protocol, served by `tiny_http` (HTTP/1.1 framing, chunked request bodies,
//! keep-alive and HEAD are the crate's); the upload routes mirror `sft_hub`'s `upload.rs`.
//!
//! It speaks the routes `hf-hub` uses to read repos — the tree listing
//! (`GET /api/{models|datasets}/{owner}/{name}/tree/{revision}`), repo info
//! (`GET /api/{kind}/{owner}/{name}/revision/{revision}`) and file resolution (`HEAD`/`GET
//! /[datasets/]{owner}/{name}/resolve/{revision}/{file}` with `ETag`, `X-Repo-Commit` and `Content-Length`) — and
//! the routes `sft_hub::HubUploader` writes through: `GET /api/whoami-v2`, `POST /api/repos/create`,
//! `POST /api/{kind}/{owner}/{name}/preupload/{revision}` (binary samples and `*.safetensors` / `*.bin` go to LFS),
//! the Git LFS batch API (`POST /[datasets/]{owner}/{name}.git/info/lfs/objects/batch`, `basic` transfer; objects
//! already stored get no actions), the upload (`PUT /lfs/{oid}`, checked against its SHA-256) and verify
//! (`POST /lfs/{oid}/verify`) URLs it hands out, and `POST /api/{kind}/{owner}/{name}/commit/{revision}` (NDJSON
//! `header` / `file` / `lfsFile` lines). It answers errors as the Hub does: 404 with `X-Error-Code: RepoNotFound |
//! RevisionNotFound | EntryNotFound`, 401 for a gated repo or a write without a valid token, 403 for a write to
//! another namespace, 409 for creating an existing repo; LFS uploads can be made to fail with 500
//! ([`FakeHub::fail_lfs_uploads`]). Requests are answered one at a time, in arrival order.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use base64::Engine;
use sha2::{Digest, Sha256};

use sft_hub::RepoKind;

#[derive(Debug, Default)]
struct FakeRepo {
    files: BTreeMap<String, Vec<u8>>,
    commit: String,
    token: Option<String>,
    /// Files whose `GET` fails with 403 although `HEAD` succeeds.
    broken: Vec<String>,
    private: bool,
}

#[derive(Debug, Default)]
struct State {
    endpoint: String,
    repos: BTreeMap<(RepoKind, String), FakeRepo>,
    requests: Vec<String>,
    /// Write tokens → user names.
    users: BTreeMap<String, String>,
    /// The LFS store: SHA-256 → bytes.
    lfs: BTreeMap<String, Vec<u8>>,
    /// LFS uploads still to accept before failing, and then how many to fail with 500.
    fail_uploads: (usize, usize),
    /// Every request's `Authorization` header and body, to check what was sent.
    seen: Vec<u8>,
    /// Downloads to stall: file path, how many more `GET`s stall, and for how long.
    stalls: Vec<(String, usize, std::time::Duration)>,
}

/// A running fake Hub; stops when dropped.
pub struct FakeHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHub").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeHub {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub fn start() -> std::io::Result<Self> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(std::io::Error::other)?);
        let addr = server.server_addr().to_ip().ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let state = Arc::new(Mutex::new(State { endpoint: format!("http://{addr}"), ..State::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, state, stop) = (server.clone(), state.clone(), stop.clone());
            std::thread::spawn(move || {
                // One request at a time, in arrival order, so the recorded requests and the state are sequential.
                while !stop.load(Ordering::SeqCst) {
                    match server.recv() {
                        Ok(request) => {
                            let _ = serve(request, &state);
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Ok(Self { addr, state, stop, server, thread: Some(thread) })
    }

    /// `http://127.0.0.1:<port>`, for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds (or replaces) repo `id` of `kind` with `files` (path, content); returns its commit hash.
    pub fn add_repo(&self, kind: RepoKind, id: &str, files: &[(&str, &[u8])]) -> String {
        let files: BTreeMap<String, Vec<u8>> = files.iter().map(|(p, c)| ((*p).to_owned(), c.to_vec())).collect();
        let commit = commit_hash(&files, "");
        let repo = FakeRepo { files, commit: commit.clone(), ..FakeRepo::default() };
        lock(&self.state).repos.insert((kind, id.to_owned()), repo);
        commit
    }

    /// Makes repo `id` gated: requests without `Authorization: Bearer <token>` get 401.
    pub fn require_token(&self, kind: RepoKind, id: &str, token: &str) {
        if let Some(repo) = lock(&self.state).repos.get_mut(&(kind, id.to_owned())) {
            repo.token = Some(token.to_owned());
        }
    }

    /// Makes `GET` of `file` answer 403 with a short body while `HEAD` still succeeds.
    pub fn break_download(&self, kind: RepoKind, id: &str, file: &str) {
        if let Some(repo) = lock(&self.state).repos.get_mut(&(kind, id.to_owned())) {
            repo.broken.push(file.to_owned());
        }
    }

    /// Makes the next `times` `GET`s of `file` (in any repo) stall: the headers and half the body are sent, then
    /// nothing for `pause`, then the connection closes. The server serves one connection at a time, so it answers
    /// nothing else during the pause.
    pub fn stall_download(&self, file: &str, times: usize, pause: std::time::Duration) {
        lock(&self.state).stalls.push((file.to_owned(), times, pause));
    }

    /// Every request so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }

    /// Adds an account `name` whose (write) token is `token`.
    pub fn add_user(&self, name: &str, token: &str) {
        lock(&self.state).users.insert(token.to_owned(), name.to_owned());
    }

    /// The next `skip` LFS uploads succeed, the `count` after them answer 500 (`count = 0` heals).
    pub fn fail_lfs_uploads(&self, skip: usize, count: usize) {
        lock(&self.state).fail_uploads = (skip, count);
    }

    /// The files of repo `id` at its head, if the repo exists (LFS files resolved to their content).
    pub fn repo_files(&self, kind: RepoKind, id: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        lock(&self.state).repos.get(&(kind, id.to_owned())).map(|r| r.files.clone())
    }

    /// Whether repo `id` exists and is private.
    pub fn is_private(&self, kind: RepoKind, id: &str) -> Option<bool> {
        lock(&self.state).repos.get(&(kind, id.to_owned())).map(|r| r.private)
    }

    /// Every `Authorization` header and request body received, concatenated (for checks that a secret was or was
    /// not sent).
    pub fn received(&self) -> Vec<u8> {
        lock(&self.state).seen.clone()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn error(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            headers: vec![("X-Error-Code", code.to_owned()), ("X-Error-Message", message.to_owned())],
            body: format!("{{\"error\":\"{message}\"}}").into_bytes(),
        }
    }
}

fn serve(mut request: tiny_http::Request, state: &Mutex<State>) -> std::io::Result<()> {
    let method = request.method().as_str().to_owned();
    let path = request.url().split('?').next().unwrap_or_default().to_owned();
    let authorization =
        request.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str().to_owned());
    let mut body = Vec::new();
    request.as_reader().read_to_end(&mut body)?;

    let (response, stall) = {
        let mut state = lock(state);
        state.requests.push(format!("{method} {path}"));
        if let Some(a) = &authorization {
            state.seen.extend_from_slice(a.as_bytes());
        }
        state.seen.extend_from_slice(&body);
        let stall = if method == "GET" && path.contains("/resolve/") {
            state.stalls.iter_mut().find(|(file, left, _)| *left > 0 && path.ends_with(&format!("/{file}"))).map(
                |(_, left, pause)| {
                    *left -= 1;
                    *pause
                },
            )
        } else {
            None
        };
        (route(&mut state, &method, &path, authorization.as_deref(), &body), stall)
    };
    if let Some(pause) = stall.filter(|_| response.status == 200) {
        // A stalled download: the head and half the body, flushed, then nothing for `pause`, then the connection
        // drops. Written on the raw connection (a deliberately broken response), in its own thread, so the retry
        // that follows is served meanwhile, as the Hub serves other connections while one hangs.
        let mut writer = request.into_writer();
        std::thread::spawn(move || {
            let mut head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", response.body.len());
            for (name, value) in &response.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let half = &response.body[..response.body.len() / 2];
            if writer
                .write_all(head.as_bytes())
                .and_then(|()| writer.write_all(half))
                .and_then(|()| writer.flush())
                .is_ok()
            {
                std::thread::sleep(pause);
            }
        });
        return Ok(());
    }
    let headers: Vec<tiny_http::Header> = response
        .headers
        .iter()
        .filter_map(|(name, value)| tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok())
        .collect();
    let length = response.body.len();
    // Always `Content-Length` (also on HEAD, where hf-hub reads the size from it), never chunked.
    let reply = tiny_http::Response::new(
        tiny_http::StatusCode(response.status),
        headers,
        std::io::Cursor::new(response.body),
        Some(length),
        None,
    )
    .with_chunked_threshold(usize::MAX);
    request.respond(reply)
}
fn route(state: &mut State, method: &str, path: &str, authorization: Option<&str>, body: &[u8]) -> Response {
    let decoded = percent_decode(path);
    let parts: Vec<&str> = decoded.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["api", "whoami-v2"]) => return whoami(state, authorization),
        ("POST", ["api", "repos", "create"]) => return create_repo(state, authorization, body),
        ("PUT", ["lfs", oid]) => return lfs_upload(state, oid, body),
        ("POST", ["lfs", oid, "verify"]) => {
            return if state.lfs.contains_key(*oid) {
                json("{}".to_owned())
            } else {
                Response::error(404, "NotFound", "object not uploaded")
            };
        }
        _ => {}
    }
    // /api/{models|datasets}/{owner}/{name}/{tree|revision|preupload|commit}/{rev}[/...]
    if parts.first() == Some(&"api") && parts.len() >= 6 {
        let kind = match parts[1] {
            "models" => RepoKind::Model,
            "datasets" => RepoKind::Dataset,
            _ => return Response::error(404, "NotFound", "unknown route"),
        };
        let id = format!("{}/{}", parts[2], parts[3]);
        if method == "POST" && matches!(parts[4], "preupload" | "commit") {
            if let Err(denied) = writer(state, &id, authorization) {
                return denied;
            }
            let endpoint = state.endpoint.clone();
            let State { repos, lfs, .. } = state;
            let Some(repo) = repos.get_mut(&(kind, id.clone())) else {
                return Response::error(404, "RepoNotFound", "Repository not found");
            };
            if parts[5] != "main" {
                return Response::error(404, "RevisionNotFound", "Invalid rev id");
            }
            return if parts[4] == "preupload" {
                preupload(body)
            } else {
                commit(repo, lfs, &endpoint, kind, &id, body)
            };
        }
        return with_repo(state, kind, &id, parts[5], authorization, |repo| match parts[4] {
            "tree" if method == "GET" => tree(repo),
            "revision" if method == "GET" => info(&id, repo),
            _ => Response::error(404, "NotFound", "unknown route"),
        });
    }
    // /[datasets/]{owner}/{name}/resolve/{rev}/{file...} and /[datasets/]{owner}/{name}.git/info/lfs/objects/batch
    let (kind, rest) = match parts.first() {
        Some(&"datasets") => (RepoKind::Dataset, &parts[1..]),
        _ => (RepoKind::Model, &parts[..]),
    };
    if method == "POST" && rest.len() == 6 && rest[2..] == ["info", "lfs", "objects", "batch"] {
        let id = format!("{}/{}", rest[0], rest[1].trim_end_matches(".git"));
        if let Err(denied) = writer(state, &id, authorization) {
            return denied;
        }
        if !state.repos.contains_key(&(kind, id)) {
            return Response::error(404, "RepoNotFound", "Repository not found");
        }
        return lfs_batch(state, body);
    }
    if rest.len() >= 5 && rest[2] == "resolve" {
        let id = format!("{}/{}", rest[0], rest[1]);
        let file = rest[4..].join("/");
        return with_repo(state, kind, &id, rest[3], authorization, |repo| resolve(repo, method, &file));
    }
    Response::error(404, "NotFound", "unknown route")
}

/// The user of a valid write token, else 401.
fn user(state: &State, authorization: Option<&str>) -> Result<String, Response> {
    authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| state.users.get(t))
        .cloned()
        .ok_or_else(|| Response::error(401, "Unauthorized", "Invalid credentials in Authorization header"))
}

/// 401 without a valid token, 403 when repo `id` is outside the user's namespace.
fn writer(state: &State, id: &str, authorization: Option<&str>) -> Result<(), Response> {
    let user = user(state, authorization)?;
    if id.split('/').next() != Some(user.as_str()) {
        return Err(Response::error(403, "Forbidden", "You don't have the rights to write to this namespace"));
    }
    Ok(())
}

fn whoami(state: &State, authorization: Option<&str>) -> Response {
    match user(state, authorization) {
        Ok(name) => json(format!("{{\"type\":\"user\",\"name\":{}}}", json_string(&name))),
        Err(denied) => denied,
    }
}

fn create_repo(state: &mut State, authorization: Option<&str>, body: &[u8]) -> Response {
    let user = match user(state, authorization) {
        Ok(user) => user,
        Err(denied) => return denied,
    };
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Response::error(400, "BadRequest", "invalid JSON");
    };
    let name = request["name"].as_str().unwrap_or_default();
    let namespace = request["organization"].as_str().unwrap_or(&user);
    let (kind, prefix) = match request["type"].as_str() {
        Some("dataset") => (RepoKind::Dataset, "datasets/"),
        _ => (RepoKind::Model, ""),
    };
    if namespace != user {
        return Response::error(403, "Forbidden", "You don't have the rights to create a repo under this namespace");
    }
    let id = format!("{namespace}/{name}");
    let url = format!("{}/{prefix}{id}", state.endpoint);
    if state.repos.contains_key(&(kind, id.clone())) {
        let mut r = Response::error(409, "Conflict", "You already created this repo");
        r.body = format!("{{\"error\":\"You already created this repo\",\"url\":{}}}", json_string(&url)).into_bytes();
        return r;
    }
    let repo = FakeRepo {
        commit: commit_hash(&BTreeMap::new(), &id),
        private: request["private"].as_bool().unwrap_or(false),
        ..FakeRepo::default()
    };
    state.repos.insert((kind, id), repo);
    json(format!("{{\"url\":{}}}", json_string(&url)))
}

/// `regular` for short text, `lfs` for binary samples and weight files (the Hub decides from `.gitattributes` and
/// the sample).
fn preupload(body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Response::error(400, "BadRequest", "invalid JSON");
    };
    let files: Vec<serde_json::Value> = request["files"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap_or_default();
            let sample = base64::engine::general_purpose::STANDARD
                .decode(f["sample"].as_str().unwrap_or_default())
                .unwrap_or_default();
            let binary = sample.contains(&0) || std::str::from_utf8(&sample).is_err();
            let weights = path.ends_with(".safetensors") || path.ends_with(".bin");
            let large = f["size"].as_u64().unwrap_or(0) > 10 << 20;
            let mode = if binary || weights || large { "lfs" } else { "regular" };
            serde_json::json!({"path": path, "uploadMode": mode, "shouldIgnore": false})
        })
        .collect();
    json(serde_json::json!({ "files": files }).to_string())
}

fn lfs_batch(state: &State, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Response::error(400, "BadRequest", "invalid JSON");
    };
    let objects: Vec<serde_json::Value> = request["objects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let oid = o["oid"].as_str().unwrap_or_default();
            if state.lfs.contains_key(oid) {
                serde_json::json!({"oid": oid, "size": o["size"]})
            } else {
                serde_json::json!({"oid": oid, "size": o["size"], "authenticated": true, "actions": {
                    "upload": {"href": format!("{}/lfs/{oid}", state.endpoint), "header": {}},
                    "verify": {"href": format!("{}/lfs/{oid}/verify", state.endpoint), "header": {}},
                }})
            }
        })
        .collect();
    json(serde_json::json!({"transfer": "basic", "objects": objects}).to_string())
}

fn lfs_upload(state: &mut State, oid: &str, body: &[u8]) -> Response {
    match &mut state.fail_uploads {
        (0, 0) => {}
        (0, count) => {
            *count -= 1;
            return Response::error(500, "InternalError", "storage backend unavailable");
        }
        (skip, _) => *skip -= 1,
    }
    if sha256_hex(body) != oid {
        return Response::error(400, "BadRequest", "content does not match its SHA-256");
    }
    state.lfs.insert(oid.to_owned(), body.to_vec());
    json("{}".to_owned())
}

fn commit(
    repo: &mut FakeRepo,
    lfs: &BTreeMap<String, Vec<u8>>,
    endpoint: &str,
    kind: RepoKind,
    id: &str,
    body: &[u8],
) -> Response {
    let mut files = repo.files.clone();
    let mut had_header = false;
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(line) = serde_json::from_slice::<serde_json::Value>(line) else {
            return Response::error(400, "BadRequest", "invalid NDJSON line");
        };
        let value = &line["value"];
        let path = value["path"].as_str().unwrap_or_default().to_owned();
        match line["key"].as_str() {
            Some("header") => had_header = value["summary"].is_string(),
            Some("file") => {
                let Ok(content) =
                    base64::engine::general_purpose::STANDARD.decode(value["content"].as_str().unwrap_or_default())
                else {
                    return Response::error(400, "BadRequest", "file content is not base64");
                };
                files.insert(path, content);
            }
            Some("lfsFile") => {
                let oid = value["oid"].as_str().unwrap_or_default();
                match lfs.get(oid) {
                    Some(content) if Some(content.len() as u64) == value["size"].as_u64() => {
                        files.insert(path, content.clone());
                    }
                    _ => {
                        return Response::error(422, "LfsObjectMissing", &format!("LFS object {oid} was not uploaded"));
                    }
                }
            }
            _ => return Response::error(400, "BadRequest", "unknown NDJSON key"),
        }
    }
    if !had_header {
        return Response::error(400, "BadRequest", "the commit has no header line");
    }
    repo.commit = commit_hash(&files, &repo.commit);
    repo.files = files;
    let url = format!("{endpoint}/{}{id}/commit/{}", kind.url_prefix(), repo.commit);
    json(serde_json::json!({"commitUrl": url, "commitOid": repo.commit, "pullRequestUrl": null}).to_string())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A 40-hex-digit commit hash of `files` after `parent`.
fn commit_hash(files: &BTreeMap<String, Vec<u8>>, parent: &str) -> String {
    let mut h = fnv(0xcbf2_9ce4_8422_2325, parent.as_bytes());
    for (path, content) in files {
        h = fnv(h, path.as_bytes());
        h = fnv(h, content);
    }
    format!("{h:016x}{:016x}{:08x}", fnv(h, b"1"), fnv(h, b"2") as u32)
}

fn with_repo(
    state: &State,
    kind: RepoKind,
    id: &str,
    revision: &str,
    authorization: Option<&str>,
    f: impl FnOnce(&FakeRepo) -> Response,
) -> Response {
    let Some(repo) = state.repos.get(&(kind, id.to_owned())) else {
        return Response::error(404, "RepoNotFound", "Repository not found");
    };
    if let Some(token) = &repo.token {
        match authorization {
            None => {
                return Response::error(401, "GatedRepo", "Access to this repo is restricted; please log in.");
            }
            Some(a) if a != format!("Bearer {token}") => {
                return Response::error(401, "Unauthorized", "Invalid credentials in Authorization header");
            }
            Some(_) => {}
        }
    }
    if revision != "main" && revision != repo.commit {
        return Response::error(404, "RevisionNotFound", "Invalid rev id");
    }
    f(repo)
}

fn tree(repo: &FakeRepo) -> Response {
    let entries: Vec<String> = repo
        .files
        .iter()
        .map(|(path, content)| {
            format!(
                "{{\"type\":\"file\",\"oid\":\"{:016x}\",\"size\":{},\"path\":{}}}",
                fnv(0xcbf2_9ce4_8422_2325, content),
                content.len(),
                json_string(path)
            )
        })
        .collect();
    json(format!("[{}]", entries.join(",")))
}

fn info(id: &str, repo: &FakeRepo) -> Response {
    let siblings: Vec<String> = repo.files.keys().map(|p| format!("{{\"rfilename\":{}}}", json_string(p))).collect();
    json(format!("{{\"id\":{},\"sha\":\"{}\",\"siblings\":[{}]}}", json_string(id), repo.commit, siblings.join(",")))
}

fn resolve(repo: &FakeRepo, method: &str, file: &str) -> Response {
    let Some(content) = repo.files.get(file) else {
        let mut r = Response::error(404, "EntryNotFound", "Entry not found");
        r.headers.push(("X-Repo-Commit", repo.commit.clone()));
        return r;
    };
    if method == "GET" && repo.broken.iter().any(|b| b == file) {
        return Response { status: 403, headers: Vec::new(), body: b"denied".to_vec() };
    }
    let etag = format!("{:016x}", fnv(0xcbf2_9ce4_8422_2325, content));
    Response {
        status: 200,
        headers: vec![
            ("ETag", format!("\"{etag}\"")),
            ("X-Repo-Commit", repo.commit.clone()),
            ("Content-Length", content.len().to_string()),
        ],
        body: content.clone(),
    }
}

fn json(body: String) -> Response {
    Response { status: 200, headers: vec![("Content-Type", "application/json".to_owned())], body: body.into_bytes() }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
