-- Access method 'legacy': history imported from the old server's log
-- (zhima import zhima-legacy), which never spends an entry day.
-- SQLite cannot change a CHECK constraint: the table is rebuilt with its
-- rows, ids, indexes and triggers (one copy of the log, once).
CREATE TABLE access_events_next (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    door TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('api', 'qr', 'rfid', 'manual', 'door', 'legacy')),
    outcome TEXT NOT NULL CHECK (outcome IN ('granted', 'refused', 'event', 'fault')),
    reason TEXT NOT NULL,
    member_id BIGINT REFERENCES members (id),
    api_key_id BIGINT REFERENCES api_keys (id),
    detail TEXT NOT NULL DEFAULT ''
);
INSERT INTO access_events_next (id, at, door, method, outcome, reason, member_id, api_key_id, detail)
    SELECT id, at, door, method, outcome, reason, member_id, api_key_id, detail FROM access_events;
DROP TABLE access_events;
ALTER TABLE access_events_next RENAME TO access_events;
CREATE INDEX access_events_at ON access_events (at);
CREATE INDEX access_events_member_outcome ON access_events (member_id, outcome, at);
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

-- How far an import read its source (the old server's tb_log id), so a
-- later run reads only what came after, whatever it made of those rows.
CREATE TABLE import_marks (
    source TEXT PRIMARY KEY,
    read_to BIGINT NOT NULL
);
