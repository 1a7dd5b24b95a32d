-- The OAuth2 provider and the Partner API. Times are UTC seconds since the
-- Unix epoch; secrets, codes and tokens are stored only as hashes.
CREATE TABLE oauth_clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- argon2id PHC string; NULL for a public client
    secret_hash TEXT,
    -- registered redirect URIs, one per line, matched exactly
    redirect_uris TEXT NOT NULL,
    -- scopes the client may ask for, space-separated
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    removed_at BIGINT
);

CREATE TABLE oauth_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- SHA-256 of the code, hex
    code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id),
    member_id BIGINT NOT NULL REFERENCES members (id),
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    -- the PKCE challenge as oxide-auth encodes it, if one was given
    pkce TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- Access and refresh tokens. A family is every token descending from one
-- authorization code (its id): a replayed code or a reused refresh token
-- revokes the whole family.
CREATE TABLE oauth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    family BIGINT NOT NULL REFERENCES oauth_codes (id),
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id),
    member_id BIGINT NOT NULL REFERENCES members (id),
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- refresh tokens: when it was exchanged (rotated)
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family);

-- The token wallet: append-only; balances are sums per kind.
CREATE TABLE token_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id),
    kind TEXT NOT NULL CHECK (kind IN ('paid', 'free')),
    -- hundredths of a token: credits positive, debits negative
    amount BIGINT NOT NULL CHECK (amount <> 0),
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX token_ledger_member ON token_ledger (member_id, kind);

CREATE TABLE vip_periods (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id),
    level TEXT NOT NULL CHECK (level IN ('standard', 'gold')),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL CHECK (ends_at > starts_at),
    -- what it cost, in hundredths of each kind of token
    free_spent BIGINT NOT NULL CHECK (free_spent >= 0),
    paid_spent BIGINT NOT NULL CHECK (paid_spent >= 0),
    payment_id BIGINT NOT NULL REFERENCES payments (id),
    client_id TEXT NOT NULL,
    bought_at BIGINT NOT NULL
);
CREATE INDEX vip_periods_member ON vip_periods (member_id);

-- Idempotency-Key of VIP purchases, per partner.
CREATE TABLE idempotency_keys (
    client_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    member_id BIGINT NOT NULL REFERENCES members (id),
    level TEXT NOT NULL,
    vip_period_id BIGINT NOT NULL REFERENCES vip_periods (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, idem_key)
);
