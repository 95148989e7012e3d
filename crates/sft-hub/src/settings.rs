//! Hub settings from the environment, the way `huggingface_hub` resolves them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{HubError, Result};

/// The default Hub endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// `HF_HUB_DOWNLOAD_TIMEOUT`'s default, as in `huggingface_hub`.
pub const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to reach the Hub.
#[derive(Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// Base URL of the Hub (`HF_ENDPOINT`), without a trailing `/`.
    pub endpoint: String,
    /// Access token (`HF_TOKEN`, `.env`, or the token file), sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// The hub cache (`HF_HUB_CACHE`, else `$HF_HOME/hub`), with the standard `datasets--owner--name/{blobs,refs,
    /// snapshots}` layout shared with Python.
    pub cache_dir: PathBuf,
    /// Use the cache only, never the network (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Retries of a transfer that failed with a timeout, a connection error, 408, 429 or 5xx (hf-hub's retries of
    /// the request, waits from 100 ms), or whose body stalled or broke off (this crate's, and the uploads': waits
    /// doubling from 200 ms, at most 6.4 s); 5 by default.
    pub max_retries: usize,
    /// How long a download or upload may wait for the next bytes (and for a connection) before the attempt counts as
    /// failed and is retried (`HF_HUB_DOWNLOAD_TIMEOUT`, seconds; 10 by default, as in `huggingface_hub`). A
    /// transfer that stalls half-way is thus retried, then reported, never waited on forever.
    pub download_timeout: Duration,
    /// The Hub account to push to when a repo id has no namespace (`HF_USERNAME`); else the token's owner is asked
    /// (`whoami`).
    pub username: Option<String>,
}

impl std::fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("HubSettings")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("max_retries", &self.max_retries)
            .field("download_timeout", &self.download_timeout)
            .field("username", &self.username)
            .finish()
    }
}

impl HubSettings {
    /// Settings from the process environment, completed by `./.env` if it exists (the environment wins).
    pub fn from_env() -> Result<Self> {
        Self::resolve(|k| std::env::var(k).ok(), Some(Path::new(".env")))
    }

    /// Settings from `var` (an environment lookup) and an optional `.env` file; a variable set by `var` wins over
    /// the same one in the file, as `python-dotenv` does without `override`.
    ///
    /// - endpoint: `HF_ENDPOINT`, else [`DEFAULT_ENDPOINT`];
    /// - token: unless `HF_HUB_DISABLE_IMPLICIT_TOKEN` is set, `HF_TOKEN`, else the file at `HF_TOKEN_PATH`, else
    ///   `$HF_HOME/token` (what `huggingface-cli login` writes);
    /// - home: `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `$HOME/.cache/huggingface`;
    /// - cache: `HF_HUB_CACHE`, else `$HF_HOME/hub`;
    /// - offline: `HF_HUB_OFFLINE` is one of `1`, `true`, `yes`, `on` (any case);
    /// - download timeout: `HF_HUB_DOWNLOAD_TIMEOUT` seconds, else 10;
    /// - username: `HF_USERNAME`.
    pub fn resolve(var: impl Fn(&str) -> Option<String>, dotenv: Option<&Path>) -> Result<Self> {
        let file = match dotenv {
            Some(path) if path.is_file() => read_dotenv(path)?,
            _ => HashMap::new(),
        };
        let get = |key: &str| var(key).or_else(|| file.get(key).cloned()).filter(|v| !v.is_empty());

        let home = get("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = get("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| get("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir);
            cache.join("huggingface")
        });
        let cache_dir = get("HF_HUB_CACHE").map(PathBuf::from).unwrap_or_else(|| home.join("hub"));
        let token = if get("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_some() {
            None
        } else {
            get("HF_TOKEN").or_else(|| {
                let path = get("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| home.join("token"));
                std::fs::read_to_string(path).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
            })
        };
        let endpoint = get("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let download_timeout = match get("HF_HUB_DOWNLOAD_TIMEOUT") {
            None => DEFAULT_DOWNLOAD_TIMEOUT,
            Some(value) => value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(HubError::InvalidVariable {
                    name: "HF_HUB_DOWNLOAD_TIMEOUT",
                    value,
                    expected: "a number of seconds > 0",
                })?,
        };
        let offline = get("HF_HUB_OFFLINE")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token,
            cache_dir,
            offline,
            max_retries: 5,
            download_timeout,
            username: get("HF_USERNAME"),
        })
    }
}

