-- Custodia schema v3: the audit log. Events are the leaves of an RFC 6962 Merkle tree in
-- `seq` order (canonical JSON, ids only); tree heads are signed by the log's key. Nothing here
-- is trusted by the verifier: it recomputes the tree and checks the signatures.
CREATE TABLE audit_events (
    seq   BIGINT PRIMARY KEY,
    event __BYTES__ NOT NULL
);

CREATE TABLE audit_heads (
    tree_size    BIGINT PRIMARY KEY,
    root_hash    TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    signature    TEXT NOT NULL
);
