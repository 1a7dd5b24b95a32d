-- Access method 'legacy': history imported from the old server's log
-- (zhima import zhima-legacy), which never spends an entry day.
ALTER TABLE access_events DROP CONSTRAINT access_events_method_check;
ALTER TABLE access_events ADD CONSTRAINT access_events_method_check
    CHECK (method IN ('api', 'qr', 'rfid', 'manual', 'door', 'legacy'));

-- How far an import read its source (the old server's tb_log id), so a
-- later run reads only what came after, whatever it made of those rows.
CREATE TABLE import_marks (
    source TEXT PRIMARY KEY,
    read_to BIGINT NOT NULL
);
