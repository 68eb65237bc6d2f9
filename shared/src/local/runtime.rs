//! The tokio workers that stand in for the enqueue and deliver functions on
//! one machine, plus the purge and config-watch loops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::SqliteStore;
pub use super::registry::LocalRegistry;
use crate::config::Registry;
use crate::delivery::Transport;
use crate::model::ReceivedTask;
use crate::pipeline::deliver::{DeliverPorts, Disposition, deliver};
use crate::pipeline::enqueue::enqueue;
use crate::time::now_ms;

/// Tuning of the embedded workers.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// How long a received task stays invisible: longer than one attempt
    /// can take, so a slow attempt is not handed out twice.
    pub visibility_timeout: Duration,
    /// Deliveries in flight at once.
    pub max_in_flight: usize,
    /// Events routed per outbox batch.
    pub outbox_batch: usize,
    /// How often expired events are purged.
    pub purge_every: Duration,
    /// How often the config table is checked for changes made by another
    /// process (the admin API's own changes apply at once).
    pub config_poll: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(90),
            max_in_flight: 256,
            outbox_batch: 256,
            purge_every: Duration::from_secs(3600),
            config_poll: Duration::from_secs(2),
        }
    }
}

/// The running workers. Dropping it without [`LocalRuntime::shutdown`]
/// aborts them; pending work is still in SQLite and resumes on restart.
pub struct LocalRuntime {
    stop: watch::Sender<bool>,
    workers: JoinSet<()>,
}

struct Shared {
    registry: Arc<LocalRegistry>,
    store: SqliteStore,
    transport: Arc<dyn Transport>,
    options: RuntimeOptions,
}

impl LocalRuntime {
    pub fn start(
        registry: Arc<LocalRegistry>,
        store: SqliteStore,
        transport: Arc<dyn Transport>,
        options: RuntimeOptions,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            registry,
            store,
            transport,
            options,
        });
        let mut workers = JoinSet::new();
        workers.spawn(outbox_worker(shared.clone(), stopped.clone()));
        workers.spawn(delivery_worker(shared.clone(), stopped.clone()));
        workers.spawn(config_worker(shared.clone(), stopped.clone()));
        workers.spawn(purge_worker(shared, stopped));
        Self { stop, workers }
    }

    /// Stop taking new work and let in-flight deliveries finish, for at
    /// most `grace`. Whatever is unfinished stays queued for the next start.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "shutdown grace period over; unfinished deliveries stay queued"
            );
            self.workers.shutdown().await;
        }
    }
}

/// Routes committed events (the outbox) to delivery tasks.
async fn outbox_worker(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let notify = shared.store.outbox_notifier();
    while !*stopped.borrow() {
        // Register interest before reading, so a commit in between still wakes us.
        let woken = notify.notified();
        match shared
            .store
            .pending_outbox(shared.options.outbox_batch)
            .await
        {
            Ok(events) if !events.is_empty() => {
                let reg: &dyn Registry = shared.registry.as_ref();
                let keys: Vec<_> = events.iter().map(|e| e.key()).collect();
                let routed = events
                    .iter()
                    .zip(&keys)
                    .map(|(e, key)| enqueue(reg, &shared.store, &shared.store, key, &e.event_type));
                for (event, result) in events.iter().zip(futures::future::join_all(routed).await) {
                    if let Err(e) = result {
                        tracing::warn!(source = %event.source, event_id = %event.id, error = %e, "routing failed; will retry");
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "outbox read failed; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopped.changed() => {}
                }
                continue;
            }
        }
        tokio::select! {
            _ = woken => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Receives delivery tasks with SQS semantics and runs each attempt.
async fn delivery_worker(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let notify = shared.store.queue_notifier();
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let max = shared.options.max_in_flight.max(1);
    loop {
        if *stopped.borrow() {
            break;
        }
        let woken = notify.notified();
        let room = max - in_flight.len();
        let mut received = 0;
        if room > 0 {
            match shared
                .store
                .receive(room.min(128), shared.options.visibility_timeout)
                .await
            {
                Ok(tasks) => {
                    received = tasks.len();
                    for task in tasks {
                        in_flight.spawn(deliver_one(shared.clone(), task));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "queue receive failed"),
            }
        }
        if received > 0 && in_flight.len() < max {
            continue;
        }
        let wake_at = match shared.store.next_visible_at().await {
            Ok(Some(at)) => Some(Duration::from_millis((at - now_ms()).max(0) as u64)),
            Ok(None) => None,
            Err(_) => Some(Duration::from_secs(1)),
        };
        let sleep = tokio::time::sleep(wake_at.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            _ = woken => {}
            _ = sleep => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = stopped.changed() => {}
        }
    }
    // Graceful stop: let what is in flight finish.
    while in_flight.join_next().await.is_some() {}
}

async fn deliver_one(shared: Arc<Shared>, msg: ReceivedTask) {
    let ports = DeliverPorts {
        registry: shared.registry.as_ref(),
        store: &shared.store,
        queue: &shared.store,
        transport: shared.transport.as_ref(),
    };
    match deliver(&ports, &msg).await {
        Ok(Disposition::Done) => {
            if let Err(e) = shared.store.ack(std::slice::from_ref(&msg.handle)).await {
                tracing::warn!(error = %e, "ack failed; the task will be seen again and skipped");
            }
        }
        Ok(Disposition::Retry) => {}
        Err(e) => {
            let task = &msg.task;
            tracing::warn!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, error = %e, "delivery step failed; the task comes back after its visibility timeout");
        }
    }
}

async fn purge_worker(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        match shared.store.purge_expired(now_ms()).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired events purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        match shared.store.purge_admin(now_ms()).await {
            Ok(n) if n > 0 => {
                tracing::info!(purged = n, "old dead letters and replay links purged")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "dead letter purge failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.options.purge_every) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Picks up config changes written by another process (e.g. `apply`).
async fn config_worker(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.options.config_poll) => {}
            _ = stopped.changed() => return,
        }
        match shared.registry.reload_if_changed().await {
            Ok(true) => tracing::info!("config changed; reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "config reload failed; the running config stays"),
        }
    }
}
