-- Times are UTC seconds since the Unix epoch; money is integer fen.
CREATE TABLE members (
    id BIGSERIAL PRIMARY KEY,
    openid TEXT NOT NULL UNIQUE,
    nickname TEXT NOT NULL,
    -- case-folded nickname, computed by zhima-domain (NickName::key)
    nickname_key TEXT NOT NULL UNIQUE,
    avatar_url TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    province TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    gender INTEGER NOT NULL DEFAULT 0 CHECK (gender IN (0, 1, 2)),
    rfid TEXT UNIQUE,
    tags TEXT NOT NULL,
    memo TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL DEFAULT TRUE,
    deactivated_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE payments (
    id BIGSERIAL PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id),
    pay_index TEXT NOT NULL UNIQUE,
    amount_fen BIGINT NOT NULL CHECK (amount_fen >= 0),
    pay_type TEXT NOT NULL,
    paid_at BIGINT NOT NULL,
    until_days INTEGER CHECK (until_days IS NULL OR until_days > 0),
    recorded_at BIGINT NOT NULL
);
CREATE INDEX payments_member_paid ON payments (member_id, paid_at);

CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- SHA-256 of the key, hex; the key itself is never stored
    key_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Kept for parity with SQLite, where write transactions touch it first;
-- PostgreSQL's row locks and unique constraints need no such guard.
CREATE TABLE write_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO write_lock (id, n) VALUES (1, 0);
