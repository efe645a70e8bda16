-- Fewer index writes per effect (ADR 0028): outbox_by_actor served only reads made by tests, and
-- the group index (pause, resume, close) needs only open effects. The timeline's key is SQLite's
-- rowid, so it keeps its one index.
DROP INDEX outbox_by_actor;
DROP INDEX outbox_by_group;
CREATE INDEX outbox_open_by_group ON outbox (tenant_id, grp) WHERE status IN ('pending', 'held');
