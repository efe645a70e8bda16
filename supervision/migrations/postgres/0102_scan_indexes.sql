-- Two scans that read whole tables without an index (issue #13, item 10):
--
-- The orphan check (outbox/orphans.rs), now also run periodically on every held shard, looks for
-- effects claimed longer ago than orphan_after: only claimed rows are in this index, and a row
-- leaves it when its result is recorded.
CREATE INDEX IF NOT EXISTS outbox_inflight ON outbox (shard, updated_at) WHERE status = 'inflight';

-- The dedupe prune deletes keys older than the retention: by age.
CREATE INDEX IF NOT EXISTS inbox_dedupe_by_age ON inbox_dedupe (created_at);
