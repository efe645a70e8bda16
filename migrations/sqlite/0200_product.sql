-- The product's own tables: tenants and their keys, the operator control plane, channel
-- credentials, the do-not-call list, idempotency keys. Run after the runtime's migrations
-- (supervision/migrations), whose tables no statement here names. Times are milliseconds since
-- the Unix epoch.
--
-- A baseline: databases made before the runtime and the product kept separate migrations
-- (versions 1 to 8) already hold these tables in exactly this shape, so every statement is a
-- no-op there (IF NOT EXISTS). See ADR 0036.

CREATE TABLE IF NOT EXISTS tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A key is `nxk_<prefix>_<secret>`: the prefix finds the row, only the secret's SHA-256 is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    prefix       TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    hash         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    name         TEXT NOT NULL DEFAULT 'tenant owner',
    role         TEXT NOT NULL DEFAULT 'owner',
    team_id      TEXT,
    principal_id TEXT,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant_id, created_at);

-- Per-tenant channel credentials, the auth token sealed with an AEAD key from the keyring.
CREATE TABLE IF NOT EXISTS channel_credentials (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    channel     TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    from_number TEXT NOT NULL,
    base_url    TEXT,
    key_id      TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

CREATE TABLE IF NOT EXISTS dnc (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    phone      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);

CREATE TABLE IF NOT EXISTS teams (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    -- How many opportunities round robin has assigned: the next goes to member rr % members.
    rr_next    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS principals (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    role       TEXT NOT NULL,
    team_id    TEXT REFERENCES teams (id),
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS opportunity_teams (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    opportunity_id TEXT NOT NULL,
    team_id        TEXT NOT NULL REFERENCES teams (id),
    PRIMARY KEY (tenant_id, opportunity_id)
);
CREATE INDEX IF NOT EXISTS opportunity_teams_by_team ON opportunity_teams (tenant_id, team_id);

-- `key_prefix` names the key behind the action (never its secret); older entries have none.
CREATE TABLE IF NOT EXISTS audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    at          BIGINT NOT NULL,
    principal   TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    reason      TEXT,
    outcome     TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    key_prefix  TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit_log (tenant_id, id);

-- Append-only: the database itself refuses to change or remove an entry.
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE IF NOT EXISTS console_sessions (
    hash       TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    key_prefix TEXT NOT NULL REFERENCES api_keys (prefix),
    csrf       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Idempotency-Key on API commands: the first answer to a key is kept for 24 hours, per tenant,
-- and any instance replays it. A row without a status is a request still running (or one whose
-- instance died: taken over after a minute).
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);
