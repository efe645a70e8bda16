-- Reps sign in as themselves, and people can be deactivated (issue #14, ADR 0042).

-- A deactivated principal: set when it was deactivated, NULL while it is active. Its keys and
-- sessions are revoked in the same transaction; a key of a deactivated principal never
-- authenticates, and offers never ring it.
ALTER TABLE principals ADD COLUMN deactivated_at BIGINT;

-- A console session is opened either with an API key (`key_prefix`: revoking the key ends it)
-- or by a magic link for a principal (`principal_id`: deactivating the principal ends it).
-- SQLite cannot drop a NOT NULL: the table is made anew and its rows copied.
CREATE TABLE console_sessions_new (
    hash         TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    key_prefix   TEXT REFERENCES api_keys (prefix),
    principal_id TEXT REFERENCES principals (id),
    csrf         TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
INSERT INTO console_sessions_new (hash, tenant_id, key_prefix, csrf, expires_at, created_at)
    SELECT hash, tenant_id, key_prefix, csrf, expires_at, created_at FROM console_sessions;
DROP TABLE console_sessions;
ALTER TABLE console_sessions_new RENAME TO console_sessions;
CREATE INDEX console_sessions_by_principal ON console_sessions (principal_id)
    WHERE principal_id IS NOT NULL;

-- A sign-in link sent by email: only the SHA-256 of its token is kept. Used once (`used_at`),
-- within 15 minutes of being sent (`expires_at`). Times are milliseconds since the Unix epoch.
CREATE TABLE magic_links (
    hash         TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    principal_id TEXT NOT NULL REFERENCES principals (id),
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX magic_links_by_principal ON magic_links (principal_id);

-- Every request for a link, whether or not its address belongs to anyone (so the limit answers
-- alike for both): `scope` is the tenant's id (or the tenant as typed, when it names none),
-- `email` the address lowercased. Rows older than the window are removed as requests come.
CREATE TABLE magic_link_requests (
    scope TEXT NOT NULL,
    email TEXT NOT NULL,
    at    BIGINT NOT NULL
);
CREATE INDEX magic_link_requests_by_address ON magic_link_requests (scope, email, at);
CREATE INDEX magic_link_requests_by_time ON magic_link_requests (at);
