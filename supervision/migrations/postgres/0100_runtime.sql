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
    -- Which send limiter the instance uses: a second instance needs limits shared (Redis).
    shared_limits BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE IF NOT EXISTS shards (
    id          INT PRIMARY KEY,
    owner       TEXT,
    epoch       BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS actors (
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
CREATE INDEX IF NOT EXISTS actors_by_created ON actors (tenant_id, kind, created_at, id);

CREATE TABLE IF NOT EXISTS inbox_dedupe (
    key        TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Inputs are read per shard in id order and consumed by the commit that knows their shard.
-- `reply`: the caller waits on another instance; the owner writes the answer to `replies` in
-- the transaction that applies the input.
CREATE TABLE IF NOT EXISTS inbox (
    id         BIGSERIAL,
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID NOT NULL,
    grp        UUID NOT NULL,
    shard      INT NOT NULL,
    dedupe_key TEXT NOT NULL,
    input      JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    reply      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (shard, id)
);

CREATE TABLE IF NOT EXISTS outbox (
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
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (shard, id) WHERE status = 'pending';
-- Pause, resume and close touch only a group's open effects (ADR 0028).
CREATE INDEX IF NOT EXISTS outbox_open_by_group ON outbox (tenant_id, grp)
    WHERE status IN ('pending', 'held');

CREATE TABLE IF NOT EXISTS timers (
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
CREATE INDEX IF NOT EXISTS timers_due ON timers (shard, due_at);

-- Every timeline read is by actor, oldest or newest first: that is the primary key.
CREATE TABLE IF NOT EXISTS timeline (
    id         BIGSERIAL,
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID NOT NULL,
    version    BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    entry_kind TEXT NOT NULL,
    cause      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (tenant_id, kind, actor_id, id)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID NOT NULL,
    input      JSONB NOT NULL,
    error      TEXT NOT NULL,
    attempts   INT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_tenant ON dead_letters (tenant_id, id);

CREATE TABLE IF NOT EXISTS replies (
    inbox_id   BIGINT PRIMARY KEY,
    body       JSONB NOT NULL,
    created_at BIGINT NOT NULL
);

-- Checkpoints, effects and timers are rewritten many times each: leave room in every page so
-- those updates stay on the page (HOT) and do not bloat the indexes.
ALTER TABLE actors SET (fillfactor = 70);
ALTER TABLE outbox SET (fillfactor = 80);
ALTER TABLE timers SET (fillfactor = 80);
