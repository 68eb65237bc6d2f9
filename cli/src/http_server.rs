//! The embedded gateway's HTTP/1.1 server: its own accept loop, so that a
//! client cannot hold a connection for free. `axum::serve` gives hyper no
//! timer, so hyper's header read timeout never fires there; and it accepts
//! without bound.
//!
//! * A request head must arrive within `header_timeout` (hyper's timer),
//!   and be at most `max_header_bytes` and 100 fields (else 431).
//!   Body deadlines are the handlers' (`serve.rs`).
//! * At most `max_connections` are served at once: the loop takes a permit
//!   before it accepts, so further clients wait in the listen backlog.
//! * Shutdown stops accepting, asks every connection to finish its request,
//!   and drops those still open after `grace`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub grace: Duration,
}

/// Serve `router` on `listener` until `stop` fires (or its sender is
/// dropped), then shut down within `limits.grace`.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes);
    // The header count keeps hyper's default (serve::MAX_HEADERS): setting
    // it, even to the same 100, moves every request's header array to the heap.
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        // Finished connections leave the set here, so it holds at most
        // `max_connections` running ones and what ended since last time.
        while connections.try_join_next().is_some() {}
        // The permit first: while all are taken, nothing is accepted.
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_error(&e).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                // Timeouts, resets and malformed requests: the client's doing.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    // Closing the listener refuses new connections from here on.
    drop(listener);
    let open_at_shutdown = graceful.count();
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open_at_shutdown,
            grace_ms = limits.grace.as_millis() as u64,
            "HTTP connections still open after the grace period: dropped"
        );
    }
    // Abort what is left. A commit under way is not lost with its
    // connection: receive hands it to a task of its own (RoutingStore).
    connections.shutdown().await;
}

/// Out of file descriptors (EMFILE, ENFILE) or memory: back off so the loop
/// does not spin, and let connections and deliveries release some. A
/// client that reset before it was accepted is nothing to report.
async fn accept_error(e: &io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
