-- The contact index moves into the runtime's lookups, which the transition that creates an
-- opportunity writes in its own commit (before, a separate write after the commit could be
-- lost to a crash, and a lead whose index row was missing had its STOP replies dropped as
-- from an unknown sender). Every opportunity's phone is indexed from its checkpoint, which
-- also repairs those gaps; then the old table goes.
--
-- The one place the product's SQL names a runtime table: a data move that runs once, at the
-- version that made the runtime own this data (ADR 0036).
INSERT INTO lookups (tenant_id, kind, key_type, key, actor_id, created_at)
SELECT tenant_id, 'opportunity', 'phone', json_extract(state, '$.contact.phone'), id, created_at
FROM actors
WHERE kind = 'opportunity' AND json_extract(state, '$.contact.phone') IS NOT NULL
ON CONFLICT DO NOTHING;

DROP TABLE IF EXISTS contact_index;
