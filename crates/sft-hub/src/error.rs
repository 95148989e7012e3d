//! The error type of Hub and repository access.

use std::path::PathBuf;

/// What can go wrong reaching a repository, on the Hub or on disk.
///
/// Messages say what to do where there is something to do (set `HF_TOKEN`, accept a gated repo's conditions,
/// unset `HF_HUB_OFFLINE`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// A repo id that is not `owner/name`.
    #[error("`{id}` is not a Hub repo id: expected `owner/name`")]
    InvalidRepoId {
        /// The string given.
        id: String,
    },
    /// The repo does not exist, or is private and the token (if any) cannot see it.
    #[error("{repo}: repository not found on {endpoint} (check the name; a private repo also needs HF_TOKEN)")]
    RepoNotFound {
        /// `datasets/owner/name` or `owner/name`.
        repo: String,
        /// The Hub endpoint asked.
        endpoint: String,
    },
    /// The revision (branch, tag or commit) does not exist in the repo.
    #[error("{repo}: revision `{revision}` not found")]
    RevisionNotFound {
        /// The repo.
        repo: String,
        /// The revision asked for.
        revision: String,
    },
    /// The repo needs authentication: no token was sent, or it was rejected.
    #[error("{repo}: {endpoint} answered 401 Unauthorized{}", if *.had_token {
        " to the token given (check HF_TOKEN)".to_owned()
    } else {
        "; this repo is private or gated: set HF_TOKEN in the environment or in a .env file".to_owned()
    })]
    Unauthorized {
        /// The repo.
        repo: String,
        /// The Hub endpoint asked.
        endpoint: String,
        /// Whether a token was sent.
        had_token: bool,
    },
    /// The token is valid but lacks access (typically a gated repo whose conditions were not accepted).
    #[error("{repo}: access forbidden (403); for a gated repo, accept its conditions on the Hub page first")]
    Forbidden {
        /// The repo.
        repo: String,
    },
    /// The file is not in the repo at this revision.
    #[error("{repo}@{revision}: no file `{file}`")]
    EntryNotFound {
        /// The repo.
        repo: String,
        /// The revision.
        revision: String,
        /// The file asked for.
        file: String,
    },
    /// Offline mode (`HF_HUB_OFFLINE=1`) and the repo, revision or file is not in the local cache.
    #[error("{repo}@{revision}: `{what}` is not in the cache {cache} and HF_HUB_OFFLINE is set; run once online")]
    NotCached {
        /// The repo.
        repo: String,
        /// The revision.
        revision: String,
        /// The file, or `the file listing`.
        what: String,
        /// The cache directory searched.
        cache: PathBuf,
    },
    /// The Hub could not be reached.
    #[error("cannot reach {endpoint} for {repo}: {source} (set HF_HUB_OFFLINE=1 to use the local cache only)")]
    Network {
        /// The repo.
        repo: String,
        /// The Hub endpoint.
        endpoint: String,
        /// The transport error.
        #[source]
        source: Box<hf_hub::HFError>,
    },
    /// A downloaded file does not have the size the Hub listed (an error page saved as data, a truncated transfer).
    #[error("{repo}: downloaded `{file}` has {found} bytes, the Hub lists {expected}; the cached copy was removed")]
    SizeMismatch {
        /// The repo.
        repo: String,
        /// The file.
        file: String,
        /// Size listed by the Hub.
        expected: u64,
        /// Size on disk.
        found: u64,
    },
    /// Any other Hub failure, with hf-hub's own description.
    #[error("{repo}: {source}")]
    Hub {
        /// The repo.
        repo: String,
        /// hf-hub's error.
        #[source]
        source: Box<hf_hub::HFError>,
    },
    /// A local file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A local directory could not be listed, or has no such file.
    #[error(transparent)]
    Local(#[from] sft_repo::LocalRepoError),
    /// Writing to the Hub needs a token.
    #[error("pushing to the Hub needs a token with write access: set HF_TOKEN in the environment or in a .env file")]
    TokenRequired,
    /// The operation needs the network and `HF_HUB_OFFLINE` is set.
    #[error("{action} needs the network and HF_HUB_OFFLINE is set")]
    Offline {
        /// What was asked, e.g. `pushing to the Hub`.
        action: String,
    },
    /// The Hub could not be reached, or the connection broke, while writing.
    #[error("cannot reach {endpoint}: {step}: {source}")]
    Transport {
        /// The Hub endpoint.
        endpoint: String,
        /// What was being done (`preupload for owner/name`, `building the HTTP client`).
        step: String,
        /// The HTTP client's error, without the URL (it names the endpoint and repo above; never the token).
        #[source]
        source: reqwest::Error,
    },
    /// The Hub refused or failed a step of an upload.
    #[error("{repo}: {step} failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upload {
        /// The repo.
        repo: String,
        /// The step: `create the repo`, `preupload`, `LFS batch`, `upload <file> (LFS)`, `commit`, ….
        step: String,
        /// The HTTP status, when the Hub answered.
        status: Option<u16>,
        /// The Hub's message.
        message: String,
    },
    /// An environment variable with a value it cannot take.
    #[error("environment variable {name}={value}: expected {expected}")]
    InvalidVariable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A download stalled (no bytes for `download_timeout`) or its connection failed on every attempt.
    #[error(
        "{repo}: downloading `{file}` from {endpoint} failed {attempts} times (last: {source}); no bytes arrived for \
         {timeout_seconds} s (HF_HUB_DOWNLOAD_TIMEOUT) or the connection broke: check the network, or raise \
         HF_HUB_DOWNLOAD_TIMEOUT for a slow link"
    )]
    Stalled {
        /// The repo.
        repo: String,
        /// The file.
        file: String,
        /// The Hub endpoint.
        endpoint: String,
        /// Attempts made (1 + retries).
        attempts: usize,
        /// The timeout in seconds.
        timeout_seconds: f64,
        /// The last attempt's error.
        #[source]
        source: Box<hf_hub::HFError>,
    },
    /// A `.env` line that does not parse.
    #[error("{}: {source}", path.display())]
    EnvFile {
        /// The `.env` file.
        path: PathBuf,
        /// dotenvy's error, with the line.
        #[source]
        source: dotenvy::Error,
    },
}

/// `Result` with [`HubError`].
pub type Result<T, E = HubError> = std::result::Result<T, E>;
