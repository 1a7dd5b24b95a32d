DROP TABLE oauth_spent_tickets;
ALTER TABLE oauth_codes DROP COLUMN redirect_uri_sent;
ALTER TABLE oauth_clients DROP COLUMN pkce_required;
