-- A member's history version: raised by the database itself, in the writing
-- transaction, whenever the member's payments, granted entries, VIP periods
-- or token ledger change, whoever writes them (this server, another one, the
-- CLI, an operator's SQL). A member read fetches it with the member's row in
-- one statement and reuses the history it read before only when the version
-- is unchanged, so no read answers older than an acknowledged write.
ALTER TABLE members ADD COLUMN history_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION zhima_member_history_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE members SET history_version = history_version + 1 WHERE id = OLD.member_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.member_id IS DISTINCT FROM OLD.member_id) THEN
        UPDATE members SET history_version = history_version + 1 WHERE id = NEW.member_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER payments_history AFTER INSERT OR UPDATE OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION zhima_member_history_changed();
CREATE TRIGGER vip_periods_history AFTER INSERT OR UPDATE OR DELETE ON vip_periods
    FOR EACH ROW EXECUTE FUNCTION zhima_member_history_changed();
CREATE TRIGGER token_ledger_history AFTER INSERT OR UPDATE OR DELETE ON token_ledger
    FOR EACH ROW EXECUTE FUNCTION zhima_member_history_changed();
-- only granted entries count towards validity; refusals and faults leave
-- the version alone
CREATE TRIGGER access_events_history_insert AFTER INSERT ON access_events
    FOR EACH ROW WHEN (NEW.member_id IS NOT NULL AND NEW.outcome = 'granted')
    EXECUTE FUNCTION zhima_member_history_changed();
CREATE TRIGGER access_events_history_update AFTER UPDATE ON access_events
    FOR EACH ROW EXECUTE FUNCTION zhima_member_history_changed();
CREATE TRIGGER access_events_history_delete AFTER DELETE ON access_events
    FOR EACH ROW WHEN (OLD.member_id IS NOT NULL AND OLD.outcome = 'granted')
    EXECUTE FUNCTION zhima_member_history_changed();
