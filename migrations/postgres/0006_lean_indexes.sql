-- Fewer index writes per transition (ADR 0028). Every effect is written three times (insert,
-- claim, completion) and none of those updates is HOT, so each write lands in every index whose
-- predicate the new row version meets; each timeline entry landed in two indexes.
--
-- outbox_by_actor served only reads made by tests. The group index exists for pause, resume and
-- close, which touch only open effects, so it now holds only those: a claimed or finished effect
-- no longer adds an entry to it.
DROP INDEX outbox_by_actor;
DROP INDEX outbox_by_group;
CREATE INDEX outbox_open_by_group ON outbox (tenant_id, grp) WHERE status IN ('pending', 'held');

-- Every timeline read is by actor, oldest or newest first: that index becomes the primary key
-- and the single-column one goes.
ALTER TABLE timeline DROP CONSTRAINT timeline_pkey;
ALTER TABLE timeline ADD PRIMARY KEY (tenant_id, kind, actor_id, id);
DROP INDEX timeline_by_actor;

-- Inputs are read per shard in id order and consumed by the commit that knows their shard: the
-- per-shard index becomes the primary key and the id-only one goes.
ALTER TABLE inbox DROP CONSTRAINT inbox_pkey;
ALTER TABLE inbox ADD PRIMARY KEY (shard, id);
DROP INDEX inbox_by_shard;
