-- One person, one cadence (issue #14, ADR 0046). `contact_claims` names, per tenant and phone
-- number, the opportunity that holds the contact's cadence. A create claims the number before
-- it submits (insert, or compare-and-set over a closed or long-missing holder), so two leads of
-- one person arriving together cannot both start a cadence, on one instance or several. A claim
-- is never released: a holder in a closing stage is simply replaced by the next create.
-- `tenant_settings` holds what a tenant chose: `duplicate_contacts` = `merge` (the default; a
-- second lead joins the live opportunity) or `skip` (it is recorded, with no cadence).
-- Times are milliseconds since the Unix epoch.
CREATE TABLE contact_claims (
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    phone          TEXT NOT NULL,
    opportunity_id UUID NOT NULL,
    claimed_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone)
);
-- Existing contacts: the newest opportunity of each number holds it (read once from the
-- runtime's lookups, as 0201 wrote them; ADR 0036).
INSERT INTO contact_claims (tenant_id, phone, opportunity_id, claimed_at)
SELECT DISTINCT ON (tenant_id, key) tenant_id, key, actor_id, created_at
FROM lookups
WHERE kind = 'opportunity' AND key_type = 'phone'
ORDER BY tenant_id, key, created_at DESC, actor_id
ON CONFLICT DO NOTHING;

CREATE TABLE tenant_settings (
    tenant_id          UUID PRIMARY KEY REFERENCES tenants (id),
    duplicate_contacts TEXT NOT NULL,
    updated_at         BIGINT NOT NULL
);
