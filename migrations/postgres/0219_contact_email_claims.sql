-- One person, one cadence, matched by phone, then email (issue #14, ADR 0046 addendum).
-- `contact_email_claims` names, per tenant and lower-cased address, the opportunity that holds
-- the contact's cadence, exactly as `contact_claims` does per phone: a create takes the
-- address after the phone (insert, or compare-and-set over a closed or long-missing holder), so
-- two leads of one person sharing an address cannot both start a cadence. A lead whose phone is
-- free but whose address a live opportunity holds joins that one and gives its phone back.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE contact_email_claims (
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    address        TEXT NOT NULL,
    opportunity_id UUID NOT NULL,
    claimed_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, address)
);
-- Existing contacts: the address's live opportunity holds it (the newest, should there be
-- several; never a skipped duplicate), else its newest closed one, read once from the
-- runtime's actors as 0215 did. SQLite's lower() folds ASCII only: an existing address with
-- other capitals is claimed under a key no new lead computes, so it is not matched by email.
INSERT INTO contact_email_claims (tenant_id, address, opportunity_id, claimed_at)
SELECT tenant_id, address, id, created_at
FROM (
    SELECT a.tenant_id, lower(trim(a.state->'contact'->>'email')) AS address, a.id, a.created_at,
           ROW_NUMBER() OVER (
               PARTITION BY a.tenant_id, lower(trim(a.state->'contact'->>'email'))
               ORDER BY CASE WHEN a.status IN ('won', 'lost', 'do_not_contact') THEN 1 ELSE 0 END,
                        a.created_at DESC, a.id
           ) AS nth
    FROM actors a
    WHERE a.kind = 'opportunity' AND a.state->'contact'->>'email' IS NOT NULL AND a.state->>'duplicate_of' IS NULL
) ranked
WHERE nth = 1
ON CONFLICT DO NOTHING;
