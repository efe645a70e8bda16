-- Snooze (issue #14, ADR 0047 addendum): a rep takes a lead out of the team's queue until a
-- time ("back at 15:00"). One row per opportunity, replaced by the next snooze; it needs no
-- clean-up, because a row whose `until_at` has passed hides nothing (the queue compares it with
-- the clock) and an un-snooze deletes it. Written with its audit entry in one transaction.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE queue_snoozes (
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    opportunity_id UUID NOT NULL,
    until_at       BIGINT NOT NULL,
    by_name        TEXT NOT NULL,
    reason         TEXT,
    snoozed_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, opportunity_id)
);
