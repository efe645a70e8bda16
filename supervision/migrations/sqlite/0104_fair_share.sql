-- Fair share of outbox and inbox work among tenants (issue #13, item 6): a claim, and an inbox
-- read, take the oldest few rows of every tenant with work in a shard before filling up oldest
-- first, so one tenant's import of thousands of leads does not hold another tenant's first dial
-- behind all of it. These indexes answer both steps without reading the backlog: the tenants
-- with work in a shard are found by skipping from one tenant to the next (one short read each),
-- and each tenant's oldest rows are a range of the same index. The outbox's is partial, as
-- `outbox_pending` is: a row leaves it when claimed. It costs each effect and each input one
-- more index entry.
CREATE INDEX IF NOT EXISTS outbox_pending_by_tenant ON outbox (shard, tenant_id, id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS inbox_by_tenant ON inbox (shard, tenant_id, id);
