-- Web sessions of the staff console and the member pages, kept in the
-- database so every server on it shares them and ending one (logout, a
-- deactivation, a new password) ends it everywhere at once. Only the
-- SHA-256 of the session token is stored.
CREATE TABLE sessions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    member_id BIGINT NOT NULL REFERENCES members (id),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_member ON sessions (member_id);
