//! The tokio workers that stand in for the enqueue and deliver functions on
//! one machine, plus the purge and config-watch loops.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::metrics::GatewayMetrics;
pub use super::registry::LocalRegistry;
use super::store::duration_ms;
use super::{LocalGate, OutboxEntry, SqliteStore};
use crate::config::{Policy, Registry};
use crate::delivery::{DeliveryError, DeliveryResponse, OutboundRequest, Transport};
use crate::error::Unavailable;
use crate::model::{Attempt, DeliveryStatus, DeliveryTask, Event, EventKey, ReceivedTask};
use crate::pipeline::deliver::{self, DeliverOptions, DeliverPorts, Disposition, Report, deliver};
use crate::pipeline::enqueue::{Stored, log_routed, route};
use crate::poll::{Fetch, PollPorts, poll_due};
use crate::store::{Claim, Commit, EventStore, Lease};
use crate::time::now_ms;

/// Most queue messages deleted in one store write.
const ACK_BATCH: usize = 512;
/// Free delivery slots the worker waits for before receiving from the queue.
const RECEIVE_BATCH: usize = 16;

/// Tuning of the embedded workers.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// How long a received task stays invisible: longer than one attempt
    /// can take, so a slow attempt is not handed out twice.
    pub visibility_timeout: Duration,
    /// Deliveries in flight at once. Each may hold an HTTP connection
    /// (kept alive in the pool), so this also bounds connections and memory.
    pub max_in_flight: usize,
    /// Events routed per outbox batch.
    pub outbox_batch: usize,
    /// How often expired events are purged.
    pub purge_every: Duration,
    /// How often the config table is checked for changes made by another
    /// process (the admin API's own changes apply at once).
    pub config_poll: Duration,
    /// How often the pollers are checked for a due poll.
    pub poll_tick: Duration,
    /// The deliver step's lease and pause recheck. The lease must end
    /// before a claim on the queue does (`visibility_timeout`).
    pub deliver: DeliverOptions,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(90),
            // 256 opened ~180 connections to one fast sink under load (the
            // outbox hands over whole batches) for no gain in throughput,
            // and their buffers were a third of the RSS budget. 64 still
            // covers 640 deliveries/s to a destination that takes 100 ms.
            max_in_flight: 64,
            outbox_batch: 256,
            purge_every: Duration::from_secs(3600),
            config_poll: Duration::from_secs(2),
            poll_tick: Duration::from_secs(1),
            deliver: DeliverOptions {
                lease: Duration::from_secs(45),
                // A resume wakes parked tasks at once (`wake_parked`); this
                // is only the fallback.
                pause_recheck: Duration::from_secs(3600),
                inline_wait: crate::pipeline::deliver::INLINE_WAIT,
            },
        }
    }
}

/// The running workers. Dropping it without [`LocalRuntime::shutdown`]
/// aborts them; pending work is still in SQLite and resumes on restart.
pub struct LocalRuntime {
    stop: watch::Sender<bool>,
    workers: JoinSet<()>,
    receive_store: RoutingStore,
    metrics: Arc<GatewayMetrics>,
}

struct Shared {
    registry: Arc<LocalRegistry>,
    store: SqliteStore,
    transport: Arc<dyn Transport>,
    gate: Arc<LocalGate>,
    options: RuntimeOptions,
    /// Handles of finished messages, deleted in batches by `ack_worker`.
    acks: mpsc::Sender<String>,
    metrics: Arc<GatewayMetrics>,
}

