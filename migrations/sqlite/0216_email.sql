-- Email as a lead channel (issue #14, ADR 0049): the tenant's postal address, which every
-- email to a lead carries in its footer (CAN-SPAM). Without one, no email to a lead is sent.
ALTER TABLE tenant_settings ADD COLUMN postal_address TEXT;
