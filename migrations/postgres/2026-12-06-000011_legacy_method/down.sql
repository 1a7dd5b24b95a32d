DROP TABLE import_marks;
-- The imported history goes with the method.
DELETE FROM access_events WHERE method = 'legacy';
ALTER TABLE access_events DROP CONSTRAINT access_events_method_check;
ALTER TABLE access_events ADD CONSTRAINT access_events_method_check
    CHECK (method IN ('api', 'qr', 'rfid', 'manual', 'door'));
