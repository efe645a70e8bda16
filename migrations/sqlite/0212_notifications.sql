-- Notifications to people (issue #14): escalation notices reach reps by SMS and by email.
-- A rep's email address (NULL: notices by SMS only).
ALTER TABLE reps ADD COLUMN email TEXT;

-- A tenant's SMTP server: `tls` is `none`, `starttls` or `tls`; the password, when there is
-- one, sealed like the Twilio auth token (`key_id` names the keyring's key, `sealed` is
-- base64(nonce || ciphertext)); both NULL without a password. Times are milliseconds since the
-- Unix epoch.
CREATE TABLE smtp_settings (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    host       TEXT NOT NULL,
    port       INTEGER NOT NULL,
    tls        TEXT NOT NULL,
    username   TEXT,
    key_id     TEXT,
    sealed     TEXT,
    from_email TEXT NOT NULL,
    from_name  TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);
