-- An actor's effects leave in commit order per channel (issue #13, item 7): the claim starts an
-- effect only when no earlier effect of the same actor and channel is pending or in flight, a
-- check it makes for every row it considers. This index answers it from one short range read:
-- only open effects are in it (a row leaves when its result is recorded, held or canceled), and
-- the claim's `status IN ('pending', 'inflight')` repeats the predicate literally so both
-- planners use it. It costs each effect two index entries (insert, claim).
CREATE INDEX IF NOT EXISTS outbox_open_by_actor ON outbox (tenant_id, actor_id, channel, id)
    WHERE status IN ('pending', 'inflight');
