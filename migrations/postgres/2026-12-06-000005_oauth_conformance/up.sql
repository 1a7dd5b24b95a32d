-- PKCE is required from every client unless staff opt an old partner out
-- (RFC 9700); existing partners are required too.
ALTER TABLE oauth_clients ADD COLUMN pkce_required BOOLEAN NOT NULL DEFAULT TRUE;
-- Whether the authorization request named its redirect_uri: the token
-- request must repeat it then, and only then (RFC 6749 §4.1.3).
ALTER TABLE oauth_codes ADD COLUMN redirect_uri_sent BOOLEAN NOT NULL DEFAULT TRUE;
-- Consent tickets already used: each works once, on any server of the
-- database. Rows are deleted once past their expiry.
CREATE TABLE oauth_spent_tickets (
    ticket_hash TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
