-- The durable actor engine. Times are milliseconds since the Unix epoch, read from the
-- database clock where leases depend on them.
CREATE TABLE engine_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    prefix     TEXT PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE shards (
    id          INT PRIMARY KEY,
    owner       TEXT,
    epoch       BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE actors (
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    id         UUID NOT NULL,
    grp        UUID NOT NULL,
    shard      INT NOT NULL,
    version    BIGINT NOT NULL,
    state      JSONB NOT NULL,
    status     TEXT NOT NULL,
    paused     BOOLEAN NOT NULL,
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
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID NOT NULL,
    grp        UUID NOT NULL,
    shard      INT NOT NULL,
    dedupe_key TEXT NOT NULL,
    input      JSONB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX inbox_by_shard ON inbox (shard, id);

CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID NOT NULL,
    grp        UUID NOT NULL,
    shard      INT NOT NULL,
    idem_key   TEXT NOT NULL UNIQUE,
    channel    TEXT NOT NULL,
    payload    JSONB NOT NULL,
    status     TEXT NOT NULL,
    attempts   INT NOT NULL DEFAULT 0,
    result     JSONB,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_pending ON outbox (shard, id) WHERE status = 'pending';
CREATE INDEX outbox_by_actor ON outbox (tenant_id, kind, actor_id);

CREATE TABLE timers (
    tenant_id UUID NOT NULL,
    kind      TEXT NOT NULL,
    actor_id  UUID NOT NULL,
    name      TEXT NOT NULL,
    grp       UUID NOT NULL,
    shard     INT NOT NULL,
    due_at    BIGINT NOT NULL,
    input     JSONB NOT NULL,
    PRIMARY KEY (tenant_id, kind, actor_id, name)
);
CREATE INDEX timers_due ON timers (shard, due_at);

CREATE TABLE timeline (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID NOT NULL,
    version    BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    entry_kind TEXT NOT NULL,
    cause      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    data       JSONB NOT NULL
);
CREATE INDEX timeline_by_actor ON timeline (tenant_id, kind, actor_id, id);

CREATE TABLE dead_letters (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID NOT NULL,
    input      JSONB NOT NULL,
    error      TEXT NOT NULL,
    attempts   INT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dead_letters_by_tenant ON dead_letters (tenant_id, id);
