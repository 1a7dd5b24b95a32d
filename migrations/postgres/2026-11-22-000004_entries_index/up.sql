-- A member's granted entries: reading a member takes the latest one
-- (MAX(at) with member_id and outcome fixed: one index probe) and those
-- inside the member's entry-pack windows (a range of this index), so the
-- cost no longer grows with the member's whole access history.
CREATE INDEX access_events_member_outcome ON access_events (member_id, outcome, at);
DROP INDEX access_events_member;
