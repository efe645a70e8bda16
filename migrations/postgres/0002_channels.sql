-- Per-tenant channel credentials (the auth token sealed with an AEAD key from the keyring), the
-- tenant-managed do-not-call list, an index for holding a group's outbox (pause, close), and
-- page fill factors for the tables rewritten on every transition.
CREATE TABLE channel_credentials (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    channel     TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    from_number TEXT NOT NULL,
    base_url    TEXT,
    key_id      TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

CREATE TABLE dnc (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    phone      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);

CREATE INDEX outbox_by_group ON outbox (tenant_id, grp);

-- Checkpoints, effects and timers are rewritten many times each: leave room in every page so
-- those updates stay on the page (HOT) and do not bloat the indexes.
ALTER TABLE actors SET (fillfactor = 70);
ALTER TABLE outbox SET (fillfactor = 80);
ALTER TABLE timers SET (fillfactor = 80);