fn read_dotenv(path: &Path) -> Result<HashMap<String, String>> {
    let iter = dotenvy::from_path_iter(path).map_err(|source| HubError::EnvFile { path: path.into(), source })?;
    iter.map(|item| item.map_err(|source| HubError::EnvFile { path: path.into(), source })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let s = HubSettings::resolve(env(&[("HOME", "/home/u")]), None).unwrap();
        assert_eq!(s.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(s.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(s.token, None);
        assert!(!s.offline);
        assert_eq!(s.download_timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_download_timeout_is_read_and_checked() {
        let s = HubSettings::resolve(env(&[("HOME", "/h"), ("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")]), None).unwrap();
        assert_eq!(s.download_timeout, Duration::from_millis(2500));
        for bad in ["0", "-1", "ten", "inf"] {
            let err = HubSettings::resolve(env(&[("HOME", "/h"), ("HF_HUB_DOWNLOAD_TIMEOUT", bad)]), None).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("environment variable HF_HUB_DOWNLOAD_TIMEOUT={bad}: expected a number of seconds > 0")
            );
        }
    }

    #[test]
    fn environment_overrides() {
        let s = HubSettings::resolve(
            env(&[
                ("HF_HOME", "/hf"),
                ("HF_ENDPOINT", "http://127.0.0.1:9/"),
                ("HF_TOKEN", "hf_env"),
                ("HF_HUB_OFFLINE", "1"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:9");
        assert_eq!(s.cache_dir, PathBuf::from("/hf/hub"));
        assert_eq!(s.token.as_deref(), Some("hf_env"));
        assert!(s.offline);
        let s = HubSettings::resolve(env(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/c")]), None).unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/c"));
    }

    #[test]
    fn dotenv_supplies_what_the_environment_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "# secrets\nHF_TOKEN=hf_from_dotenv\nHF_HUB_OFFLINE=true\nHF_USERNAME=alice\n")
            .unwrap();
        let s = HubSettings::resolve(env(&[("HF_HOME", "/hf")]), Some(&dotenv)).unwrap();
        assert_eq!(s.token.as_deref(), Some("hf_from_dotenv"));
        assert_eq!(s.username.as_deref(), Some("alice"));
        assert!(s.offline);
        let s = HubSettings::resolve(env(&[("HF_HOME", "/hf"), ("HF_TOKEN", "hf_env")]), Some(&dotenv)).unwrap();
        assert_eq!(s.token.as_deref(), Some("hf_env"), "the environment wins");
        assert!(!format!("{s:?}").contains("hf_env"), "Debug never prints the token");
    }

    #[test]
    fn token_file_and_disabling() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_file\n").unwrap();
        let home = dir.path().to_str().unwrap();
        let s = HubSettings::resolve(env(&[("HF_HOME", home)]), None).unwrap();
        assert_eq!(s.token.as_deref(), Some("hf_file"));
        let s = HubSettings::resolve(env(&[("HF_HOME", home), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]), None).unwrap();
        assert_eq!(s.token, None);
    }

    #[test]
    fn malformed_dotenv_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "HF_TOKEN='unterminated\n").unwrap();
        let err = HubSettings::resolve(env(&[]), Some(&dotenv)).unwrap_err();
        assert!(err.to_string().starts_with(&dotenv.display().to_string()), "{err}");
    }
}
