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
-- Existing contacts: the number's live opportunity holds it (the newest of them, should there
-- be several), else its newest closed one (read once from the runtime's lookups and actors, as
-- 0201 did; ADR 0036). The same text on both backends.
INSERT INTO contact_claims (tenant_id, phone, opportunity_id, claimed_at)
SELECT tenant_id, phone, actor_id, created_at
FROM (
    SELECT l.tenant_id, l.key AS phone, l.actor_id, l.created_at,
           ROW_NUMBER() OVER (
               PARTITION BY l.tenant_id, l.key
               ORDER BY CASE WHEN a.status IN ('won', 'lost', 'do_not_contact') THEN 1 ELSE 0 END,
                        l.created_at DESC, l.actor_id
           ) AS nth
    FROM lookups l
    LEFT JOIN actors a ON a.tenant_id = l.tenant_id AND a.kind = l.kind AND a.id = l.actor_id
    WHERE l.kind = 'opportunity' AND l.key_type = 'phone'
) ranked
WHERE nth = 1
ON CONFLICT DO NOTHING;

CREATE TABLE tenant_settings (
    tenant_id          UUID PRIMARY KEY REFERENCES tenants (id),
    duplicate_contacts TEXT NOT NULL,
    updated_at         BIGINT NOT NULL
);
