-- The audit log names the key behind every action (its visible prefix, never the secret), not
-- only the principal: two keys of one principal, or keys of no principal, are told apart.
-- Entries written before this have none.
ALTER TABLE audit_log ADD COLUMN key_prefix TEXT;