impl LocalRuntime {
    pub fn start(
        registry: Arc<LocalRegistry>,
        store: SqliteStore,
        transport: Arc<dyn Transport>,
        gate: Arc<LocalGate>,
        fetch: Arc<dyn Fetch>,
        options: RuntimeOptions,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (acks, ack_rx) = mpsc::channel(ACK_BATCH * 8);
        let mut workers = JoinSet::new();
        workers.spawn(ack_worker(store.clone(), ack_rx));
        let metrics = Arc::new(GatewayMetrics::new());
        let shared = Arc::new(Shared {
            registry,
            store,
            transport,
            gate,
            options,
            acks,
            metrics: metrics.clone(),
        });
        let (handoff, handoff_rx) = mpsc::channel(shared.options.max_in_flight.max(1) * 2);
        let receive_store = RoutingStore {
            store: shared.store.clone(),
            registry: shared.registry.clone(),
            handoff: Some(handoff.clone()),
            claim: shared.options.visibility_timeout,
        };
        workers.spawn(outbox_worker(shared.clone(), handoff, stopped.clone()));
        workers.spawn(delivery_worker(shared.clone(), handoff_rx, stopped.clone()));
        workers.spawn(config_worker(shared.clone(), stopped.clone()));
        workers.spawn(poll_worker(
            shared.clone(),
            receive_store.clone(),
            fetch,
            stopped.clone(),
        ));
        workers.spawn(purge_worker(shared, stopped));
        Self {
            stop,
            workers,
            receive_store,
            metrics,
        }
    }

    /// The metrics these workers record, for the receive path to add to
    /// and for `/metrics` to render.
    pub fn metrics(&self) -> Arc<GatewayMetrics> {
        self.metrics.clone()
    }

