//! A stand-in for the Hub on 127.0.0.1, for tests (cargo feature `fake-hub`).
//!
//! It speaks the routes `hf-hub` uses to read repos — the tree listing
//! (`GET /api/{models|datasets}/{owner}/{name}/tree/{revision}`), repo info
//! (`GET /api/{kind}/{owner}/{name}/revision/{revision}`) and file resolution (`HEAD`/`GET
//! /[datasets/]{owner}/{name}/resolve/{revision}/{file}` with `ETag`, `X-Repo-Commit` and `Content-Length`) — and
//! answers errors as the Hub does: 404 with `X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound`, 401 for a
//! gated repo without a valid token. Plain HTTP/1.1, one connection at a time, `Connection: close`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::repo::RepoKind;

#[derive(Debug, Default)]
struct FakeRepo {
    files: BTreeMap<String, Vec<u8>>,
    commit: String,
    token: Option<String>,
    /// Files whose `GET` fails with 403 although `HEAD` succeeds.
    broken: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    repos: BTreeMap<(RepoKind, String), FakeRepo>,
    requests: Vec<String>,
}

/// A running fake Hub; stops when dropped.
#[derive(Debug)]
pub struct FakeHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let _ = serve(stream, &state);
                    }
                }
            })
        };
        Ok(Self { addr, state, stop, thread: Some(thread) })
    }

    /// `http://127.0.0.1:<port>`, for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds (or replaces) repo `id` of `kind` with `files` (path, content); returns its commit hash.
    pub fn add_repo(&self, kind: RepoKind, id: &str, files: &[(&str, &[u8])]) -> String {
        let files: BTreeMap<String, Vec<u8>> = files.iter().map(|(p, c)| ((*p).to_owned(), c.to_vec())).collect();
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for (path, content) in &files {
            h = fnv(h, path.as_bytes());
            h = fnv(h, content);
        }
        let commit = format!("{h:016x}{:016x}{:08x}", fnv(h, b"1"), fnv(h, b"2") as u32);
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

    /// Every request so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
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

fn serve(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > 1 << 16 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());
    let path = target.split('?').next().unwrap_or_default().to_owned();

    let response = {
        let mut state = lock(state);
        state.requests.push(format!("{method} {path}"));
        route(&state, &method, &path, authorization.as_deref())
    };
    let reason = match response.status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\nConnection: close\r\n", response.status);
    if !response.headers.iter().any(|(k, _)| *k == "Content-Length") {
        out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    for (k, v) in &response.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(&response.body)?;
    }
    stream.flush()
}

fn route(state: &State, method: &str, path: &str, authorization: Option<&str>) -> Response {
    let decoded = percent_decode(path);
    let parts: Vec<&str> = decoded.trim_start_matches('/').split('/').collect();
    // /api/{models|datasets}/{owner}/{name}/{tree|revision}/{rev}[/...]
    if parts.first() == Some(&"api") && parts.len() >= 6 {
        let kind = match parts[1] {
            "models" => RepoKind::Model,
            "datasets" => RepoKind::Dataset,
            _ => return Response::error(404, "NotFound", "unknown route"),
        };
        let id = format!("{}/{}", parts[2], parts[3]);
        return with_repo(state, kind, &id, parts[5], authorization, |repo| match parts[4] {
            "tree" if method == "GET" => tree(repo),
            "revision" if method == "GET" => info(&id, repo),
            _ => Response::error(404, "NotFound", "unknown route"),
        });
    }
    // /[datasets/]{owner}/{name}/resolve/{rev}/{file...}
    let (kind, rest) = match parts.first() {
        Some(&"datasets") => (RepoKind::Dataset, &parts[1..]),
        _ => (RepoKind::Model, &parts[..]),
    };
    if rest.len() >= 5 && rest[2] == "resolve" {
        let id = format!("{}/{}", rest[0], rest[1]);
        let file = rest[4..].join("/");
        return with_repo(state, kind, &id, rest[3], authorization, |repo| resolve(repo, method, &file));
    }
    Response::error(404, "NotFound", "unknown route")
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
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
