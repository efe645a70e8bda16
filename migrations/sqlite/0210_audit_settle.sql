-- An operator action that goes through the engine is logged before it is submitted, as
-- 'pending', and settled with its outcome after (ADR 0036). The log stays append-only otherwise:
-- the one change allowed is a pending entry taking its outcome and its "after", once.
DROP TRIGGER IF EXISTS audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (OLD.outcome = 'pending' AND NEW.outcome <> 'pending'
          AND NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.at = OLD.at
          AND NEW.principal = OLD.principal AND NEW.role = OLD.role AND NEW.action = OLD.action
          AND NEW.target_kind = OLD.target_kind AND NEW.target_id = OLD.target_id
          AND NEW.reason IS OLD.reason AND NEW.before IS OLD.before
          AND NEW.key_prefix IS OLD.key_prefix)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
