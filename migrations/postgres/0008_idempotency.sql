-- Idempotency-Key on API commands: the first answer to a key is kept for 24 hours, per tenant,
-- and any instance replays it. A row without a status is a request still running (or one whose
-- instance died: taken over after a minute).
CREATE TABLE idempotency_keys (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
