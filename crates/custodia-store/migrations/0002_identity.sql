-- Custodia schema v2: people, service accounts, sessions, login back-off, security events.

-- Users and service accounts. `doc` is JSON: roles, branch, clearance, purposes,
-- compliance dates; for users the Argon2id password verifier and the TOTP secret sealed
-- under a key derived from the root key. `secret_hash` is SHA-256 of a service account's
-- API key (NULL for users), unique so a key finds its account.
CREATE TABLE principals (
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    secret_hash TEXT,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE UNIQUE INDEX principals_by_secret ON principals (secret_hash);

-- Sign-in sessions, stored as SHA-256 of the session token.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    mfa        BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_by_user ON sessions (username);

-- Consecutive failed sign-ins per key (`user:<name>` or `addr:<ip>`) and the back-off.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Events for alerting (quota exceeded, lockouts): ids and counts, never personal values.
CREATE TABLE security_events (
    id     TEXT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX security_events_by_time ON security_events (at);
