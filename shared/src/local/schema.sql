-- The embedded backend's one SQLite file: events (the dedup records and the
-- outbox), delivery states, the attempt log, the delivery queue and its dead
-- letters. Every statement is idempotent; it runs on each open.

CREATE TABLE IF NOT EXISTS events (
    seq            INTEGER PRIMARY KEY,          -- commit order: the outbox is FIFO.
                                                 -- Only an expired, settled event is ever
                                                 -- deleted, with its deliveries and attempts,
                                                 -- so a reused seq never finds stale rows.
    source         TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,             -- unix seconds: end of the dedup window
    body_hash      TEXT    NOT NULL,
    content_type   TEXT,
    headers        TEXT    NOT NULL,             -- JSON [[name, value], ...]
    body           BLOB    NOT NULL,             -- last, so reading the other columns never
                                                 -- touches a large body's overflow pages
    UNIQUE (source, id)
);
CREATE INDEX IF NOT EXISTS events_expiry ON events(expires_at);

-- Committed events not routed yet. A table of its own, so an event row is
-- written once: routing deletes a small row here instead of rewriting the
-- event (body and all) to clear a flag. Routed events are the ones not
-- here; their deliveries rows say where they went (none: matched nothing).
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY                      -- events.seq
);

-- Deliveries and attempts hang off the event's seq, not its (source, id):
-- seq grows with time, so a batch of writes lands on the same few pages at
-- the right edge of each index instead of one random page per event (fewer
-- WAL frames per commit).
CREATE TABLE IF NOT EXISTS deliveries (
    event_seq          INTEGER NOT NULL,          -- events.seq
    subscription       TEXT    NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER,
    updated_at_ms      INTEGER NOT NULL,
    PRIMARY KEY (event_seq, subscription)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS attempts (
    seq                INTEGER PRIMARY KEY,
    event_seq          INTEGER NOT NULL,          -- events.seq
    subscription       TEXT    NOT NULL,
    attempt            INTEGER NOT NULL,
    started_at_ms      INTEGER NOT NULL,
    latency_ms         INTEGER NOT NULL,
    status_code        INTEGER,
    error              TEXT,
    response_snippet   TEXT,
    next_attempt_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts(event_seq);

-- AUTOINCREMENT: ids are never reused, so a stale receipt handle can never
-- name a newer message.
CREATE TABLE IF NOT EXISTS queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    subscription  TEXT    NOT NULL,
    visible_at    INTEGER NOT NULL,              -- unix ms
    receive_count INTEGER NOT NULL DEFAULT 0,
    sent_at_ms    INTEGER NOT NULL,
    held          INTEGER NOT NULL DEFAULT 0,    -- 0: waits for visible_at (new, or a retry);
                                                 -- 1: claimed by a worker until visible_at;
                                                 -- 2: parked: its subscription is paused
    UNIQUE (source, event_id, subscription)      -- a re-run enqueue does not double-queue
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue(visible_at);

CREATE TABLE IF NOT EXISTS dead_letters (
    seq           INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    subscription  TEXT    NOT NULL,
    receive_count INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    at_ms         INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS disabled_subscriptions (
    id             TEXT    PRIMARY KEY,
    disabled_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- The admin API's tables (local/admin.rs).

-- Sources, pollers and subscriptions: the JSON of their config-file entries.
-- origin 'file': applied from the config file at start-up, read-only
-- through the API; 'api': created through the API.
CREATE TABLE IF NOT EXISTS config (
    kind          TEXT    NOT NULL CHECK (kind IN ('source', 'poller', 'subscription')),
    id            TEXT    NOT NULL,
    origin        TEXT    NOT NULL CHECK (origin IN ('file', 'api')),
    enabled       INTEGER NOT NULL DEFAULT 1,
    config        TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

-- Bumped by every config change, whoever makes it, so a running gateway
-- notices changes written by another process. The row appears with the
-- first change (no write here: this file runs on every open, also beside
-- a running gateway).
CREATE TABLE IF NOT EXISTS config_version (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS config_inserted AFTER INSERT ON config BEGIN
    INSERT OR REPLACE INTO config_version (one, version)
    VALUES (1, coalesce((SELECT version FROM config_version WHERE one = 1), 0) + 1);
END;
CREATE TRIGGER IF NOT EXISTS config_updated AFTER UPDATE ON config BEGIN
    INSERT OR REPLACE INTO config_version (one, version)
    VALUES (1, coalesce((SELECT version FROM config_version WHERE one = 1), 0) + 1);
END;
CREATE TRIGGER IF NOT EXISTS config_deleted AFTER DELETE ON config BEGIN
    INSERT OR REPLACE INTO config_version (one, version)
    VALUES (1, coalesce((SELECT version FROM config_version WHERE one = 1), 0) + 1);
END;

-- Secrets created through the API (db:NAME references): generated signing
-- secrets, source secrets given by value.
CREATE TABLE IF NOT EXISTS secrets (
    name          TEXT    PRIMARY KEY,
    value         TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Replays: a replay is an event row of its own (id `{original}#replay-{n}`),
-- linked here to the original's id (same source).
CREATE TABLE IF NOT EXISTS replays (
    source        TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    replay_of     TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replays_of ON replays(source, replay_of);

-- Pollers' state (poll/state.rs): the PollerState JSON, and the claim and
-- schedule as columns for the claim's condition.
CREATE TABLE IF NOT EXISTS poller_state (
    id              TEXT    PRIMARY KEY,
    state           TEXT    NOT NULL,            -- JSON
    next_poll_at_ms INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until_ms  INTEGER
) WITHOUT ROWID;

-- Delivery controls (gate/): one subscription's GateState JSON, saved when
-- its circuit changes, so an open circuit stays open across a restart and
-- the CLI can show it. Rate and in-flight counts live in the process.
CREATE TABLE IF NOT EXISTS gate_state (
    subscription  TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,              -- JSON
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
