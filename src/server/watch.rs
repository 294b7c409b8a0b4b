//! Hot reload: the current snapshot behind a lock, replaced whole when any file it was read
//! from changes (polled every [`WATCH_INTERVAL`]) or a retired key's grace period ends. A
//! change that does not load keeps the last good state and is logged once.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::profile;
use crate::server::access_log::log_line;
use crate::server::snapshot::{Live, Source};

/// How often the watcher looks at the profile's files.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Identity of a set of files: inode, size and modification time of each. Atomic renames give
/// a new inode, so even a same-second rewrite is noticed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<Option<(u64, u64, i64, i64)>>);

impl Fingerprint {
    pub fn of(files: &[PathBuf]) -> Fingerprint {
        let mut out = Fingerprint::default();
        for file in files {
            out.add(file);
        }
        out
    }

    pub fn add(&mut self, file: &Path) {
        self.0.push(std::fs::metadata(file).ok().map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec())));
    }
}

/// The current snapshot, replaced atomically by the watcher.
pub struct Shared {
    current: RwLock<Arc<Live>>,
    /// The files' fingerprint when they were last read (taken before reading, so a change
    /// during the read is seen at the next look).
    seen: Mutex<Fingerprint>,
    pub source: Source,
    /// The per-client request buckets (kept across reloads).
    pub limiter: crate::server::rate_limit::RateLimiter,
    /// Clients' `clientInfo` by session, for the access log.
    pub client_names: crate::server::access_log::ClientNames,
    /// Set when a drain has begun: `/readyz` answers 503.
    pub draining: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn new(source: Source) -> Result<Arc<Shared>> {
        let live = Live::load(&source, None, &mut Vec::new())?;
        let seen = Mutex::new(live.stamps.clone());
        crate::server::metrics::set_enabled(live.settings.metrics.enabled);
        Ok(Arc::new(Shared {
            current: RwLock::new(Arc::new(live)),
            seen,
            source,
            limiter: Default::default(),
            client_names: Default::default(),
            draining: Default::default(),
        }))
    }

    pub fn get(&self) -> Arc<Live> {
        self.current.read().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reload if any watched file changed or a grace period ended. Returns whether a new
    /// snapshot was installed.
    pub fn reload_if_changed(&self) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.get();
        let now = Fingerprint::of(&current.watched);
        let changed = now != *seen;
        let due = current.renew_at.is_some_and(|t| profile::now() >= t);
        if !changed && !due {
            return false;
        }
        // Remember it first: a bad edit is reported once, not at every interval.
        *seen = now;
        let mut warnings = Vec::new();
        match Live::load(&self.source, Some(&current), &mut warnings) {
            Ok(next) => {
                *seen = next.stamps.clone();
                crate::server::metrics::set_enabled(next.settings.metrics.enabled);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
                if warnings.is_empty() {
                    log_line(&format!("reloaded profile {} (configuration, keys, revocations, tools)", self.source.profile));
                } else if changed {
                    for w in &warnings {
                        log_line(&format!("warning: reload of profile {} failed, {w}", self.source.profile));
                    }
                    log_line(&format!("reloaded profile {} (keys and revocations; see the warnings above)", self.source.profile));
                }
                true
            }
            // Already reported when the files changed; a due renewal retries at the next look.
            Err(_) if !changed => false,
            Err(e) => {
                log_line(&format!(
                    "warning: reload of profile {} failed, keeping the last good configuration: {}",
                    self.source.profile,
                    crate::error::one_line(&e)
                ));
                false
            }
        }
    }

    /// Poll for changes until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            let mut next = Instant::now();
            loop {
                next += WATCH_INTERVAL;
                tokio::time::sleep_until(next.into()).await;
                let s = Arc::clone(&shared);
                let _ = tokio::task::spawn_blocking(move || s.reload_if_changed()).await;
            }
        });
    }
}
