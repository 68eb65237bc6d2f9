//! The single writer thread: group commit.
//!
//! One std thread owns the only write connection. Callers send it commands
//! (closures) over a bounded channel; it drains whatever is queued (up to
//! [`MAX_BATCH`]), runs all of it in one transaction, commits once (one
//! fsync for the whole batch), and only then replies to each caller. Each
//! command runs inside its own SAVEPOINT, so a failing command is rolled
//! back alone and the rest of the batch still commits.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::Unavailable;

/// Most commands in one transaction. Bounds the latency one batch adds.
pub(crate) const MAX_BATCH: usize = 512;
/// Ask the checkpointer to copy WAL frames into the main file after this
/// many transactions. Each checkpoint copies the latest frame of every page
/// changed since the last one, and the hot pages (the tables' and indexes'
/// right edges, the queue) change in every transaction: at 8 they were
/// copied and fsynced again and again; 32 copies each about 4x less often.
const CHECKPOINT_EVERY: u64 = 32;
/// WAL length (frames, 4 KiB each) at which the writer checkpoints itself.
/// The checkpointer thread alone can never let the WAL restart from the
/// beginning under steady load (the writer keeps appending while it copies);
/// a checkpoint on the writer's own connection, between two transactions,
/// catches up fully so the next transaction rewinds the WAL. Most frames
/// are already copied by then, so this is cheap.
const WAL_REWIND_FRAMES: u64 = 4096;
/// Queued commands before `call` waits: backpressure under overload rather
/// than unbounded memory.
const CHANNEL_CAPACITY: usize = 4096;

pub(crate) type DbResult<T> = Result<T, rusqlite::Error>;

/// What a command changed, so the writer can wake the workers after the
/// commit (never before: a woken worker must see the change).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Wake {
    /// A new event is waiting in the outbox.
    pub outbox: bool,
    /// The queue's schedule changed (new message, or a visibility change).
    pub queue: bool,
}

impl Wake {
    fn merge(&mut self, other: Wake) {
        self.outbox |= other.outbox;
        self.queue |= other.queue;
    }
}

/// A type-erased command: run it inside the batch, then report the outcome
/// once the batch has committed (or failed).
trait Job: Send {
    /// Runs the command; true when it succeeded (its savepoint is kept).
    fn run(&mut self, conn: &Connection, wake: &mut Wake) -> bool;
    /// Replies to the caller. `batch` is the outcome of the whole
    /// transaction: a command's own success means nothing if the commit failed.
    fn finish(self: Box<Self>, batch: Result<(), &str>);
}

struct Cmd<T, F> {
    f: Option<F>,
    out: Option<Result<T, String>>,
    reply: oneshot::Sender<Result<T, Unavailable>>,
}

impl<T, F> Job for Cmd<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &mut Wake) -> DbResult<T> + Send,
{
    fn run(&mut self, conn: &Connection, wake: &mut Wake) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        // A panicking command must not take the writer (and every other
        // caller) down with it; its savepoint is rolled back like any error.
        let out = match catch_unwind(AssertUnwindSafe(|| f(conn, wake))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("store command panicked".to_owned()),
        };
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, batch: Result<(), &str>) {
        let res = match (batch, self.out) {
            (Err(e), _) => Err(Unavailable::new(e)),
            (Ok(()), Some(out)) => out.map_err(Unavailable::new),
            (Ok(()), None) => Err(Unavailable::new("store command did not run")),
        };
        // The caller may have given up waiting; the result is durable anyway.
        let _ = self.reply.send(res);
    }
}

/// The handle to the writer thread. The thread stops when every handle is
/// dropped (the channel closes), after finishing the batch in hand.
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
    /// Transactions committed so far (one fsync each).
    batches: Arc<AtomicU64>,
}

impl Writer {
    /// `conn` is the write connection (autocheckpoint off); `checkpoint_conn`
    /// a second connection to the same file for the checkpointer thread.
    pub(crate) fn spawn(
        conn: Connection,
        checkpoint_conn: Connection,
        outbox: Arc<Notify>,
        queue: Arc<Notify>,
    ) -> std::io::Result<Self> {
        let checkpointer = Checkpointer::spawn(checkpoint_conn)?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let batches = Arc::new(AtomicU64::new(0));
        let state = WriterState {
            outbox,
            queue,
            batches: batches.clone(),
            checkpointer,
        };
        std::thread::Builder::new()
            .name("sluice-sqlite-writer".to_owned())
            .spawn(move || writer_loop(conn, rx, &state))?;
        Ok(Self { tx, batches })
    }

