-- A member's history version: raised by the database itself, in the writing
-- transaction, whenever the member's payments, granted entries, VIP periods
-- or token ledger change, whoever writes them (this server, another one, the
-- CLI, an operator's SQL). A member read fetches it with the member's row in
-- one statement and reuses the history it read before only when the version
-- is unchanged, so no read answers older than an acknowledged write.
ALTER TABLE members ADD COLUMN history_version BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER payments_history_insert AFTER INSERT ON payments BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = NEW.member_id;
END;
CREATE TRIGGER payments_history_update AFTER UPDATE ON payments BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id IN (OLD.member_id, NEW.member_id);
END;
CREATE TRIGGER payments_history_delete AFTER DELETE ON payments BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = OLD.member_id;
END;

CREATE TRIGGER vip_periods_history_insert AFTER INSERT ON vip_periods BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = NEW.member_id;
END;
CREATE TRIGGER vip_periods_history_update AFTER UPDATE ON vip_periods BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id IN (OLD.member_id, NEW.member_id);
END;
CREATE TRIGGER vip_periods_history_delete AFTER DELETE ON vip_periods BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = OLD.member_id;
END;

CREATE TRIGGER token_ledger_history_insert AFTER INSERT ON token_ledger BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = NEW.member_id;
END;
CREATE TRIGGER token_ledger_history_update AFTER UPDATE ON token_ledger BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id IN (OLD.member_id, NEW.member_id);
END;
CREATE TRIGGER token_ledger_history_delete AFTER DELETE ON token_ledger BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = OLD.member_id;
END;

-- only granted entries count towards validity; refusals and faults leave
-- the version alone
CREATE TRIGGER access_events_history_insert AFTER INSERT ON access_events
WHEN NEW.member_id IS NOT NULL AND NEW.outcome = 'granted' BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = NEW.member_id;
END;
CREATE TRIGGER access_events_history_update AFTER UPDATE ON access_events BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id IN (OLD.member_id, NEW.member_id);
END;
CREATE TRIGGER access_events_history_delete AFTER DELETE ON access_events
WHEN OLD.member_id IS NOT NULL AND OLD.outcome = 'granted' BEGIN
    UPDATE members SET history_version = history_version + 1 WHERE id = OLD.member_id;
END;
