-- Email as a lead channel (issue #14, ADR 0049): addresses the tenant may not email again, by
-- any opportunity. An unsubscribe (CAN-SPAM: honoured for good, not only by the opportunity whose
-- link was clicked) or a hard bounce writes the lower-cased address here; the sender checks it
-- before every email. Times are milliseconds since the Unix epoch.
CREATE TABLE email_suppressions (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, address)
);
