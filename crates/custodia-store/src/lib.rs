//! Persistence for Custodia: the [`Store`] trait and its two implementations, SQLite (the
//! embedded default, WAL, one file) and PostgreSQL (production, shared by many nodes).
//!
//! The store sees only ciphertext, wrapped keys, blind-index hashes and plain attributes;
//! it never handles a personal value in the clear. Both backends run the same SQL text
//! (`$N` placeholders work in SQLite too) from one macro, so they cannot drift apart, and
//! the same migrations, which are embedded in the binary.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use std::time::{SystemTime, UNIX_EPOCH};

mod direct;
mod held;
mod sql;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub use sql::{audit_file, audit_index_file, PgStore, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique searchable field already holds this value in another record.
    #[error("another record already has this value in unique field '{field}'")]
    Unique { field: String },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An error of the direct SQLite read path (see `direct`).
    #[error("database error: {0}")]
    Direct(String),
    #[error("migration {version} failed: {message}")]
    Migration { version: i64, message: String },
    #[error("unsupported database URL: expected sqlite://… or postgres://…")]
    UnsupportedUrl,
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct RecordRow {
    pub id: String,
    pub version: i64,
    pub tier: String,
    pub branch: String,
    /// The sealed fields in custodia-vault's stored form.
    pub fields: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A record's wrapped data-encryption key.
#[derive(Clone, Debug)]
pub struct DekRow {
    pub key_id: String,
    pub kek_version: i64,
    pub wrapped: String,
}

impl DekRow {
    /// From the nullable columns of a `LEFT JOIN record_keys`: none when the key is gone.
    pub(crate) fn joined(
        key_id: Option<String>,
        kek_version: Option<i64>,
        wrapped: Option<String>,
    ) -> Option<DekRow> {
        match (key_id, kek_version, wrapped) {
            (Some(key_id), Some(kek_version), Some(wrapped)) => Some(DekRow {
                key_id,
                kek_version,
                wrapped,
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct KekRow {
    pub version: i64,
    pub wrapped: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub field: String,
    pub hash: String,
    pub unique: bool,
}

/// Everything written for one new record, in one transaction.
#[derive(Clone, Debug)]
pub struct NewRecord {
    pub record: RecordRow,
    pub dek: DekRow,
    pub index: Vec<IndexEntry>,
}

/// A change to an existing record, applied only if its version is still `expected_version`.
#[derive(Clone, Debug)]
pub struct RecordUpdate {
    pub expected_version: i64,
    pub tier: String,
    pub branch: String,
    pub fields: Vec<u8>,
    /// Searchable fields whose index rows are replaced: `(field, new entry or none)`.
    pub index: Vec<(String, Option<IndexEntry>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated { version: i64 },
    VersionMismatch { current: i64 },
    NotFound,
}

#[derive(Clone, Debug)]
pub struct TokenRow {
    pub name: String,
    pub role: String,
}

/// A user or service account: its JSON document and optimistic-concurrency version.
#[derive(Clone, Debug)]
pub struct PrincipalRow {
    pub kind: String,
    pub name: String,
    pub doc: String,
    pub version: i64,
}

#[derive(Clone, Debug)]
pub struct SessionRow {
    pub token_hash: String,
    pub username: String,
    pub mfa: bool,
    pub created_at: i64,
    pub last_seen: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct SecurityEvent {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

/// A signed tree head as stored (root and signature in hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHeadRow {
    pub tree_size: i64,
    pub root_hash: String,
    pub timestamp_ms: i64,
    pub signature: String,
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The storage operations Custodia needs; one shared test suite runs on both backends.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets a value only if the key is absent; returns whether it was set.
    async fn insert_meta(&self, key: &str, value: &str) -> Result<bool>;

    /// Creates (`expected_version` none) or replaces (compare-and-set) a schema; returns the
    /// new version, or `None` if the expected version no longer holds.
    async fn put_collection(
        &self,
        name: &str,
        schema_json: &str,
        expected_version: Option<i64>,
    ) -> Result<Option<i64>>;
    async fn get_collection(&self, name: &str) -> Result<Option<(String, i64)>>;
    async fn list_collections(&self) -> Result<Vec<String>>;

    async fn keks(&self, collection: &str) -> Result<Vec<KekRow>>;
    /// Adds a KEK version; false if that version already exists (another node won).
    async fn insert_kek(&self, collection: &str, version: i64, wrapped: &str) -> Result<bool>;

    /// Inserts records with their keys and index rows, all or nothing.
    async fn insert_records(&self, collection: &str, batch: &[NewRecord]) -> Result<()>;
    async fn get_record(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<Option<(RecordRow, Option<DekRow>)>>;
    async fn get_records(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<(RecordRow, Option<DekRow>)>>;
    async fn update_record(
        &self,
        collection: &str,
        id: &str,
        update: &RecordUpdate,
    ) -> Result<UpdateOutcome>;
    /// Crypto-shredding: removes the record's DEK, its index rows and the record row.
    async fn delete_record(&self, collection: &str, id: &str) -> Result<bool>;
    async fn count_records(&self, collection: &str) -> Result<i64>;

    /// Which of `hashes` a unique field already holds (to sort out a batch with duplicates).
    async fn unique_hashes_present(
        &self,
        collection: &str,
        field: &str,
        hashes: &[&str],
    ) -> Result<Vec<String>>;

    /// Record ids whose blind index for `field` equals `hash`, at most `limit`; `unique`
    /// says whether the field is a unique one (its entries live in the unique index).
    async fn search(
        &self,
        collection: &str,
        field: &str,
        hash: &str,
        unique: bool,
        limit: i64,
    ) -> Result<Vec<String>>;

    /// DEKs still wrapped under a KEK older than `version`, for re-wrapping.
    async fn deks_older_than(
        &self,
        collection: &str,
        version: i64,
        limit: i64,
    ) -> Result<Vec<(String, DekRow)>>;
    /// Replaces a wrapped DEK if it is still under `old_version`.
    async fn rewrap_dek(
        &self,
        collection: &str,
        record_id: &str,
        old_version: i64,
        new: &DekRow,
    ) -> Result<bool>;

    async fn insert_token(&self, token_hash: &str, name: &str, role: &str) -> Result<()>;
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRow>>;

    /// Record ids in id order after `after`, at most `limit` (listing, for grants of `list`).
    async fn list_record_ids(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>>;

    /// Creates (`expected_version` none) or replaces (compare-and-set) a principal; returns
    /// the new version, or `None` if it already exists / the version no longer holds.
    /// `secret_hash` is always written (`None` clears it).
    async fn put_principal(
        &self,
        kind: &str,
        name: &str,
        doc: &str,
        secret_hash: Option<&str>,
        expected_version: Option<i64>,
    ) -> Result<Option<i64>>;
    async fn get_principal(&self, kind: &str, name: &str) -> Result<Option<PrincipalRow>>;
    async fn find_principal_by_secret(&self, secret_hash: &str) -> Result<Option<PrincipalRow>>;
    async fn list_principals(&self, kind: &str) -> Result<Vec<PrincipalRow>>;
    async fn delete_principal(&self, kind: &str, name: &str) -> Result<bool>;

    async fn insert_session(&self, s: &SessionRow) -> Result<()>;
    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRow>>;
    async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()>;
    /// Revokes one session; false if it was unknown or already revoked.
    async fn revoke_session(&self, token_hash: &str, now: i64) -> Result<bool>;
    /// Revokes every live session of a user; returns how many.
    async fn revoke_user_sessions(&self, username: &str, now: i64) -> Result<u64>;

    /// `(failures, locked_until, last failure time)` for a sign-in back-off key.
    async fn login_failures(&self, key: &str) -> Result<Option<(i64, i64, i64)>>;
    async fn set_login_failures(&self, key: &str, failures: i64, locked_until: i64) -> Result<()>;
    async fn clear_login_failures(&self, key: &str) -> Result<()>;

    async fn insert_security_event(&self, e: &SecurityEvent) -> Result<()>;
    /// Events at or after `since`, oldest first, at most `limit`.
    async fn security_events(&self, since: i64, limit: i64) -> Result<Vec<SecurityEvent>>;

    /// Appends audit events in one transaction, after every event already in the log (one
    /// appender at a time across nodes); returns the sequence number of the first.
    async fn append_audit(&self, events: &[Vec<u8>]) -> Result<i64>;
    /// A blocking appender with its own connection, for a thread of its own, where the
    /// backend has one (SQLite, not in memory); same contract as [`Store::append_audit`].
    fn audit_appender(&self) -> Result<Option<Box<dyn AuditAppend>>> {
        Ok(None)
    }
    /// Events with `seq >= from`, in order, at most `limit`.
    async fn audit_events(&self, from: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>>;
    async fn audit_count(&self) -> Result<i64>;
    /// Stores a signed tree head; false if one of that size exists already.
    async fn insert_audit_head(&self, head: &AuditHeadRow) -> Result<bool>;
    /// Every signed tree head, by size.
    async fn audit_heads(&self) -> Result<Vec<AuditHeadRow>>;
    /// The events with these sequence numbers (ascending), those that exist.
    async fn audit_events_at(&self, seqs: &[i64]) -> Result<Vec<(i64, Vec<u8>)>>;

    /// The investigation index of the audit log (derived, not trusted; see
    /// `migrations/0004_audit_index.sql`): events below the returned sequence number are in it.
    async fn audit_index_upto(&self) -> Result<i64>;
    /// Adds the entries of the events `[from, to)` and moves the mark from `from` to `to`, in
    /// one transaction; `false`, writing nothing, when the mark was not at `from` (another
    /// node indexed them meanwhile).
    async fn write_audit_index(&self, from: i64, to: i64, batch: AuditIndexBatch) -> Result<bool>;
    /// Empties the index and puts its mark back to the start, in one transaction (it is then
    /// built again from the log).
    async fn reset_audit_index(&self) -> Result<()>;
    /// Sequence numbers in `[lo, hi)` that carry every one of `keys` (at least one), ascending,
    /// from at most `words` words of the first key (the first key drives the search: put the
    /// rarest first); with where to go on from when that limit was reached.
    async fn audit_index_find(
        &self,
        keys: &[i64],
        lo: i64,
        hi: i64,
        words: i64,
    ) -> Result<(Vec<i64>, Option<i64>)>;
    /// How many words in `[lo, hi)` hold an event carrying `key`, counted up to `cap` (a
    /// measure of how rare the key is).
    async fn audit_index_count(&self, key: i64, lo: i64, hi: i64, cap: i64) -> Result<i64>;
    /// The sequence numbers `[lo, hi)` spanned by the indexed blocks that hold an event
    /// timed within `[since, until]` (milliseconds); `None` when no block does.
    async fn audit_index_span(&self, since: i64, until: i64) -> Result<Option<(i64, i64)>>;
    /// Of these `(key, word, bits)` postings, how many the index holds, every bit of them
    /// (checks).
    async fn audit_index_holds(&self, postings: &[(i64, i64, i64)]) -> Result<i64>;
    /// The entries (events × keys) below `upto`, counted bit by bit, and every block row
    /// (checks).
    async fn audit_index_totals(&self, upto: i64) -> Result<(i64, Vec<(i64, i64, i64)>)>;
}

/// Sequence numbers per block of the audit index's time table.
pub const AUDIT_INDEX_BLOCK: i64 = 1024;

/// Sequence numbers per word of a posting: bit `seq % 64` of word `seq / 64`.
pub const AUDIT_INDEX_WORD: i64 = 64;

/// The word of a sequence number and its bit in it.
pub fn audit_index_bit(seq: i64) -> (i64, i64) {
    (
        seq.div_euclid(AUDIT_INDEX_WORD),
        1i64 << seq.rem_euclid(AUDIT_INDEX_WORD),
    )
}

/// What indexing a run of audit events adds: postings `(key, word, bits)` — the events of
/// word `word` that carry `key`, one bit each; at most one per `(key, word)`; a key is the
/// 64-bit hash of `kind:value`, see `custodia_audit::index` — and the earliest and latest
/// event time seen in each block `(block, min_ms, max_ms)`. A key carried by most events
/// (an action, a purpose, an outcome, a busy actor) costs one row per 64 events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditIndexBatch {
    pub postings: Vec<(i64, i64, i64)>,
    pub blocks: Vec<(i64, i64, i64)>,
}

/// See [`Store::audit_appender`].
pub trait AuditAppend: Send {
    fn append(&mut self, events: &[Vec<u8>]) -> Result<i64>;
    /// Stores a signed tree head on the appender's own connection, so the log file has one
    /// writer; `false` if a head of that size is already there.
    fn insert_head(&mut self, head: &AuditHeadRow) -> Result<bool>;
    /// How often the WAL was restarted because it outgrew its limit (SQLite).
    fn wal_restarts(&self) -> u64 {
        0
    }
    /// Upkeep between two appends, run after the last batch's requests were answered (SQLite:
    /// starting the WAL over when it passed its cap).
    fn maintain(&mut self) {}
}

/// Opens the store named by a URL (`sqlite://path`, `sqlite::memory:`, `postgres://…`) and
/// applies pending migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// Embedded migrations, applied in order, each once.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_identity.sql")),
    (3, include_str!("../migrations/0003_audit.sql")),
    (4, include_str!("../migrations/0004_audit_index.sql")),
];

/// SQLite keeps the audit log's investigation index in a file of its own too.
pub(crate) const AUDIT_INDEX_MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../migrations/0004_audit_index.sql"))];

/// SQLite keeps the audit log in a file of its own (see `SqliteStore`); its migrations.
pub(crate) const AUDIT_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0003_audit.sql")),
    (2, include_str!("../migrations/audit_0002_rowid.sql")),
];
