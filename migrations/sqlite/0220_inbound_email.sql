-- Inbound email (issue #14, ADR 0052): how a tenant's mail relay reaches us. `signing_key` is
-- the relay's webhook signing key (Mailgun's HTTP webhook signing key), sealed like the Twilio
-- auth token (`key_id` names the keyring's key, `sealed` is base64(nonce || ciphertext)).
-- `reply_domain`, when set, is a domain whose mail the relay posts to us: every email to a lead
-- then carries `Reply-To: reply+<token>@<reply_domain>`. Times are milliseconds since the Unix
-- epoch.
CREATE TABLE inbound_email_settings (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    provider     TEXT NOT NULL,
    reply_domain TEXT,
    key_id       TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);
