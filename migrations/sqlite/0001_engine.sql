-- The durable actor engine. Times are milliseconds since the Unix epoch, read from the
-- database clock where leases depend on them.
CREATE TABLE engine_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    prefix     TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE shards (
    id          INTEGER PRIMARY KEY,
    owner       TEXT,
    epoch       BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE actors (
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
CREATE INDEX actors_by_created ON actors (tenant_id, kind, created_at, id);

CREATE TABLE inbox_dedupe (
    key        TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE inbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    grp        TEXT NOT NULL,
    shard      INTEGER NOT NULL,
    dedupe_key TEXT NOT NULL,
    input      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX inbox_by_shard ON inbox (shard, id);

CREATE TABLE outbox (
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
CREATE INDEX outbox_pending ON outbox (shard, id) WHERE status = 'pending';
CREATE INDEX outbox_by_actor ON outbox (tenant_id, kind, actor_id);

CREATE TABLE timers (
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
CREATE INDEX timers_due ON timers (due_at);

CREATE TABLE timeline (
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
CREATE INDEX timeline_by_actor ON timeline (tenant_id, kind, actor_id, id);

CREATE TABLE dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    input      TEXT NOT NULL,
    error      TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dead_letters_by_tenant ON dead_letters (tenant_id, id);
