-- The tenant's numbers (issue #14): a pool per team (`team_id`) or tenant-wide (NULL), each
-- E.164, with an optional label. A US or Canadian number's area code and state (or province)
-- are derived when it is added (`neuronx_actors::domain::area_codes`) and stored, so the
-- caller id choice reads them without parsing: a lead is dialled and texted from a number of
-- its opportunity's team in its area code, else in its state, else from the pool (ADR 0043).
-- Inbound texts are matched by the number they reached. A number belongs to one tenant's pool
-- at most once; another tenant may list the same digits without either seeing the other's.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE phone_numbers (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    number     TEXT NOT NULL,
    team_id    UUID REFERENCES teams (id),
    label      TEXT,
    area_code  INTEGER,
    state      TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
-- A dial or text reads its opportunity's team's numbers and the tenant-wide ones.
CREATE INDEX phone_numbers_by_team ON phone_numbers (tenant_id, team_id);
