//! The accept loop of `mcpgen serve`: bind, then serve HTTP/1.1 connections with hyper until
//! shutdown. Everything a client can hold is bounded here: at most `server.max_connections`
//! connections at once (the rest wait in the kernel's accept queue) and at most
//! `server.max_connections_per_client` from one address, a request head of at most
//! [`MAX_HEAD_BYTES`], a connection that sends no request head for `server.idle_timeout_seconds`
//! (also between kept-alive requests) is closed, and accept errors (descriptors exhausted) back
//! off from 10 ms to 1 s instead of spinning, logged once per burst. On shutdown (SIGTERM) the
//! server drains: see the end of [`Server::run`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::server::access_log::log_line;
use crate::server::router::{AppState, router};
use crate::server::sessions::Sessions;
use crate::server::tls::Certificates;
use crate::server::watch::Shared;

/// Largest request head (request line plus headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// First and longest pause after a failed `accept` (descriptors exhausted, …).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    pub addr: SocketAddr,
    /// HTTPS: the certificates (reloaded by their watcher) and the handshake they serve.
    tls: Option<(Arc<Certificates>, tokio_rustls::TlsAcceptor)>,
}

impl Server {
    /// Bind `addr` and prepare the routes; with `tls`, serve HTTPS. The watchers that reload the
    /// profile and the certificate start with [`run`].
    pub async fn bind(shared: Arc<Shared>, addr: SocketAddr, log: bool, tls: Option<Arc<Certificates>>) -> anyhow::Result<Server> {
        let tls = match tls {
            Some(certificates) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(certificates.server_config()?);
                Some((certificates, acceptor))
            }
            None => None,
        };
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let host = match addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_owned(),
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) if a.ip().is_unspecified() => "[::1]".to_owned(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        let state = Arc::new(AppState {
            shared,
            sessions: Sessions::default(),
            base_url: format!("{}://{host}:{}", if tls.is_some() { "https" } else { "http" }, addr.port()),
            path: "/mcp".into(),
            log,
        });
        Ok(Server { listener, state, addr, tls })
    }

    /// The MCP endpoint URL.
    pub fn url(&self) -> String {
        self.state.listening_url()
    }

    /// Serve until `shutdown` completes, then drain: stop accepting, let requests in flight
    /// finish within `server.drain_seconds`, and return.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.state.shared.spawn_watcher();
        if let Some((certificates, _)) = &self.tls {
            certificates.spawn_watcher();
        }
        let app = router(Arc::clone(&self.state));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let mut connections = tokio::task::JoinSet::new();
        let mut stop = stop_rx.clone();
        let settings = self.state.shared.get().settings.clone();
        let permits = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
        let per_client = PerClient::new(settings.max_connections_per_client);
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let mut failing = false;
        loop {
            // A permit first: at the cap, new connections wait in the kernel's queue instead of
            // costing a descriptor and a task each.
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = stopped(&mut stop) => break,
            };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stopped(&mut stop) => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: retrying at once would spin; pause, longer each time,
                    // and say so once per burst.
                    if !failing {
                        log_line(&format!("warning: cannot accept connections ({e}); backing off"));
                        failing = true;
                    }
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped(&mut stop) => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            };
            if failing {
                log_line("accepting connections again");
                failing = false;
            }
            backoff = ACCEPT_BACKOFF_MIN;
            // One address may not hold every slot: past its share the connection is closed at
            // once (its permit goes back with it).
            let Some(slot) = per_client.enter(peer.ip()) else { continue };
            let _ = stream.set_nodelay(true);
            let app = app.clone().layer(axum::Extension(PeerIp(peer.ip())));
            let service = hyper_util::service::TowerToHyperService::new(app);
            let stop = stop_rx.clone();
            let idle_timeout = self.state.shared.get().settings.idle_timeout;
            let acceptor = self.tls.as_ref().map(|(_, acceptor)| acceptor.clone());
            connections.spawn(async move {
                let _permit = permit;
                let _slot = slot;
                match acceptor {
                    None => serve_connection(stream, service, idle_timeout, stop).await,
                    // The handshake is bounded like a request head; a failed one just closes.
                    Some(acceptor) => {
                        if let Ok(Ok(stream)) = tokio::time::timeout(idle_timeout, acceptor.accept(stream)).await {
                            serve_connection(stream, service, idle_timeout, stop).await;
                        }
                    }
                }
            });
            // Reap finished connection tasks so the set does not grow.
            while connections.try_join_next().is_some() {}
        }
        // The drain: no new connections (the listening socket closes here, so a load balancer
        // sees refusals, not timeouts), `/readyz` says 503 to the connections still open, idle
        // ones close, and each request in flight — a slow downstream call included — gets up to
        // `server.drain_seconds` to finish; its connection closes after it.
        self.state.shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(self.listener);
        while connections.try_join_next().is_some() {}
        let open = connections.len();
        let grace = self.state.shared.get().settings.drain;
        if self.state.log && open > 0 {
            log_line(&format!(
                "draining: {open} connection{} open; waiting up to {:.1} s",
                if open == 1 { "" } else { "s" },
                grace.as_secs_f64()
            ));
        }
        let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await.is_ok();
        if !drained {
            log_line(&format!(
                "warning: drain: {} connection(s) still busy after {:.1} s; closing them",
                connections.len(),
                grace.as_secs_f64()
            ));
            connections.abort_all();
        } else if self.state.log && open > 0 {
            log_line("drained: every request in flight finished");
        }
        Ok(())
    }
}

/// Serve one connection (plain or TLS) with hyper until it closes or the drain begins; then
/// its request in flight finishes and it closes.
async fn serve_connection<I>(
    io: I,
    service: hyper_util::service::TowerToHyperService<axum::Router>,
    idle_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    // max_buf_size alone is a soft limit: a head that arrives in one large read is parsed
    // whole, so the head size is also capped where it is parsed. (hyper's default of 100
    // headers stays: setting it moves them to the heap.) The head timeout also runs while a
    // kept-alive connection waits for its next request, so it is the idle timeout too.
    builder
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        .header_read_timeout(idle_timeout)
        .timer(hyper_util::rt::TokioTimer::new());
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The client address of a connection, for the handlers (anonymous sessions are owned by it).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub IpAddr);

/// Open connections per client address, capped.
#[derive(Clone)]
struct PerClient {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    cap: usize,
}

/// A connection's place in [`PerClient`], given back when dropped.
struct Slot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerClient {
    fn new(cap: usize) -> Self {
        PerClient { open: Arc::new(Mutex::new(HashMap::new())), cap }
    }

    fn enter(&self, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Slot { open: Arc::clone(&self.open), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Completes once the stop flag is set (or its sender is gone).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