    /// The store the receive path should commit through: it routes each
    /// new event in its commit and hands the deliveries to these workers.
    pub fn receive_store(&self) -> RoutingStore {
        self.receive_store.clone()
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

/// The event store of the embedded receive path. A commit routes the
/// event first (the registry is in memory) and commits it together with
/// its deliveries and queue messages, then hands the messages straight to
/// the delivery worker: no outbox entry, no second commit to wait for, no
/// outbox read. What the worker has no room for is queued visible and
/// received from the queue instead. An event whose routing fails is
/// committed with an outbox entry, and the outbox worker routes it later.
/// Everything else is the plain [`SqliteStore`].
#[derive(Clone)]
pub struct RoutingStore {
    store: SqliteStore,
    registry: Arc<dyn Registry>,
    /// The delivery worker of this process, if it runs here.
    handoff: Option<mpsc::Sender<Handoff>>,
    claim: Duration,
}

impl RoutingStore {
    /// Routes at commit and queues the deliveries visible, with no
    /// delivery worker to hand them to: for commits made outside the
    /// gateway's workers (an operator's "poll now", also from the CLI).
    /// The gateway's delivery worker finds them on the queue.
    pub fn queueing(store: SqliteStore, registry: Arc<dyn Registry>) -> Self {
        Self {
            store,
            registry,
            handoff: None,
            claim: Duration::ZERO,
        }
    }

    async fn commit_and_hand_over(&self, event: Event) -> Result<Commit, Unavailable> {
        let key = event.key();
        let routing = route(self.registry.as_ref(), &key, &event.event_type, &event).await;
        let subs = match routing {
            Ok(subs) => subs,
            Err(e) => {
                tracing::warn!(source = %event.source, event_id = %event.id, error = %e, "routing at commit failed; the outbox routes it");
                return self.store.commit(&event).await;
            }
        };
        // Room on the handoff is reserved before the commit, so a message
        // is claimed only when the worker is sure to get it.
        let deliveries = subs.len();
        let permits = self
            .handoff
            .as_ref()
            .and_then(|h| h.try_reserve_many(deliveries).ok());
        let claim = permits.as_ref().map(|_| self.claim);
        let event_type = event.event_type.clone();
        let routed = self.store.commit_routed(event, subs, claim).await?;
        if routed.commit == Commit::Accepted {
            log_routed(&key, &event_type, deliveries);
        }
        if let Some(permits) = permits {
            let claimed_until_ms = routed.claimed_until_ms;
            for (permit, msg) in permits.zip(routed.claimed) {
                permit.send(Handoff {
                    msg,
                    claimed_until_ms,
                });
            }
        }
        Ok(routed.commit)
    }
}

#[async_trait]
impl EventStore for RoutingStore {
    /// On its own task: a request whose client hangs up is dropped, and
    /// with it any future it awaits, but a commit that may have landed must
    /// still hand its claimed messages over (or they would wait out their
    /// claim). The task owns a clone of the event, which the write needs
    /// anyway.
    async fn commit(&self, event: &Event) -> Result<Commit, Unavailable> {
        let this = self.clone();
        let event = event.clone(); // the body is `Bytes`: a refcount, not a copy
        tokio::spawn(async move { this.commit_and_hand_over(event).await })
            .await
            .map_err(|e| Unavailable::new(format!("commit task failed: {e}")))?
    }

    async fn load(&self, key: &EventKey) -> Result<Option<Event>, Unavailable> {
        self.store.load(key).await
    }

    async fn mark_routed(
        &self,
        key: &EventKey,
        subscriptions: &[String],
    ) -> Result<(), Unavailable> {
        self.store.mark_routed(key, subscriptions).await
    }

    async fn delivery_status(
        &self,
        task: &DeliveryTask,
    ) -> Result<Option<DeliveryStatus>, Unavailable> {
        self.store.delivery_status(task).await
    }

    async fn claim(&self, msg: &ReceivedTask, lease: Duration) -> Result<Claim, Unavailable> {
        self.store.claim(msg, lease).await
    }

    async fn release(&self, task: &DeliveryTask, lease: &Lease) -> Result<(), Unavailable> {
        EventStore::release(&self.store, task, lease).await
    }

    async fn settle(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
        lease: &Lease,
    ) -> Result<bool, Unavailable> {
        self.store.settle(attempt, status, lease).await
    }

    async fn record_attempt(
        &self,
        attempt: &Attempt,
        status: DeliveryStatus,
    ) -> Result<bool, Unavailable> {
        self.store.record_attempt(attempt, status).await
    }
}

/// A message that `dispatch` queued already claimed, on its way from the
/// outbox worker to the delivery worker.
struct Handoff {
    msg: ReceivedTask,
    claimed_until_ms: i64,
}

/// Routes committed events (the outbox) to delivery tasks.
async fn outbox_worker(
    shared: Arc<Shared>,
    handoff: mpsc::Sender<Handoff>,
    mut stopped: watch::Receiver<bool>,
) {
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
                if route_batch(&shared, entries, &handoff).await {
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
/// marking in one transaction), then hands the new messages to the delivery
/// worker. True when every entry was routed.
async fn route_batch(
    shared: &Shared,
    entries: Vec<OutboxEntry>,
    handoff: &mpsc::Sender<Handoff>,
) -> bool {
    let registry: &dyn Registry = shared.registry.as_ref();
    let mut routes = Vec::with_capacity(entries.len());
    let mut all_routed = true;
    for entry in entries {
        let content = Stored {
            store: &shared.store,
            key: &entry.key,
        };
        match route(registry, &entry.key, &entry.event_type, &content).await {
            Ok(subs) => routes.push((entry, subs)),
            Err(e) => {
                all_routed = false;
                tracing::warn!(source = %entry.key.source, event_id = %entry.key.id, error = %e, "routing failed; will retry");
            }
        }
    }
    let dispatched = match shared
        .store
        .dispatch(routes, shared.options.visibility_timeout)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "queueing routed events failed; will retry");
            return false;
        }
    };
    for (entry, subs) in &dispatched.routed {
        log_routed(&entry.key, &entry.event_type, subs.len());
    }
    let claimed_until_ms = dispatched.claimed_until_ms;
    let mut unsent = Vec::new();
    for msg in dispatched.claimed {
        let sent = handoff
            .send(Handoff {
                msg,
                claimed_until_ms,
            })
            .await;
        // The delivery worker has stopped: give the claim back.
        if let Err(mpsc::error::SendError(h)) = sent {
            unsent.push(h.msg.handle);
        }
    }
    release(&shared.store, &unsent).await;
    all_routed
}

/// Gives claimed messages back to the queue so a restart need not wait for
/// their claims to run out.
async fn release(store: &SqliteStore, handles: &[String]) {
    if let Err(e) = store.release(handles).await {
        tracing::warn!(error = %e, messages = handles.len(), "could not release claimed messages; they come back when their claim runs out");
    }
}

/// A claimed message waiting for a delivery slot.
struct Job {
    msg: ReceivedTask,
    claimed_until_ms: i64,
}

/// The delivery slots, shared between subscriptions: while `n` of them
/// have work, one may hold at most `max / (n + 1)` slots (at least one).
/// The `+ 1` keeps a share free for a subscription that has none yet, so
/// a destination that hangs (each attempt holding its slot until the
/// timeout) holds at most half of them, and another subscription's task
/// starts at once. Jobs over a subscription's share wait here, in order,
/// served round-robin.
struct Slots {
    max: usize,
    running: HashMap<String, usize>,
    waiting: HashMap<String, VecDeque<Job>>,
    /// Subscriptions with waiting jobs, in round-robin order.
    turns: VecDeque<String>,
    total_running: usize,
    total_waiting: usize,
}

impl Slots {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            running: HashMap::new(),
            waiting: HashMap::new(),
            turns: VecDeque::new(),
            total_running: 0,
            total_waiting: 0,
        }
    }

    fn share(&self) -> usize {
        let active = self
            .running
            .keys()
            .chain(
                self.waiting
                    .keys()
                    .filter(|s| !self.running.contains_key(*s)),
            )
            .count();
        (self.max / (active + 1)).max(1)
    }

    fn push(&mut self, job: Job) {
        let sub = job.msg.task.subscription.clone();
        let queue = self.waiting.entry(sub.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(sub);
        }
        queue.push_back(job);
        self.total_waiting += 1;
    }

    /// The next job that may start now, taking its slot.
    fn next(&mut self) -> Option<Job> {
        if self.total_running >= self.max {
            return None;
        }
        let share = self.share();
        for _ in 0..self.turns.len() {
            let sub = self.turns.pop_front()?;
            let running = self.running.get(&sub).copied().unwrap_or(0);
            if running >= share {
                self.turns.push_back(sub);
                continue;
            }
            let queue = self.waiting.get_mut(&sub)?;
            let job = queue.pop_front()?;
            if queue.is_empty() {
                self.waiting.remove(&sub);
            } else {
                self.turns.push_back(sub.clone());
            }
            self.total_waiting -= 1;
            self.total_running += 1;
            *self.running.entry(sub).or_default() += 1;
            return Some(job);
        }
        None
    }

    fn finished(&mut self, sub: &str) {
        if let Some(n) = self.running.get_mut(sub) {
            *n -= 1;
            self.total_running -= 1;
            if *n == 0 {
                self.running.remove(sub);
            }
        }
    }

    /// Subscriptions whose waiting line is full: the queue is read for
    /// the others only, so a backlog for one destination does not keep
    /// another's retries on the queue.
    fn full(&self) -> Vec<String> {
        let share = self.share();
        self.waiting
            .iter()
            .filter(|(_, q)| q.len() >= share)
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn drain(&mut self) -> Vec<Job> {
        self.turns.clear();
        self.total_waiting = 0;
        self.waiting.drain().flat_map(|(_, q)| q).collect()
    }
}

