-- Reps sign in as themselves, and people can be deactivated (issue #14, ADR 0042).

-- A deactivated principal: set when it was deactivated, NULL while it is active. Its keys and
-- sessions are revoked in the same transaction; a key of a deactivated principal never
-- authenticates, and offers never ring it.
ALTER TABLE principals ADD COLUMN deactivated_at BIGINT;

-- A console session is opened either with an API key (`key_prefix`: revoking the key ends it)
-- or by a magic link for a principal (`principal_id`: deactivating the principal ends it).
ALTER TABLE console_sessions ALTER COLUMN key_prefix DROP NOT NULL;
ALTER TABLE console_sessions ADD COLUMN principal_id UUID REFERENCES principals (id);
CREATE INDEX console_sessions_by_principal ON console_sessions (principal_id)
    WHERE principal_id IS NOT NULL;

-- A sign-in link sent by email: only the SHA-256 of its token is kept. Used once (`used_at`),
-- within 15 minutes of being sent (`expires_at`). Times are milliseconds since the Unix epoch.
CREATE TABLE magic_links (
    hash         TEXT PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    principal_id UUID NOT NULL REFERENCES principals (id),
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
