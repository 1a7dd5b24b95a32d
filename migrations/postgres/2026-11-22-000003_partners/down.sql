DROP TABLE idempotency_keys;
DROP TABLE vip_periods;
DROP TABLE token_ledger;
DROP TABLE oauth_tokens;
DROP TABLE oauth_codes;
DROP TABLE oauth_clients;
