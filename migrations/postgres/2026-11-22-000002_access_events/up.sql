-- The access log: every unlock, refusal and door event, written before the
-- door moves. Times are UTC seconds since the Unix epoch.
CREATE TABLE access_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    door TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('api', 'qr', 'rfid', 'manual', 'door')),
    outcome TEXT NOT NULL CHECK (outcome IN ('granted', 'refused', 'event', 'fault')),
    reason TEXT NOT NULL,
    member_id BIGINT REFERENCES members (id),
    api_key_id BIGINT REFERENCES api_keys (id),
    detail TEXT NOT NULL DEFAULT ''
);
-- GET /entries?since=…: newest first from a time
CREATE INDEX access_events_at ON access_events (at);
-- a member's entries (entry days, lastActiveTime)
CREATE INDEX access_events_member ON access_events (member_id, at);
