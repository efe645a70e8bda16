-- Names under which an actor can be found (a contact's phone number → its opportunities),
-- written by the transition that gives the name, in its commit: a crash cannot leave an actor
-- that exists but cannot be found. One name may lead to several actors; the newest is first.
CREATE TABLE lookups (
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    key_type   TEXT NOT NULL,
    key        TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, key_type, key, actor_id)
);
