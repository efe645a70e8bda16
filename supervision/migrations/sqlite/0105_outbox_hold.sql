-- A pause or an opt-out that commits while one of the group's effects is in flight cannot
-- change that row's status (the completion compares-and-sets on 'inflight'), so it leaves its
-- fate here: 'held' or 'canceled'. An effect that comes back unsent takes it instead of
-- 'pending'; a resume clears a 'held' one. Found by the fault simulation (seed 100492: a lead
-- dialled three seconds after its STOP).
ALTER TABLE outbox ADD COLUMN hold TEXT;
