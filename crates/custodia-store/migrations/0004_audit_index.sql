-- Custodia schema v4: the investigation index of the audit log (`GET /v1/audit/events`).
-- Derived data, outside the Merkle tree and not trusted: every event a search finds through
-- it is read from `audit_events` and checked against the filter again, and
-- `custodia audit verify --index` rebuilds it from the log and compares. A background task
-- fills it behind the log; the events past `upto` are scanned.
-- (SQLite keeps it in a file of its own, `custodia-audit-index.db`; these tables then stay
-- empty in the main file.)

-- Postings: the events of word `word` (sequence numbers 64 × word to 64 × word + 63) that carry
-- `key`, one bit each (bit i: event 64 × word + i). A key is the 64-bit FNV-1a hash of
-- `actor:<name>`, `record:<id>`, `action:<action>`, `purpose:<purpose>` or `outcome:<outcome>`
-- (custodia_audit::index::key); two values with one hash only make a search read an event that
-- its check then drops. A common key (an action, an outcome) costs a row per 64 events.
CREATE TABLE audit_index_keys (
    key  BIGINT NOT NULL,
    word BIGINT NOT NULL,
    bits BIGINT NOT NULL,
    PRIMARY KEY (key, word)
) /*WITHOUT_ROWID*/;

-- Earliest and latest event time of each block of 1024 sequence numbers (time ranges).
CREATE TABLE audit_index_blocks (
    block  BIGINT PRIMARY KEY,
    min_ms BIGINT NOT NULL,
    max_ms BIGINT NOT NULL
);

-- Events with a sequence number below `upto` are indexed.
CREATE TABLE audit_index_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    upto BIGINT NOT NULL
);
INSERT INTO audit_index_state (id, upto) VALUES (1, 0);