/// Runs delivery attempts: the messages the outbox worker hands over, and
/// whatever becomes visible on the queue (retries, claims that ran out, a
/// previous run's leftovers), received with SQS semantics.
async fn delivery_worker(
    shared: Arc<Shared>,
    mut handoff: mpsc::Receiver<Handoff>,
    mut stopped: watch::Receiver<bool>,
) {
    let notify = shared.store.queue_notifier();
    let mut in_flight: JoinSet<String> = JoinSet::new();
    let max = shared.options.max_in_flight.max(1);
    let mut slots = Slots::new(max);
    // A claim must still cover a whole attempt when it starts: the lease
    // and the bookkeeping after it. An older one is left to run out, and
    // the queue hands the message out again.
    let min_claim_ms = duration_ms(shared.options.deliver.lease);
    // Whether the queue may hold visible messages, and when the next
    // invisible one turns visible: the queue is read only when it can pay.
    let mut poll_queue = true;
    let mut wake_at: Option<tokio::time::Instant> = None;
    loop {
        if *stopped.borrow() {
            break;
        }
        let woken = notify.notified();
        while slots.total_waiting < max {
            match handoff.try_recv() {
                Ok(h) => slots.push(Job {
                    msg: h.msg,
                    claimed_until_ms: h.claimed_until_ms,
                }),
                Err(_) => break,
            }
        }
        start_jobs(&shared, &mut slots, &mut in_flight, min_claim_ms);
        // Receive only with room for a batch: one slot at a time would cost
        // a store write per message.
        let room = max.saturating_sub(slots.total_running + slots.total_waiting);
        if poll_queue && (room >= RECEIVE_BATCH.min(max) || in_flight.is_empty()) && room > 0 {
            let want = room.min(128);
            match shared
                .store
                .receive_except(want, shared.options.visibility_timeout, slots.full())
                .await
            {
                Ok(tasks) => {
                    let got = tasks.len();
                    let claimed_until_ms =
                        now_ms() + duration_ms(shared.options.visibility_timeout);
                    for msg in tasks {
                        slots.push(Job {
                            msg,
                            claimed_until_ms,
                        });
                    }
                    start_jobs(&shared, &mut slots, &mut in_flight, min_claim_ms);
                    if got < want {
                        poll_queue = false;
                        wake_at = next_visible(&shared.store).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "queue receive failed; retrying in 1 s");
                    poll_queue = false;
                    wake_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            }
            if poll_queue && slots.total_running + slots.total_waiting < max {
                continue;
            }
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            Some(h) = handoff.recv(), if slots.total_waiting < max => slots.push(Job {
                msg: h.msg,
                claimed_until_ms: h.claimed_until_ms,
            }),
            _ = woken => poll_queue = true,
            _ = tokio::time::sleep_until(wake_at.unwrap_or(far)) => {
                poll_queue = true;
                wake_at = None;
            }
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(sub) = done {
                    slots.finished(&sub);
                }
            }
            _ = stopped.changed() => {}
        }
    }
    // Graceful stop: hand back what was not started, let what is in flight finish.
    handoff.close();
    let mut unstarted: Vec<String> = slots.drain().into_iter().map(|j| j.msg.handle).collect();
    while let Ok(h) = handoff.try_recv() {
        unstarted.push(h.msg.handle);
    }
    release(&shared.store, &unstarted).await;
    while in_flight.join_next().await.is_some() {}
}

