-- One person, one cadence (issue #14, ADR 0046). `contact_claims` names, per tenant and phone
-- number, the opportunity that holds the contact's cadence. A create claims the number before
-- it submits (insert, or compare-and-set over a closed or long-missing holder), so two leads of
-- one person arriving together cannot both start a cadence, on one instance or several. A claim
-- is never released: a holder in a closing stage is simply replaced by the next create.
-- `tenant_settings` holds what a tenant chose: `duplicate_contacts` = `merge` (the default; a
-- second lead joins the live opportunity) or `skip` (it is recorded, with no cadence).
-- Times are milliseconds since the Unix epoch.
CREATE TABLE contact_claims (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    phone          TEXT NOT NULL,
    opportunity_id TEXT NOT NULL,
    claimed_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);
-- Existing contacts: the newest opportunity of each number holds it (read once from the
-- runtime's lookups, as 0201 wrote them; ADR 0036).
INSERT INTO contact_claims (tenant_id, phone, opportunity_id, claimed_at)
SELECT l.tenant_id, l.key, l.actor_id, l.created_at
FROM lookups l
WHERE l.kind = 'opportunity' AND l.key_type = 'phone'
  AND NOT EXISTS (
    SELECT 1 FROM lookups n
    WHERE n.tenant_id = l.tenant_id AND n.kind = l.kind AND n.key_type = l.key_type
      AND n.key = l.key
      AND (n.created_at > l.created_at OR (n.created_at = l.created_at AND n.actor_id > l.actor_id))
  )
ON CONFLICT DO NOTHING;

CREATE TABLE tenant_settings (
    tenant_id          TEXT PRIMARY KEY REFERENCES tenants (id),
    duplicate_contacts TEXT NOT NULL,
    updated_at         BIGINT NOT NULL
);
