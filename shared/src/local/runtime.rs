//! The tokio workers that stand in for the enqueue and deliver functions on
//! one machine, and the registry that persists 410-disabled subscriptions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{OutboxEntry, SqliteStore};
use crate::config::{Registry, Source, StaticRegistry, Subscription};
use crate::delivery::Transport;
use crate::error::Unavailable;
use crate::model::ReceivedTask;
use crate::pipeline::deliver::{DeliverPorts, Disposition, deliver};
use crate::pipeline::enqueue::{log_routed, route};
use crate::time::now_ms;

/// Most queue messages deleted in one store write.
const ACK_BATCH: usize = 512;

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
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(90),
            max_in_flight: 256,
            outbox_batch: 256,
            purge_every: Duration::from_secs(3600),
        }
    }
}

/// A registry whose 410-disabled subscriptions survive a restart.
pub struct LocalRegistry {
    inner: StaticRegistry,
    store: SqliteStore,
}

impl LocalRegistry {
    /// Wrap a config's registry and apply the persisted disabled flags.
    pub async fn new(inner: StaticRegistry, store: SqliteStore) -> Result<Self, Unavailable> {
        for id in store.disabled_subscriptions().await? {
            if let Some(s) = inner.get_subscription(&id) {
                s.set_enabled(false);
            }
        }
        Ok(Self { inner, store })
    }

    pub fn config(&self) -> &StaticRegistry {
        &self.inner
    }
}

#[async_trait]
impl Registry for LocalRegistry {
    async fn source(&self, id: &str) -> Result<Option<Arc<Source>>, Unavailable> {
        self.inner.source(id).await
    }

    async fn subscriptions_of(&self, source: &str) -> Result<Vec<Arc<Subscription>>, Unavailable> {
        self.inner.subscriptions_of(source).await
    }

    async fn subscription(&self, id: &str) -> Result<Option<Arc<Subscription>>, Unavailable> {
        self.inner.subscription(id).await
    }

    async fn disable_subscription(&self, id: &str) -> Result<(), Unavailable> {
        self.store.set_subscription_disabled(id, true).await?;
        self.inner.disable_subscription(id).await
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
    /// Handles of finished messages, deleted in batches by `ack_worker`.
    acks: mpsc::Sender<String>,
}

impl LocalRuntime {
    pub fn start(
        registry: Arc<LocalRegistry>,
        store: SqliteStore,
        transport: Arc<dyn Transport>,
        options: RuntimeOptions,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (acks, ack_rx) = mpsc::channel(ACK_BATCH * 8);
        let mut workers = JoinSet::new();
        workers.spawn(ack_worker(store.clone(), ack_rx));
        let shared = Arc::new(Shared {
            registry,
            store,
            transport,
            options,
            acks,
        });
        workers.spawn(outbox_worker(shared.clone(), stopped.clone()));
        workers.spawn(delivery_worker(shared.clone(), stopped.clone()));
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
            Ok(entries) if !entries.is_empty() => {
                if route_batch(&shared, entries).await {
                    continue;
                }
                // Something failed: the entries stay in the outbox; back off
                // rather than spin on them.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopped.changed() => {}
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

/// Routes outbox entries and queues their tasks in one store write (the
/// embedded form of the enqueue step: the same routing, with queueing and
/// marking in one transaction). True when every entry was routed.
async fn route_batch(shared: &Shared, entries: Vec<OutboxEntry>) -> bool {
    let registry: &dyn Registry = shared.registry.as_ref();
    let mut routes = Vec::with_capacity(entries.len());
    let mut all_routed = true;
    for entry in entries {
        match route(registry, &entry.key.source, &entry.event_type).await {
            Ok(subs) => routes.push((entry, subs)),
            Err(e) => {
                all_routed = false;
                tracing::warn!(source = %entry.key.source, event_id = %entry.key.id, error = %e, "routing failed; will retry");
            }
        }
    }
    match shared.store.dispatch(routes).await {
        Ok(routed) => {
            for (entry, subs) in &routed {
                log_routed(&entry.key, &entry.event_type, subs.len());
            }
            all_routed
        }
        Err(e) => {
            tracing::warn!(error = %e, "queueing routed events failed; will retry");
            false
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
            // Closed only once the workers are gone; then the message comes
            // back after its visibility timeout and is skipped as finished.
            let _ = shared.acks.send(msg.handle).await;
        }
        Ok(Disposition::Retry) => {}
        Err(e) => {
            let task = &msg.task;
            tracing::warn!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, error = %e, "delivery step failed; the task comes back after its visibility timeout");
        }
    }
}

/// Deletes finished messages, as many per store write as have gathered
/// meanwhile. Ends once every sender is gone, after the last batch.
async fn ack_worker(store: SqliteStore, mut handles: mpsc::Receiver<String>) {
    let mut batch = Vec::with_capacity(ACK_BATCH);
    while handles.recv_many(&mut batch, ACK_BATCH).await > 0 {
        if let Err(e) = store.ack(&batch).await {
            tracing::warn!(error = %e, messages = batch.len(), "ack failed; the tasks will be seen again and skipped");
        }
        batch.clear();
    }
}

async fn purge_worker(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        match shared.store.purge_expired(now_ms()).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired events purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.options.purge_every) => {}
            _ = stopped.changed() => return,
        }
    }
}