/// Starts every job the slots allow; a job whose claim no longer covers an
/// attempt is dropped (the queue hands its message out again).
fn start_jobs(
    shared: &Arc<Shared>,
    slots: &mut Slots,
    in_flight: &mut JoinSet<String>,
    min_claim_ms: i64,
) {
    while let Some(job) = slots.next() {
        let sub = job.msg.task.subscription.clone();
        if job.claimed_until_ms - now_ms() < min_claim_ms {
            slots.finished(&sub);
            continue;
        }
        in_flight.spawn(deliver_one(shared.clone(), job.msg));
    }
}

/// When to look at the queue again: the earliest `visible_at` of any
/// message (soon, if the store cannot say). A message that turned visible
/// just after the receive that found none is due at once; asking only for
/// messages still invisible would miss it and sleep past it.
async fn next_visible(store: &SqliteStore) -> Option<tokio::time::Instant> {
    let now = tokio::time::Instant::now();
    let earliest = store
        .lookup(|c| {
            c.prepare_cached("SELECT min(visible_at) FROM queue")?
                .query_row([], |r| r.get::<_, Option<i64>>(0))
        })
        .await;
    match earliest {
        Ok(Some(at)) => Some(now + Duration::from_millis((at - now_ms()).max(0) as u64)),
        Ok(None) => None,
        Err(_) => Some(now + Duration::from_secs(1)),
    }
}

/// Whether a queued task is visible now (one indexed read). A spurious
/// yes costs the delivery worker one empty receive.
async fn queue_due(store: &SqliteStore) -> bool {
    store
        .lookup(|c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM queue WHERE visible_at <= ?1)")?
                .query_row([now_ms()], |r| r.get::<_, bool>(0))
        })
        .await
        .unwrap_or(false)
}

async fn deliver_one(shared: Arc<Shared>, msg: ReceivedTask) -> String {
    let timed = Timed {
        transport: shared.transport.as_ref(),
        metrics: &shared.metrics,
        subscription: &msg.task.subscription,
    };
    let ports = DeliverPorts {
        registry: shared.registry.as_ref(),
        store: &shared.store,
        queue: &shared.store,
        transport: &timed,
        gate: shared.gate.as_ref(),
    };
    let result = deliver(&ports, &msg, &shared.options.deliver).await;
    let task = &msg.task;
    shared.metrics.delivery(
        &task.subscription,
        result
            .as_ref()
            .map_or(deliver::UNAVAILABLE, |r| r.outcome.metric()),
    );
    if let Ok(Report {
        circuit: Some(change),
        ..
    }) = result
    {
        shared.metrics.circuit_change(&task.subscription, change);
    }
    match result {
        Ok(r) if r.outcome.disposition() == Disposition::Done => {
            // Closed only once the workers are gone; then the message comes
            // back after its visibility timeout and is skipped as finished.
            let _ = shared.acks.send(msg.handle).await;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(source = %task.source, event_id = %task.event_id, subscription = %task.subscription, error = %e, "delivery step failed; the task comes back after its visibility timeout");
        }
    }
    msg.task.subscription
}

