-- The operator control plane: teams, principals, scoped API keys, the audit log, which team an
-- opportunity is bound to, and console sessions.

-- Keys created before roles existed were each a tenant's only key: they stay owners.
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT 'tenant owner';
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'owner';
ALTER TABLE api_keys ADD COLUMN team_id UUID;
ALTER TABLE api_keys ADD COLUMN principal_id UUID;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE teams (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    -- How many opportunities round robin has assigned: the next goes to member rr % members.
    rr_next    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE principals (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    role       TEXT NOT NULL,
    team_id    UUID REFERENCES teams (id),
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE opportunity_teams (
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    opportunity_id UUID NOT NULL,
    team_id        UUID NOT NULL REFERENCES teams (id),
    PRIMARY KEY (tenant_id, opportunity_id)
);
CREATE INDEX opportunity_teams_by_team ON opportunity_teams (tenant_id, team_id);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    at          BIGINT NOT NULL,
    principal   TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    reason      TEXT,
    outcome     TEXT NOT NULL,
    before      JSONB,
    after       JSONB
);
CREATE INDEX audit_by_tenant ON audit_log (tenant_id, id);

-- Append-only: the database itself refuses to change or remove an entry.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE console_sessions (
    hash       TEXT PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    key_prefix TEXT NOT NULL REFERENCES api_keys (prefix),
    csrf       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
