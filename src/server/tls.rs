//! HTTPS for `serve` (`--tls-cert`/`--tls-key`, or `server.tls`): rustls with the ring provider,
//! TLS 1.2 and 1.3, HTTP/1.1 over ALPN. The certificate is served through a resolver that holds
//! the current one; a watcher re-reads the two PEM files whenever their identity changes
//! (inode, size, modification time — a renewal that swaps a symbolic link counts), so new
//! connections get the new certificate without a restart. A pair that does not load (a
//! half-written file, a key that does not match) keeps the last good one and is logged once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::server::access_log::log_line;
use crate::server::watch::{Fingerprint, WATCH_INTERVAL};

/// Largest certificate chain or key file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The certificate being served, and the files it comes from.
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
    seen: Mutex<Fingerprint>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Certificates {
    /// Load the pair; the error names the file that is wrong.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Certificates>> {
        let seen = Fingerprint::of(&[cert.to_path_buf(), key.to_path_buf()]);
        let certified = read_pair(cert, key)?;
        Ok(Arc::new(Certificates { current: RwLock::new(Arc::new(certified)), cert: cert.into(), key: key.into(), seen: Mutex::new(seen) }))
    }

    /// The rustls configuration that serves the current certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Read the files again if they changed; whether a new certificate is in place.
    pub fn reload_if_changed(&self) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Fingerprint::of(&[self.cert.clone(), self.key.clone()]);
        if now == *seen {
            return false;
        }
        // Remembered first: a broken pair is reported once, not at every look.
        *seen = now;
        match read_pair(&self.cert, &self.key) {
            Ok(certified) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(certified);
                log_line(&format!("reloaded the TLS certificate {}", self.cert.display()));
                true
            }
            Err(e) => {
                log_line(&format!("warning: TLS certificate not reloaded, keeping the last good one: {}", crate::error::one_line(&e)));
                false
            }
        }
    }

    /// Poll the files until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut next = Instant::now();
            loop {
                next += WATCH_INTERVAL;
                tokio::time::sleep_until(next.into()).await;
                let me = Arc::clone(&me);
                let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
            }
        });
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner())))
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so a FIFO planted as the certificate cannot hang start-up or the watcher;
    // and only a regular file is read (links are followed: certbot's `live/` folder is links).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    if !file.metadata().with_context(|| format!("{}: cannot read", path.display()))?.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes).with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        bail!("{}: larger than {} bytes; not a PEM certificate or key", path.display(), MAX_PEM_BYTES);
    }
    Ok(bytes)
}

/// A certificate chain and its private key, checked to belong together.
fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read_capped(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate chain ({e})", cert.display()))?;
    if chain.is_empty() {
        bail!("{}: no CERTIFICATE block", cert.display());
    }
    let der =
        PrivateKeyDer::from_pem_slice(&read_capped(key)?).map_err(|e| anyhow::anyhow!("{}: not a PEM private key ({e})", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| anyhow::anyhow!("{}: unsupported private key ({e})", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| anyhow::anyhow!("{} does not belong to {} ({e})", key.display(), cert.display()))?;
    Ok(certified)
}
