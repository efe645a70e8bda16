-- Which opportunity a phone number belongs to, so an inbound SMS finds its conversation.
CREATE TABLE contact_index (
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    phone          TEXT NOT NULL,
    opportunity_id UUID NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, phone, opportunity_id)
);
