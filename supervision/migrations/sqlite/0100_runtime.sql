-- The durable actor runtime's own tables, and only those (the product's are in the product's
-- migrations, run after these). Times are milliseconds since the Unix epoch.
--
-- A baseline: databases made before the runtime and the product kept separate migrations
-- (versions 1 to 8, applied by one migrator) already hold these tables in exactly this shape,
-- so every statement is written to be a no-op there (IF NOT EXISTS). Store::migrate refuses a
-- database whose old history stops before version 8 (ADR 0036).

CREATE TABLE IF NOT EXISTS engine_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS instances (
    id            TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    shared_limits BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE IF NOT EXISTS shards (
    id          INTEGER PRIMARY KEY,
    owner       TEXT,
    epoch       BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS actors (
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    grp        TEXT NOT NULL,
    shard      INTEGER NOT NULL,
    version    BIGINT NOT NULL,
    state      TEXT NOT NULL,
    status     TEXT NOT NULL,
    paused     INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);
CREATE INDEX IF NOT EXISTS actors_by_created ON actors (tenant_id, kind, created_at, id);

CREATE TABLE IF NOT EXISTS inbox_dedupe (
    key        TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS inbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    grp        TEXT NOT NULL,
    shard      INTEGER NOT NULL,
    dedupe_key TEXT NOT NULL,
    input      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    reply      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS inbox_by_shard ON inbox (shard, id);

CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    grp        TEXT NOT NULL,
    shard      INTEGER NOT NULL,
    idem_key   TEXT NOT NULL UNIQUE,
    channel    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    result     TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (shard, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_open_by_group ON outbox (tenant_id, grp)
    WHERE status IN ('pending', 'held');

CREATE TABLE IF NOT EXISTS timers (
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    actor_id  TEXT NOT NULL,
    name      TEXT NOT NULL,
    grp       TEXT NOT NULL,
    shard     INTEGER NOT NULL,
    due_at    BIGINT NOT NULL,
    input     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, actor_id, name)
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at);

CREATE TABLE IF NOT EXISTS timeline (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    entry_kind TEXT NOT NULL,
    cause      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_by_actor ON timeline (tenant_id, kind, actor_id, id);

CREATE TABLE IF NOT EXISTS dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    input      TEXT NOT NULL,
    error      TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_tenant ON dead_letters (tenant_id, id);

CREATE TABLE IF NOT EXISTS replies (
    inbox_id   INTEGER PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
