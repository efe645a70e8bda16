-- An operator action that goes through the engine is logged before it is submitted, as
-- 'pending', and settled with its outcome after (ADR 0036: a crash between the engine's commit
-- and a log entry written after it used to lose the entry). The log stays append-only otherwise:
-- the one change allowed is a pending entry taking its outcome and its "after", once.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.outcome = 'pending' AND NEW.outcome <> 'pending'
       AND NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.at = OLD.at
       AND NEW.principal = OLD.principal AND NEW.role = OLD.role AND NEW.action = OLD.action
       AND NEW.target_kind = OLD.target_kind AND NEW.target_id = OLD.target_id
       AND NEW.reason IS NOT DISTINCT FROM OLD.reason
       AND NEW.before IS NOT DISTINCT FROM OLD.before
       AND NEW.key_prefix IS NOT DISTINCT FROM OLD.key_prefix THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