/// Passes an attempt on to the transport and records how long it took
/// (the pipeline's outcome says what happened, not how long it took).
struct Timed<'a> {
    transport: &'a dyn Transport,
    metrics: &'a GatewayMetrics,
    subscription: &'a str,
}

#[async_trait]
impl Transport for Timed<'_> {
    async fn send(&self, req: &OutboundRequest) -> Result<DeliveryResponse, DeliveryError> {
        let clock = Instant::now();
        let result = self.transport.send(req).await;
        self.metrics
            .attempt_latency(self.subscription, clock.elapsed());
        result
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

/// Picks up config changes written by another process (e.g. `apply`),
/// and queue tasks another process added (a replay or a DLQ redrive by the
/// `sluice` CLI): those do not reach this process's queue notifier, and an
/// idle delivery worker would otherwise sleep past them.
async fn config_worker(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let queue = shared.store.queue_notifier();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.options.config_poll) => {}
            _ = stopped.changed() => return,
        }
        if queue_due(&shared.store).await {
            queue.notify_one();
        }
        match shared.registry.reload_if_changed().await {
            Ok(true) => tracing::info!("config changed; reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "config reload failed; the running config stays"),
        }
    }
}

/// Runs the enabled pollers of the registry (in memory; reloaded with the
/// config): each tick, a poll of those due, on its own task, so
/// that a slow app never holds up the others' schedule (a poll still
/// running is claimed: the next tick skips it). What a poll emits is
/// committed through the receive path's store: routed in its commit and
/// handed to the delivery worker. A stop abandons polls in progress; the
/// next start releases their claims (`release_poll_claims`).
async fn poll_worker(
    shared: Arc<Shared>,
    store: RoutingStore,
    fetch: Arc<dyn Fetch>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut polls = JoinSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.options.poll_tick) => {}
            _ = stopped.changed() => return,
        }
        while polls.try_join_next().is_some() {}
        let configs = shared.registry.pollers();
        if configs.is_empty() {
            continue;
        }
        let (shared, store, fetch) = (shared.clone(), store.clone(), fetch.clone());
        polls.spawn(async move {
            let ports = PollPorts {
                states: &shared.store,
                store: &store,
                fetch: fetch.as_ref(),
                secrets: shared.registry.secrets(),
                notify: crate::notify::wanted(shared.registry.as_ref()).await,
            };
            let reports = poll_due(&configs, &Policy::EMBEDDED, &ports, SystemTime::now()).await;
            for report in &reports {
                shared.metrics.poll(report);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use futures::FutureExt;

    use super::*;
    use crate::admin::ports::Origin;
    use crate::config::ConfigFile;
    use crate::local::LocalSecrets;
    use crate::model::Headers;
    use crate::secrets::EnvSecrets;

    const CONFIG: &str = r#"
        [[sources]]
        id = "gh"
        provider = "github"
        secrets = ["env:GH"]
        [[subscriptions]]
        id = "a"
        source = "gh"
        events = ["push"]
        url = "https://example.com/a"
        [[subscriptions]]
        id = "b"
        source = "gh"
        events = ["push", "issues"]
        url = "https://example.com/b"
    "#;

    fn event(id: &str, event_type: &str) -> Event {
        Event {
            source: "gh".to_owned(),
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            received_at_ms: now_ms(),
            expires_at: now_ms() / 1000 + 3600,
            body: Bytes::from_static(b"{}"),
            body_hash: "h".to_owned(),
            content_type: None,
            headers: Headers::from_pairs::<&str, &str>(&[]),
        }
    }

    fn subscriptions(handoffs: &[Handoff]) -> Vec<(&str, &str)> {
        handoffs
            .iter()
            .map(|h| {
                (
                    h.msg.task.event_id.as_str(),
                    h.msg.task.subscription.as_str(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_commit_routes_the_event_and_hands_its_claimed_messages_over_or_queues_them_visible()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("sluice.db")).unwrap();
        let file = ConfigFile::parse(CONFIG).unwrap();
        crate::admin::sync::apply(&store, &file, Origin::File)
            .await
            .unwrap();
        let env = EnvSecrets::from_map(HashMap::from([("GH".to_owned(), "s".to_owned())]));
        let secrets = Arc::new(LocalSecrets::new(env, store.clone()));
        let registry = Arc::new(LocalRegistry::load(store.clone(), secrets).await.unwrap());
        // Room for two handed-over messages, and no worker taking them.
        let (handoff, mut handed) = mpsc::channel(2);
        let claim = Duration::from_secs(60);
        let commits = RoutingStore {
            store: store.clone(),
            registry,
            handoff: Some(handoff),
            claim,
        };
        let take = |handed: &mut mpsc::Receiver<Handoff>| {
            std::iter::from_fn(|| handed.try_recv().ok()).collect::<Vec<_>>()
        };

        // One write: the event, its deliveries and claimed messages; no outbox.
        let before = store.write_batches();
        let c = commits.commit(&event("1", "push")).await.unwrap();
        assert_eq!(c, Commit::Accepted);
        assert_eq!(store.write_batches(), before + 1);
        let got = take(&mut handed);
        assert_eq!(subscriptions(&got), [("1", "a"), ("1", "b")]);
        assert!(got.iter().all(|h| h.claimed_until_ms >= now_ms() + 59_000));
        let key = EventKey::new("gh", "1");
        let both = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(store.routed(&key).await.unwrap(), Some(both.clone()));
        assert!(store.pending_outbox(10).await.unwrap().is_empty());
        assert!(
            store.receive(10, claim).await.unwrap().is_empty(),
            "claimed"
        );
        // The handles are live: an ack deletes the message.
        store.ack(&[got[0].msg.handle.clone()]).await.unwrap();
        assert_eq!(store.queue_depth().await.unwrap(), 1);

        // A duplicate writes and hands over nothing.
        let c = commits.commit(&event("1", "push")).await.unwrap();
        assert_eq!(
            c,
            Commit::Duplicate {
                body_hash: Some("h".to_owned())
            }
        );
        assert!(take(&mut handed).is_empty());
        assert_eq!(store.queue_depth().await.unwrap(), 1);

        // One slot taken: the next two-subscription event finds no room for
        // both, so its messages are queued visible and a receive gets them.
        commits.commit(&event("2", "issues")).await.unwrap();
        commits.commit(&event("3", "push")).await.unwrap();
        let got = take(&mut handed);
        assert_eq!(subscriptions(&got), [("2", "b")]);
        let received = store.receive(10, claim).await.unwrap();
        let tasks: Vec<_> = received
            .iter()
            .map(|m| {
                (
                    m.task.event_id.as_str(),
                    m.task.subscription.as_str(),
                    m.receive_count,
                )
            })
            .collect();
        assert_eq!(tasks, [("3", "a", 1), ("3", "b", 1)]);
        assert_eq!(
            store.routed(&EventKey::new("gh", "3")).await.unwrap(),
            Some(both)
        );

        // A request dropped mid-commit (its client hung up) still commits
        // and hands over: polled once, then dropped, the commit goes on.
        assert!(
            commits
                .commit(&event("5", "issues"))
                .now_or_never()
                .is_none()
        );
        let handed_over = tokio::time::timeout(Duration::from_secs(10), handed.recv())
            .await
            .expect("handed over")
            .expect("open");
        assert_eq!(subscriptions(&[handed_over]), [("5", "b")]);

        // An event nobody wants is committed and routed to nothing.
        commits.commit(&event("4", "star")).await.unwrap();
        assert_eq!(
            store.routed(&EventKey::new("gh", "4")).await.unwrap(),
            Some(vec![])
        );
        assert!(store.pending_outbox(10).await.unwrap().is_empty());
        assert!(take(&mut handed).is_empty());
    }
}
