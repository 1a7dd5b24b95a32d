-- The outbox of notifications: each row is one message to deliver (an
-- email now), found by a key that makes it happen once (the member, what
-- it is about and the instant it is about). Senders claim a row by setting
-- its lease; a row whose lease ran out (its sender died) is claimed again.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    once_key TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    member_id BIGINT REFERENCES members (id),
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    lease_until BIGINT,
    sent_at BIGINT,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (state, next_at);
-- A member may opt out of reminders (receipts still come).
ALTER TABLE members ADD COLUMN reminders BOOLEAN NOT NULL DEFAULT TRUE;
-- Webhooks: URLs an admin configured, with the events each wants. The
-- signing secret is not stored: it is derived from the server's key and
-- the salt, and shown once when the webhook is added.
CREATE TABLE webhooks (
    id BIGSERIAL PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    salt TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    removed_at BIGINT
);