    pub(crate) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Runs `f` in the next batch and returns its result once that batch is
    /// durable. Never hangs on a dead writer: a closed channel or a dropped
    /// reply is `Unavailable`.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Wake) -> DbResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Cmd {
            f: Some(f),
            out: None,
            reply,
        });
        self.tx
            .send(job)
            .await
            .map_err(|_| Unavailable::new("store writer has stopped"))?;
        rx.await
            .map_err(|_| Unavailable::new("store writer has stopped"))?
    }
}

struct WriterState {
    outbox: Arc<Notify>,
    queue: Arc<Notify>,
    batches: Arc<AtomicU64>,
    checkpointer: Checkpointer,
}

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, state: &WriterState) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    // Blocks for the first command, then takes whatever else is already
    // queued: while one batch fsyncs, the next one accumulates.
    while rx.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        let result = run_batch(&conn, &mut batch);
        if let Err(e) = &result {
            tracing::error!(error = %e, commands = batch.len(), "sqlite batch failed");
        }
        // Counted before the replies, so a caller that saw its write succeed
        // also sees it counted.
        let committed = result
            .is_ok()
            .then(|| state.batches.fetch_add(1, Ordering::Relaxed) + 1);
        let outcome = result.as_ref().map(|_| ()).map_err(String::as_str);
        for job in batch.drain(..) {
            job.finish(outcome);
        }
        if let (Ok(wake), Some(n)) = (result, committed) {
            // notify_one stores a permit when nobody waits yet, so a worker
            // that checks and then waits cannot miss this commit.
            if wake.outbox {
                state.outbox.notify_one();
            }
            if wake.queue {
                state.queue.notify_one();
            }
            if n % CHECKPOINT_EVERY == 0 {
                state.checkpointer.poke();
            }
            if state.checkpointer.wal_frames.load(Ordering::Relaxed) >= WAL_REWIND_FRAMES {
                match checkpoint(&conn) {
                    Ok(frames) => state
                        .checkpointer
                        .wal_frames
                        .store(frames, Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
                }
            }
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// Runs the batch in one transaction. Err means nothing was committed.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<Wake, String> {
    let result = run_in_transaction(conn, batch);
    if result.is_err()
        && !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "sqlite rollback failed");
    }
    result
}

fn run_in_transaction(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<Wake, String> {
    let exec = |sql: &str| -> Result<(), String> {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    exec("BEGIN IMMEDIATE")?;
    let mut wake = Wake::default();
    for job in batch.iter_mut() {
        exec("SAVEPOINT cmd")?;
        let mut own = Wake::default();
        if job.run(conn, &mut own) {
            exec("RELEASE cmd")?;
            wake.merge(own);
        } else {
            // Some errors (disk full, I/O) make SQLite roll back the whole
            // transaction; then the batch is lost and every caller must hear so.
            if conn.is_autocommit() {
                return Err("sqlite rolled the transaction back".to_owned());
            }
            exec("ROLLBACK TO cmd")?;
            exec("RELEASE cmd")?;
        }
    }
    exec("COMMIT")?;
    Ok(wake)
}

/// Copies committed WAL frames into the main database file on its own
/// thread and connection, off the commit path.
struct Checkpointer {
    poke: std::sync::mpsc::SyncSender<()>,
    /// WAL length in frames after the last checkpoint.
    wal_frames: Arc<AtomicU64>,
}

impl Checkpointer {
    fn spawn(conn: Connection) -> std::io::Result<Self> {
        // Capacity 1: pokes that arrive while a checkpoint runs coalesce.
        let (poke, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let wal_frames = Arc::new(AtomicU64::new(0));
        let frames = wal_frames.clone();
        std::thread::Builder::new()
            .name("sluice-sqlite-checkpoint".to_owned())
            .spawn(move || {
                while rx.recv().is_ok() {
                    match checkpoint(&conn) {
                        Ok(n) => frames.store(n, Ordering::Relaxed),
                        Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
                    }
                }
            })?;
        Ok(Self { poke, wal_frames })
    }

    fn poke(&self) {
        // Full: a checkpoint is already due. Disconnected: it died; the
        // writer's own checkpoints keep the WAL bounded.
        let _ = self.poke.try_send(());
    }
}

/// A passive checkpoint (never waits for readers or the writer). Returns
/// the WAL length in frames.
fn checkpoint(conn: &Connection) -> DbResult<u64> {
    let log: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    Ok(u64::try_from(log).unwrap_or(0))
}
