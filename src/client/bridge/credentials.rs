//! The service-account credentials of a long-running `bridge`: chosen exactly as `client`
//! chooses them (`client::target`), and chosen again whenever one of the profile's files that
//! decide them changes (`profile.json`, `client/`, `sa/` — checked with a few `stat` calls per
//! request), so `remint-all`, `sa-token` or `sa-revoke` during a session take effect on its next
//! request. A token the profile says is expired or revoked is a [`Refusal`]: the bridge answers
//! the host with it and keeps watching for a valid one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderName, HeaderValue};

use crate::client::Hints;
use crate::client::target::{self, Request};
use crate::error::{self, Kind};
use crate::profile::{CLIENT_MCP, Layout, PROFILE_JSON};

/// The credential headers of one request.
pub type HeaderSet = Arc<Vec<(HeaderName, HeaderValue)>>;

/// Why no request can be sent now: the message for the host, the hint for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub hint: Option<String>,
}

impl Refusal {
    fn of(err: &anyhow::Error) -> Refusal {
        Refusal { message: error::one_line(err), hint: error::classify(err).1 }
    }
}

/// What identifies a file's content without reading it: inode, modification time, size.
type Stamp = Option<(u64, i64, i64, u64)>;

struct State {
    stamps: Vec<Stamp>,
    current: Result<HeaderSet, Refusal>,
    hints: Hints,
}

pub struct Credentials {
    root: PathBuf,
    request: Request,
    /// The files and folders whose change means the choice must be made again.
    watched: Vec<PathBuf>,
    state: Mutex<State>,
}

impl Credentials {
    /// Make the first choice. A refusal of the token itself (expired, revoked) is kept for the
    /// host to see; any other failure (an unknown profile, a bad flag) is returned.
    pub fn start(root: &Path, request: Request) -> anyhow::Result<(Credentials, Option<String>)> {
        let watched = match &request.profile {
            Some(name) => {
                let layout = Layout::new(root, name);
                let client_dir = layout.client_mcp().parent().map(Path::to_path_buf).unwrap_or_else(|| layout.dir.join("client"));
                debug_assert!(CLIENT_MCP.starts_with("client/"));
                vec![layout.file(PROFILE_JSON), client_dir, layout.dir.join("sa"), layout.client_env(), layout.client_mcp()]
            }
            None => Vec::new(),
        };
        let stamps = stamp_all(&watched);
        let (current, url, hints) = match resolve(root, &request) {
            Ok((headers, url, hints)) => (Ok(headers), Some(url), hints),
            Err(e) if error::classify(&e).0 == Kind::Auth => {
                (Err(Refusal::of(&e)), None, Hints { profile: request.profile.clone(), token_source: None })
            }
            Err(e) => return Err(e),
        };
        let state = Mutex::new(State { stamps, current, hints });
        Ok((Credentials { root: root.to_owned(), request, watched, state }, url))
    }

    /// The headers for the next request, chosen again first if a watched file changed.
    pub fn current(&self) -> Result<HeaderSet, Refusal> {
        let mut state = self.lock();
        if !self.watched.is_empty() {
            let stamps = stamp_all(&self.watched);
            if stamps != state.stamps {
                state.stamps = stamps;
                self.choose(&mut state);
            }
        }
        state.current.clone()
    }

    /// Choose again now (the server refused what we sent); whether the headers changed.
    pub fn reload(&self) -> bool {
        if self.watched.is_empty() {
            return false;
        }
        let mut state = self.lock();
        let before = state.current.clone();
        state.stamps = stamp_all(&self.watched);
        self.choose(&mut state);
        match (&before, &state.current) {
            (Ok(a), Ok(b)) => a != b,
            _ => true,
        }
    }

    /// What hints about the server's refusals need: the profile and the token's source.
    pub fn hints(&self) -> Hints {
        self.lock().hints.clone()
    }

    fn choose(&self, state: &mut State) {
        match resolve(&self.root, &self.request) {
            Ok((headers, _, hints)) => {
                state.current = Ok(headers);
                state.hints = hints;
            }
            Err(e) => state.current = Err(Refusal::of(&e)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn resolve(root: &Path, request: &Request) -> anyhow::Result<(HeaderSet, String, Hints)> {
    let found = target::resolve_headers(root, request, &|name| std::env::var(name).ok())?;
    let headers = found.headers.into_iter().map(|h| (h.name, h.value)).collect();
    Ok((Arc::new(headers), found.url, found.hints))
}

fn stamp_all(paths: &[PathBuf]) -> Vec<Stamp> {
    paths.iter().map(|p| std::fs::symlink_metadata(p).ok().map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.size()))).collect()
}
