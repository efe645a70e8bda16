-- Line-type lookups (ADR 0035): the tenant's switch on its Twilio account (off by default), and
-- what the carrier's lookup answered per number, so that a tenant pays for a number once.
ALTER TABLE channel_credentials ADD COLUMN line_type_lookup INTEGER NOT NULL DEFAULT 0;

CREATE TABLE line_types (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    phone        TEXT NOT NULL,
    line_type    TEXT NOT NULL,
    carrier      TEXT,
    looked_up_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);
