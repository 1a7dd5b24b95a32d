CREATE INDEX access_events_member ON access_events (member_id, at);
DROP INDEX access_events_member_outcome;
