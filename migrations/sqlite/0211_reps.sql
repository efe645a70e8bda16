-- Reps and their availability (issue #14). A rep is a principal of kind `user` with a phone the
-- call flow rings, a time zone its working hours are read in (`working_hours`, JSON text
-- `{"days": [...], "from": "HH:MM", "to": "HH:MM"}`; NULL: always), a status set by hand
-- (`available`, `away`, `offline`: `busy` is derived from live legs, never stored) and the most
-- calls it takes at once. `last_offered_at` orders the round robin: the rep offered longest ago
-- is rung first. Times are milliseconds since the Unix epoch.
CREATE TABLE reps (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    principal_id    TEXT NOT NULL REFERENCES principals (id),
    phone           TEXT NOT NULL,
    time_zone       TEXT NOT NULL,
    working_hours   TEXT,
    status          TEXT NOT NULL,
    max_calls       INTEGER NOT NULL,
    last_offered_at BIGINT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, principal_id)
);

-- One row per rep a call was offered to: its leg is live until `ended_at` is set (its completed
-- callback or the Dial's end). A leg whose end was lost stops counting four hours after its
-- offer (the query says so), so a missed callback cannot keep a rep busy for ever.
CREATE TABLE rep_legs (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    call_id      TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    offered_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    PRIMARY KEY (tenant_id, call_id, principal_id)
);
-- A rep's live legs, counted on every offer and every list: only the open ones are indexed.
CREATE INDEX rep_legs_live ON rep_legs (tenant_id, principal_id, offered_at)
    WHERE ended_at IS NULL;

-- How a team's calls ring its reps: `sequential` (one at a time, round robin) or `simultaneous`
-- (several at once, the first to answer takes it), each rep rung for `ring_timeout_seconds`.
ALTER TABLE teams ADD COLUMN ring_strategy TEXT NOT NULL DEFAULT 'sequential';
ALTER TABLE teams ADD COLUMN ring_timeout_seconds INTEGER NOT NULL DEFAULT 20;
