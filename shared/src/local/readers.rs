//! The reader threads: point lookups off the async workers.
//!
//! A few std threads each own a read connection and take lookups
//! (closures) from one channel, as many as are queued at a time. A read
//! stalled on a slow disk then holds up only the tasks waiting for a read,
//! never the server's workers. Under load a reader finds work queued and
//! does not sleep, so a lookup costs a channel send and a wake of its task:
//! `block_in_place` (a worker handed to a new thread per read) and
//! `spawn_blocking` (a pool task per read) both cost more.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::writer::DbResult;
use crate::error::Unavailable;

/// Lookups a reader takes at once: few, so a slow one delays few others.
const BATCH: usize = 8;
/// Queued lookups before `call` waits.
const CHANNEL_CAPACITY: usize = 1024;

trait Job: Send {
    /// Runs the lookup and replies; false when it failed (the connection
    /// may be broken).
    fn run(self: Box<Self>, conn: &Connection) -> bool;
}

struct Lookup<T, F> {
    f: F,
    reply: oneshot::Sender<Result<T, Unavailable>>,
}

impl<T, F> Job for Lookup<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> DbResult<T> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) -> bool {
        let Lookup { f, reply } = *self;
        let out = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
            Ok(r) => r.map_err(Unavailable::new),
            Err(_) => Err(Unavailable::new("store lookup panicked")),
        };
        let ok = out.is_ok();
        // The caller may have given up waiting.
        let _ = reply.send(out);
        ok
    }
}

/// The handle to the reader threads. They stop when every handle is
/// dropped (the channel closes).
pub(crate) struct Readers {
    tx: mpsc::Sender<Box<dyn Job>>,
}

impl Readers {
    /// Starts one thread per connection in `conns`; `path` reopens one
    /// that failed.
    pub(crate) fn spawn(
        conns: Vec<Connection>,
        path: &Path,
        open: fn(&Path) -> DbResult<Connection>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let rx = Arc::new(Mutex::new(rx));
        for (i, conn) in conns.into_iter().enumerate() {
            let rx = rx.clone();
            let path = path.to_owned();
            std::thread::Builder::new()
                .name(format!("sluice-sqlite-reader-{i}"))
                .spawn(move || reader_loop(conn, &rx, &path, open))?;
        }
        Ok(Self { tx })
    }

    /// Runs `f` on a reader thread and returns its result. Never hangs on
    /// a dead reader: a closed channel or a dropped reply is `Unavailable`.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(Lookup { f, reply }))
            .await
            .map_err(|_| Unavailable::new("store readers have stopped"))?;
        rx.await
            .map_err(|_| Unavailable::new("store readers have stopped"))?
    }
}

fn reader_loop(
    mut conn: Connection,
    rx: &Mutex<mpsc::Receiver<Box<dyn Job>>>,
    path: &Path,
    open: fn(&Path) -> DbResult<Connection>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(BATCH);
    loop {
        // One reader waits on the channel while the others wait here; a
        // poisoned lock only means a reader panicked outside a lookup.
        let got = rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blocking_recv_many(&mut batch, BATCH);
        if got == 0 {
            break;
        }
        let mut failed = false;
        for job in batch.drain(..) {
            failed |= !job.run(&conn);
        }
        // A connection that just failed is replaced rather than reused.
        if failed {
            match open(path) {
                Ok(fresh) => conn = fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "reopening a reader failed; keeping the old one")
                }
            }
        }
    }
}
