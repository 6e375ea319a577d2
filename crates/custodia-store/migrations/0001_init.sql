-- Custodia schema v1. One text for SQLite and PostgreSQL: only TEXT and BIGINT columns,
-- keys and hashes are base64 or hex, booleans are 0/1. The migration runner turns
-- `/*WITHOUT_ROWID*/` into `WITHOUT ROWID` on SQLite and drops it on PostgreSQL.

-- Installation facts: algorithm suite, sealed root key.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE collections (
    name        TEXT PRIMARY KEY,
    schema_json TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Versioned collection key-encryption keys, each wrapped under the root key.
CREATE TABLE keks (
    collection TEXT NOT NULL,
    version    BIGINT NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (collection, version)
);

-- Customer records: plain attributes for policy, encrypted fields (see custodia-vault's
-- `stored` module; `__BYTES__` is BLOB on SQLite, BYTEA on PostgreSQL).
CREATE TABLE records (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    tier       TEXT NOT NULL,
    branch     TEXT NOT NULL,
    fields     __BYTES__ NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);

-- One data-encryption key per record, wrapped under a KEK version. Kept apart from
-- `records` so that deleting the row here (crypto-shredding) leaves every copy of the
-- record table unreadable.
CREATE TABLE record_keys (
    collection  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    kek_version BIGINT NOT NULL,
    wrapped     TEXT NOT NULL,
    PRIMARY KEY (collection, record_id)
) /*WITHOUT_ROWID*/;
CREATE INDEX record_keys_by_kek ON record_keys (collection, kek_version);

-- Blind indexes: truncated HMAC of the normalized value, per collection and field. Keyed
-- by record (record ids are time-ordered, so bulk inserts append). Search goes through one of
-- two partial indexes: the unique one for unique fields, the lookup one for the others, so
-- each value is inserted into one randomly ordered index only.
-- `/*WITHOUT_ROWID*/` becomes `WITHOUT ROWID` on SQLite (the table is its key).
CREATE TABLE blind_index (
    collection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    field      TEXT NOT NULL,
    hash       TEXT NOT NULL,
    uniq       BIGINT NOT NULL,
    PRIMARY KEY (collection, record_id, field)
) /*WITHOUT_ROWID*/;
CREATE INDEX blind_index_lookup ON blind_index (collection, field, hash) WHERE uniq = 0;
CREATE UNIQUE INDEX blind_index_unique ON blind_index (collection, field, hash) WHERE uniq = 1;

-- Bearer tokens, stored as SHA-256 of the token.
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
