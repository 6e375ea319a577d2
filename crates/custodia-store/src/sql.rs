//! The SQL behind both backends. One macro expands the same statements for SQLite and
//! PostgreSQL; only connection set-up and migration locking differ.

use crate::held::Done;
use crate::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row};
use std::str::FromStr;
use std::time::Duration;

/// Moves the audit index's mark from `$from` to `$to` in transaction `$tx`, or returns
/// `Ok(false)` from the calling function if it was not at `$from`. Moving the mark first takes
/// the write lock (SQLite) or the row's lock (PostgreSQL): two nodes indexing the same events
/// serialize here, and the second writes nothing.
macro_rules! move_index_mark {
    ($tx:ident, $from:expr, $to:expr) => {
        let moved =
            sqlx::query("UPDATE audit_index_state SET upto = $1 WHERE id = 1 AND upto = $2")
                .bind($to)
                .bind($from)
                .execute(&mut *$tx)
                .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
    };
}

/// Writes each block's time range in `$tx` and commits it.
macro_rules! commit_index_blocks {
    ($tx:ident, $blocks:expr) => {
        for b in &$blocks {
            sqlx::query(UPSERT_INDEX_BLOCK)
                .bind(b.0)
                .bind(b.1)
                .bind(b.2)
                .execute(&mut *$tx)
                .await?;
        }
        $tx.commit().await?;
    };
}

/// SQLite: one writer connection (SQLite admits one writer; queueing in the pool beats
/// `SQLITE_BUSY` retries) and a few readers, WAL, `secure_delete` so that a shredded DEK's
/// bytes are overwritten in the file rather than left in a free page.
pub struct SqliteStore {
    read: sqlx::SqlitePool,
    write: sqlx::SqlitePool,
    /// The audit log's own writer: `synchronous=FULL` (an fsync per append) without
    /// slowing record writes, and no pragma switching per batch. It writes its own file
    /// (`custodia-audit.db` beside `custodia.db`): a commit to a SQLite file empties the
    /// page cache of every other connection to that file, so appends to the same file
    /// as the records made every read after them start from a cold cache.
    audit: sqlx::SqlitePool,
    /// Readers of the audit file.
    audit_read: sqlx::SqlitePool,
    /// The audit log's investigation index, in a third file (`custodia-audit-index.db`):
    /// its writes then never wait for the appender's lock nor it for theirs.
    /// `synchronous=NORMAL`: a crash may lose its last batches, never tear one (the mark
    /// moves in the same transaction), and they are indexed again.
    index: sqlx::SqlitePool,
    index_read: sqlx::SqlitePool,
    /// The index file's writer on rusqlite (see `direct::IndexWriter`); none in memory.
    index_direct: Option<std::sync::Arc<std::sync::Mutex<crate::direct::IndexWriter>>>,
    /// Hot point reads (a record, a batch of records, a blind-index lookup) on the
    /// caller's thread instead of sqlx's; none for an in-memory database.
    direct: Option<crate::direct::Reader>,
    /// The audit file, for [`Store::audit_appender`]; none in memory.
    audit_path: Option<std::path::PathBuf>,
    /// The next audit sequence number, when known (another process appending to the same
    /// file makes an insert collide; then it is read again).
    audit_next: std::sync::Mutex<Option<i64>>,
}

pub struct PgStore {
    read: sqlx::PgPool,
    /// Connections for record reads and blind-index searches, outside sqlx's pool (which
    /// pings each connection returned to it: a round trip per query; see `held.rs`).
    hot: crate::held::PgConns,
    /// The audit appender's own connection, so that a group commit does not queue behind
    /// the reads for one of `hot`'s.
    audit_conn: crate::held::PgConns,
    write: sqlx::PgPool,
    /// The next audit sequence number, when known (as for SQLite: another node appending
    /// makes an insert collide; then it is read again under the lock).
    audit_next: std::sync::Mutex<Option<i64>>,
}

/// A pool of one connection kept open: one writer per SQLite file (queueing in the pool
/// beats `SQLITE_BUSY` retries). No ping before each acquire: a local file cannot drop off the
/// network, and the ping is a round trip through sqlx's worker thread on every query.
fn single_writer() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
}

/// Two read-only connections to a side file (the audit log, its index): searches and proofs
/// read there without waiting for the file's single writer.
async fn read_only_pool(opts: SqliteConnectOptions) -> Result<sqlx::SqlitePool> {
    Ok(SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(2)
        .connect_with(opts.read_only(true))
        .await?)
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("secure_delete", "ON")
            .pragma("cache_size", "-131072")
            .pragma("temp_store", "MEMORY")
            .pragma("wal_autocheckpoint", "16384");
        let in_memory = url.contains(":memory:");
        let write = single_writer().connect_with(opts.clone()).await?;
        Self::migrate(&write).await?;
        let (audit, audit_read, index, index_read) = if in_memory {
            (write.clone(), write.clone(), write.clone(), write.clone())
        } else {
            let file = audit_file(opts.get_filename());
            let audit_opts = opts.clone().filename(&file);
            let audit = single_writer()
                .connect_with(audit_opts.clone().synchronous(SqliteSynchronous::Full))
                .await?;
            Self::migrate_with(&audit, AUDIT_MIGRATIONS).await?;
            Self::move_audit_log(&write, &audit).await?;
            let audit_read = read_only_pool(audit_opts).await?;
            let index_opts = opts.clone().filename(audit_index_file(opts.get_filename()));
            let index = single_writer().connect_with(index_opts.clone()).await?;
            Self::migrate_with(&index, AUDIT_INDEX_MIGRATIONS).await?;
            let index_read = read_only_pool(index_opts).await?;
            (audit, audit_read, index, index_read)
        };
        let audit_path = (!in_memory).then(|| audit_file(opts.get_filename()));
        let index_direct = if in_memory {
            None
        } else {
            let w = crate::direct::IndexWriter::open(&audit_index_file(opts.get_filename()))?;
            Some(std::sync::Arc::new(std::sync::Mutex::new(w)))
        };
        let direct = if in_memory {
            None
        } else {
            Some(crate::direct::Reader::open(opts.get_filename())?)
        };
        let read = if in_memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(4)
                .connect_with(opts.read_only(true))
                .await?
        };
        Ok(SqliteStore {
            read,
            write,
            audit,
            audit_read,
            index,
            index_read,
            index_direct,
            direct,
            audit_path,
            audit_next: std::sync::Mutex::new(None),
        })
    }

    /// Databases made before the audit log had its own file kept it in the main one:
    /// moved over once, in order, then removed from the main file — but only rows the
    /// audit file holds byte for byte. A main-file row that differs from the audit file's
    /// row of the same sequence number (an older binary still appending there) stops the
    /// open instead of losing either.
    async fn move_audit_log(main: &sqlx::SqlitePool, audit: &sqlx::SqlitePool) -> Result<()> {
        let old: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(main)
            .await?;
        let old_heads: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_heads")
            .fetch_one(main)
            .await?;
        if old == 0 && old_heads == 0 {
            return Ok(());
        }
        let conflict = |what: &str, at: i64| StoreError::Migration {
            version: 3,
            message: format!(
                "the audit log in the main database and in its own file differ at {what} \
                 {at}; nothing was moved or deleted (was an older custodia still running?)"
            ),
        };
        let mut tx = audit.begin().await?;
        let mut from = 0i64;
        loop {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT seq, event FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT 5000",
            )
            .bind(from)
            .fetch_all(main)
            .await?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            for (seq, event) in &rows {
                let there: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT event FROM audit_events WHERE seq = $1")
                        .bind(seq)
                        .fetch_optional(&mut *tx)
                        .await?;
                match there {
                    Some(e) if e == *event => {}
                    Some(_) => return Err(conflict("event", *seq)),
                    None => {
                        sqlx::query("INSERT INTO audit_events (seq, event) VALUES ($1, $2)")
                            .bind(seq)
                            .bind(event)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            from = last + 1;
        }
        let heads: Vec<(i64, String, i64, String)> =
            sqlx::query_as("SELECT tree_size, root_hash, timestamp_ms, signature FROM audit_heads")
                .fetch_all(main)
                .await?;
        let largest_head = heads.iter().map(|h| h.0).max().unwrap_or(-1);
        for h in heads {
            let there: Option<(String, i64, String)> = sqlx::query_as(
                "SELECT root_hash, timestamp_ms, signature FROM audit_heads WHERE tree_size = $1",
            )
            .bind(h.0)
            .fetch_optional(&mut *tx)
            .await?;
            match there {
                Some(t) if t == (h.1.clone(), h.2, h.3.clone()) => {}
                Some(_) => return Err(conflict("tree head of size", h.0)),
                None => {
                    sqlx::query(
                        "INSERT INTO audit_heads (tree_size, root_hash, timestamp_ms, signature) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(h.0)
                    .bind(h.1)
                    .bind(h.2)
                    .bind(h.3)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        // Everything in the main file is now in the audit file, identical: remove it.
        sqlx::query("DELETE FROM audit_events WHERE seq < $1")
            .bind(from)
            .execute(main)
            .await?;
        sqlx::query("DELETE FROM audit_heads WHERE tree_size <= $1")
            .bind(largest_head)
            .execute(main)
            .await?;
        Ok(())
    }

    fn direct(&self) -> Option<&crate::direct::Reader> {
        self.direct.as_ref()
    }

    /// A pooled connection for a hot-path query (only in memory: files read directly).
    async fn hot(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        Ok(self.read.acquire().await?)
    }

    fn hot_lost(&self) {}

    fn audit_appender_impl(&self) -> Result<Option<Box<dyn AuditAppend>>> {
        match &self.audit_path {
            Some(path) => Ok(Some(Box::new(crate::direct::AuditAppender::open(path)?))),
            None => Ok(None),
        }
    }

    /// [`Store::audit_appender`] with the audit WAL restarted past `frames` pages instead of
    /// 65,536 (tests: the restart is otherwise reached only after ~450,000 events).
    #[doc(hidden)]
    pub fn audit_appender_with_wal_limit(
        &self,
        frames: i64,
    ) -> Result<Option<Box<dyn AuditAppend>>> {
        match &self.audit_path {
            Some(path) => Ok(Some(Box::new(crate::direct::AuditAppender::open_with(
                path, frames,
            )?))),
            None => Ok(None),
        }
    }

    fn audit_reader(&self) -> &sqlx::SqlitePool {
        &self.audit_read
    }

    fn audit_writer(&self) -> &sqlx::SqlitePool {
        &self.audit
    }

    fn index_reader(&self) -> &sqlx::SqlitePool {
        &self.index_read
    }

    fn index_writer(&self) -> &sqlx::SqlitePool {
        &self.index
    }

    async fn write_audit_index_impl(
        &self,
        from: i64,
        to: i64,
        batch: AuditIndexBatch,
    ) -> Result<bool> {
        let Some(w) = self.index_direct.clone() else {
            return self.write_audit_index_sqlx(from, to, &batch).await;
        };
        tokio::task::spawn_blocking(move || {
            w.lock()
                .map_err(|_| StoreError::Direct("the audit index writer panicked".into()))?
                .write(from, to, &batch)
        })
        .await
        .map_err(|e| StoreError::Direct(e.to_string()))?
    }

    /// [`Store::write_audit_index`] through sqlx (an in-memory database), bound values in statements of
    /// thousands of rows.
    async fn write_audit_index_sqlx(
        &self,
        from: i64,
        to: i64,
        batch: &AuditIndexBatch,
    ) -> Result<bool> {
        let mut tx = self.index.begin().await?;
        move_index_mark!(tx, from, to);
        for chunk in batch.postings.chunks(3000) {
            let mut q = QueryBuilder::new("INSERT INTO audit_index_keys (key, word, bits) ");
            q.push_values(chunk, |mut b, (key, word, bits)| {
                b.push_bind(*key).push_bind(*word).push_bind(*bits);
            });
            q.push(MERGE_POSTING);
            q.build().execute(&mut *tx).await?;
        }
        commit_index_blocks!(tx, batch.blocks);
        Ok(true)
    }

    /// One multi-row INSERT per batch (a statement is atomic by itself), sequence numbers
    /// from a cached counter: one round trip and one fsync per group commit.
    async fn append_audit_impl(&self, events: &[Vec<u8>]) -> Result<i64> {
        // Statements have a bound-parameter limit; appenders send at most a few thousand.
        if events.len() > 8000 {
            let first = Box::pin(self.append_audit_impl(&events[..8000])).await?;
            Box::pin(self.append_audit_impl(&events[8000..])).await?;
            return Ok(first);
        }
        let insert = |first: i64| {
            let mut q = QueryBuilder::new("INSERT INTO audit_events (seq, event) ");
            let mut seq = first;
            q.push_values(events, |mut b, e| {
                b.push_bind(seq).push_bind(e.as_slice());
                seq += 1;
            });
            q
        };
        let next = |first: i64| first + events.len() as i64;
        // Fast path: the counter is known; one statement.
        let cached = *self.audit_next.lock().expect("audit counter");
        if let Some(first) = cached {
            match insert(first).build().execute(&self.audit).await {
                Ok(_) => {
                    *self.audit_next.lock().expect("audit counter") = Some(next(first));
                    return Ok(first);
                }
                // Another process appended meanwhile: take the slow path.
                Err(e) if unique_violation(&e) => {}
                Err(e) => {
                    *self.audit_next.lock().expect("audit counter") = None;
                    return Err(e.into());
                }
            }
        }
        // Slow path: read the end of the log under the write lock, then insert.
        *self.audit_next.lock().expect("audit counter") = None;
        let mut conn = self.audit.acquire().await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events")
            .fetch_one(&mut *tx)
            .await?;
        insert(first).build().execute(&mut *tx).await?;
        tx.commit().await?;
        *self.audit_next.lock().expect("audit counter") = Some(next(first));
        Ok(first)
    }
}

impl PgStore {
    pub async fn open(url: &str) -> Result<Self> {
        // No ping before every acquire: it would double the round trips of busy
        // connections.
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            // …but a connection idle for over a second is pinged first, so that after a
            // server restart (which takes longer than that) the pool replaces its dead
            // connections instead of failing one request with each.
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > Duration::from_secs(1) {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        Self::migrate(&pool).await?;
        Ok(PgStore {
            hot: crate::held::PgConns::new(options.clone(), 16, Duration::from_secs(10)),
            audit_conn: crate::held::PgConns::new(options, 1, Duration::from_secs(10))
                .ping_after(Duration::from_secs(1)),
            read: pool.clone(),
            write: pool,
            audit_next: std::sync::Mutex::new(None),
        })
    }

    /// PostgreSQL reads are network round trips: always through sqlx.
    fn direct(&self) -> Option<&crate::direct::Reader> {
        None
    }

    /// A connection for one hot-path query; call [`Done::done`] once it completed.
    async fn hot(&self) -> Result<crate::held::PgHeld<'_>> {
        self.hot.get().await
    }

    /// A hot or audit connection was found lost: closes the idle ones of both sets.
    fn hot_lost(&self) {
        self.hot.clear_idle();
        self.audit_conn.clear_idle();
    }

    fn audit_appender_impl(&self) -> Result<Option<Box<dyn AuditAppend>>> {
        Ok(None)
    }

    fn audit_reader(&self) -> &sqlx::PgPool {
        &self.read
    }

    fn audit_writer(&self) -> &sqlx::PgPool {
        &self.write
    }

    fn index_reader(&self) -> &sqlx::PgPool {
        &self.read
    }

    fn index_writer(&self) -> &sqlx::PgPool {
        &self.write
    }

    /// The postings travel as three arrays: one statement text for every batch, prepared once.
    async fn write_audit_index_impl(
        &self,
        from: i64,
        to: i64,
        batch: AuditIndexBatch,
    ) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        move_index_mark!(tx, from, to);
        let mut columns: [Vec<i64>; 3] = Default::default();
        for (key, word, bits) in batch.postings {
            columns[0].push(key);
            columns[1].push(word);
            columns[2].push(bits);
        }
        let [keys, words, bits] = columns;
        sqlx::query(&format!(
            "INSERT INTO audit_index_keys (key, word, bits) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]){MERGE_POSTING}"
        ))
        .bind(keys)
        .bind(words)
        .bind(bits)
        .execute(&mut *tx)
        .await?;
        commit_index_blocks!(tx, batch.blocks);
        Ok(true)
    }

    /// Nodes sharing the database append one at a time (advisory lock), so sequence numbers
    /// never collide; PostgreSQL's commit is durable (synchronous_commit = on). The end of
    /// the log is read by the INSERT's own statement, after the lock (READ COMMITTED takes
    /// a snapshot per statement), and the events travel as one `bytea[]`: one statement
    /// text for every batch size, prepared once, and one round trip fewer than a separate
    /// `SELECT MAX`.
    async fn append_audit_impl(&self, events: &[Vec<u8>]) -> Result<i64> {
        // Fast path: the end of the log is known (this node wrote it last): one statement,
        // committed on its own — one round trip instead of four. It takes the sequencer's
        // lock too (held until its implicit transaction commits), so it never slips in
        // between another node's reading of the log's end and its insert; the primary key
        // refuses it if another node appended since this one last did.
        let cached = *self.audit_next.lock().expect("audit counter");
        if let Some(first) = cached {
            let inserted = sqlx::query(
                "WITH sequencer AS (SELECT pg_advisory_xact_lock(7270010002)) \
                 INSERT INTO audit_events (seq, event) \
                 SELECT $2 + t.ord - 1, t.e \
                 FROM sequencer, unnest($1::bytea[]) WITH ORDINALITY AS t(e, ord)",
            )
            .bind(events)
            .bind(first);
            let mut conn = self.audit_conn.get().await?;
            let inserted = inserted.execute(&mut *conn).await;
            match inserted {
                Ok(_) => {
                    conn.done();
                    *self.audit_next.lock().expect("audit counter") =
                        Some(first + events.len() as i64);
                    return Ok(first);
                }
                Err(e) if unique_violation(&e) => {}
                Err(e) => {
                    *self.audit_next.lock().expect("audit counter") = None;
                    if crate::held::connection_lost(&e) {
                        // Not retried (the lost insert may have committed: its requests get
                        // 503), but neither the next group nor the reads meet idle dead ones.
                        self.hot_lost();
                    }
                    return Err(e.into());
                }
            }
        }
        *self.audit_next.lock().expect("audit counter") = None;
        // Slow path: the end of the log under the sequencer's lock. READ COMMITTED whatever
        // the server's default: under REPEATABLE READ the snapshot would predate the lock
        // and miss another node's last group.
        let mut conn = self.write.acquire().await?;
        let mut tx =
            sqlx::Connection::begin_with(&mut *conn, "BEGIN ISOLATION LEVEL READ COMMITTED")
                .await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7270010002)")
            .execute(&mut *tx)
            .await?;
        let first: i64 = sqlx::query_scalar(
            "WITH base AS (SELECT COALESCE(MAX(seq) + 1, 0) AS first FROM audit_events), \
             ins AS (INSERT INTO audit_events (seq, event) \
                     SELECT base.first + t.ord - 1, t.e \
                     FROM base, unnest($1::bytea[]) WITH ORDINALITY AS t(e, ord)) \
             SELECT first FROM base",
        )
        .bind(events)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        *self.audit_next.lock().expect("audit counter") = Some(first + events.len() as i64);
        Ok(first)
    }
}

/// The audit log's file beside a SQLite database: `custodia.db` → `custodia-audit.db`.
pub fn audit_file(db: &std::path::Path) -> std::path::PathBuf {
    sibling(db, "-audit")
}

/// The audit index's file beside a SQLite database: `custodia.db` →
/// `custodia-audit-index.db`. Derived data: deleting it (with the server stopped) makes the
/// next start index the whole log again.
pub fn audit_index_file(db: &std::path::Path) -> std::path::PathBuf {
    sibling(db, "-audit-index")
}

fn sibling(db: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = match name.strip_suffix(".db") {
        Some(stem) => format!("{stem}{suffix}.db"),
        None => format!("{name}{suffix}"),
    };
    db.with_file_name(file)
}

/// The end of a posting INSERT: the bits of a `(key, word)` already there are kept.
pub(crate) const MERGE_POSTING: &str =
    " ON CONFLICT (key, word) DO UPDATE SET bits = audit_index_keys.bits | excluded.bits";

/// One block's time range into the audit index, widened if the block is there already.
pub(crate) const UPSERT_INDEX_BLOCK: &str =
    "INSERT INTO audit_index_blocks (block, min_ms, max_ms) \
     VALUES ($1, $2, $3) ON CONFLICT (block) DO UPDATE SET \
     min_ms = CASE WHEN excluded.min_ms < audit_index_blocks.min_ms \
              THEN excluded.min_ms ELSE audit_index_blocks.min_ms END, \
     max_ms = CASE WHEN excluded.max_ms > audit_index_blocks.max_ms \
              THEN excluded.max_ms ELSE audit_index_blocks.max_ms END";

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Runs a read (`$query`, an expression using `$conn`, a `&mut` connection) on a hot
/// connection of `$store` and hands the connection back once it completed. A read that
/// fails because its connection was lost (the server restarted, a firewall dropped the idle
/// connection) runs once more on a fresh connection: reads are idempotent, and each idle
/// connection would otherwise fail one request after a restart. (Not for writes: whether a
/// lost write committed is unknown.)
macro_rules! hot_read {
    ($store:expr, |$conn:ident| $query:expr) => {{
        let mut retried = false;
        loop {
            let mut held = $store.hot().await?;
            let $conn = &mut *held;
            match $query.await {
                Ok(v) => {
                    held.done();
                    break v;
                }
                Err(e) if !retried && crate::held::connection_lost(&e) => {
                    // The idle ones most likely went the same way: the retry connects anew.
                    $store.hot_lost();
                    retried = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }};
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $backend:expr, $migration_lock:expr, $without_rowid:expr, $bytes:expr, $bulk_insert:expr,
     $use_lookup:literal, $use_unique:literal) => {
        impl $store {
            async fn migrate(pool: &sqlx::Pool<$db>) -> Result<()> {
                Self::migrate_with(pool, MIGRATIONS).await
            }

            async fn migrate_with(pool: &sqlx::Pool<$db>, list: &[(i64, &str)]) -> Result<()> {
                let mut tx = pool.begin().await?;
                if let Some(lock) = $migration_lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                sqlx::raw_sql(
                    "CREATE TABLE IF NOT EXISTS custodia_migrations \
                     (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .execute(&mut *tx)
                .await?;
                let applied: Vec<i64> =
                    sqlx::query_scalar("SELECT version FROM custodia_migrations")
                        .fetch_all(&mut *tx)
                        .await?;
                for (version, sql) in list {
                    if applied.contains(version) {
                        continue;
                    }
                    let sql = sql
                        .replace("/*WITHOUT_ROWID*/", $without_rowid)
                        .replace("__BYTES__", $bytes);
                    sqlx::raw_sql(&sql).execute(&mut *tx).await.map_err(|e| {
                        StoreError::Migration {
                            version: *version,
                            message: e.to_string(),
                        }
                    })?;
                    sqlx::query(
                        "INSERT INTO custodia_migrations (version, applied_at) VALUES ($1, $2)",
                    )
                    .bind(*version)
                    .bind(now_unix())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// Names the unique field that a failed insert collided on: a duplicate inside
            /// the batch itself, or a value another record already holds.
            async fn unique_conflict(
                &self,
                collection: &str,
                entries: &[(&str, &IndexEntry)],
            ) -> Result<String> {
                let mut seen = std::collections::HashSet::new();
                for (_, e) in entries.iter().filter(|(_, e)| e.unique) {
                    if !seen.insert((&e.field, &e.hash)) {
                        return Ok(e.field.clone());
                    }
                }
                for (record_id, e) in entries.iter().filter(|(_, e)| e.unique) {
                    let other: Option<String> = sqlx::query_scalar(
                        "SELECT record_id FROM blind_index \
                         WHERE collection = $1 AND field = $2 AND hash = $3 AND uniq = 1",
                    )
                    .bind(collection)
                    .bind(&e.field)
                    .bind(&e.hash)
                    .fetch_optional(&self.write)
                    .await?;
                    if other.is_some_and(|o| o != *record_id) {
                        return Ok(e.field.clone());
                    }
                }
                Ok(entries
                    .iter()
                    .find(|(_, e)| e.unique)
                    .map(|(_, e)| e.field.clone())
                    .unwrap_or_default())
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn get_meta(&self, key: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.read)
                    .await?)
            }

            async fn insert_meta(&self, key: &str, value: &str) -> Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn put_collection(
                &self,
                name: &str,
                schema_json: &str,
                expected_version: Option<i64>,
            ) -> Result<Option<i64>> {
                let r = match expected_version {
                    None => {
                        sqlx::query(
                            "INSERT INTO collections (name, schema_json, version, updated_at) \
                             VALUES ($1, $2, 1, $3) ON CONFLICT (name) DO NOTHING",
                        )
                        .bind(name)
                        .bind(schema_json)
                        .bind(now_unix())
                        .execute(&self.write)
                        .await?
                    }
                    Some(v) => {
                        sqlx::query(
                            "UPDATE collections SET schema_json = $1, version = version + 1, \
                             updated_at = $2 WHERE name = $3 AND version = $4",
                        )
                        .bind(schema_json)
                        .bind(now_unix())
                        .bind(name)
                        .bind(v)
                        .execute(&self.write)
                        .await?
                    }
                };
                Ok((r.rows_affected() == 1).then(|| expected_version.unwrap_or(0) + 1))
            }

            async fn get_collection(&self, name: &str) -> Result<Option<(String, i64)>> {
                let row = sqlx::query("SELECT schema_json, version FROM collections WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(match row {
                    Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
                    None => None,
                })
            }

            async fn list_collections(&self) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT name FROM collections ORDER BY name")
                    .fetch_all(&self.read)
                    .await?)
            }

            async fn keks(&self, collection: &str) -> Result<Vec<KekRow>> {
                let rows = sqlx::query(
                    "SELECT version, wrapped FROM keks WHERE collection = $1 ORDER BY version",
                )
                .bind(collection)
                .fetch_all(&self.write)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(KekRow {
                            version: r.try_get(0)?,
                            wrapped: r.try_get(1)?,
                        })
                    })
                    .collect()
            }

            async fn insert_kek(&self, collection: &str, version: i64, wrapped: &str) -> Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO keks (collection, version, wrapped, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (collection, version) DO NOTHING",
                )
                .bind(collection)
                .bind(version)
                .bind(wrapped)
                .bind(now_unix())
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn insert_records(&self, collection: &str, batch: &[NewRecord]) -> Result<()> {
                if batch.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write.begin().await?;
                for chunk in batch.chunks(500) {
                    let mut q = QueryBuilder::<$db>::new($bulk_insert);
                    q.push(
                        " INTO records (collection, id, version, tier, branch, fields, \
                         created_at, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, n| {
                        let r = &n.record;
                        b.push_bind(collection)
                            .push_bind(&r.id)
                            .push_bind(r.version)
                            .push_bind(&r.tier)
                            .push_bind(&r.branch)
                            .push_bind(&r.fields)
                            .push_bind(r.created_at)
                            .push_bind(r.updated_at);
                    });
                    let done = q.build().execute(&mut *tx).await?.rows_affected();
                    if done != chunk.len() as u64 {
                        tx.rollback().await?;
                        return Err(StoreError::Unique { field: "id".into() });
                    }
                    let mut q = QueryBuilder::<$db>::new($bulk_insert);
                    q.push(" INTO record_keys (collection, record_id, key_id, kek_version, wrapped) ");
                    q.push_values(chunk, |mut b, n| {
                        b.push_bind(collection)
                            .push_bind(&n.record.id)
                            .push_bind(&n.dek.key_id)
                            .push_bind(n.dek.kek_version)
                            .push_bind(&n.dek.wrapped);
                    });
                    let done = q.build().execute(&mut *tx).await?.rows_affected();
                    if done != chunk.len() as u64 {
                        tx.rollback().await?;
                        return Err(StoreError::Unique { field: "id".into() });
                    }
                }
                let mut entries: Vec<(&str, &IndexEntry)> = batch
                    .iter()
                    .flat_map(|n| n.index.iter().map(move |e| (n.record.id.as_str(), e)))
                    .collect();
                // Key order: inserts land next to each other in the B-tree.
                entries.sort_unstable_by(|a, b| (a.0, &a.1.field).cmp(&(b.0, &b.1.field)));
                for chunk in entries.chunks(1000) {
                    let mut q = QueryBuilder::<$db>::new($bulk_insert);
                    q.push(" INTO blind_index (collection, record_id, field, hash, uniq) ");
                    q.push_values(chunk, |mut b, (id, e)| {
                        b.push_bind(collection)
                            .push_bind(*id)
                            .push_bind(&e.field)
                            .push_bind(&e.hash)
                            .push_bind(e.unique as i64);
                    });
                    // A conflict is an error (PostgreSQL) or a skipped row (SQLite's
                    // `OR IGNORE`): either way the whole batch is refused.
                    let conflict = match q.build().execute(&mut *tx).await {
                        Ok(r) => r.rows_affected() != chunk.len() as u64,
                        Err(e) if unique_violation(&e) => true,
                        Err(e) => return Err(e.into()),
                    };
                    if conflict {
                        tx.rollback().await?;
                        let field = self.unique_conflict(collection, &entries).await?;
                        return Err(StoreError::Unique { field });
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_record(
                &self,
                collection: &str,
                id: &str,
            ) -> Result<Option<(RecordRow, Option<DekRow>)>> {
                if let Some(direct) = self.direct() {
                    return direct.get_record(collection, id);
                }
                let row = hot_read!(self, |conn| sqlx::query(crate::direct::RECORD_BY_ID)
                    .bind(collection)
                    .bind(id)
                    .fetch_optional(conn));
                row.map(|r| decode_record_row(&r)).transpose()
            }

            async fn get_records(
                &self,
                collection: &str,
                ids: &[String],
            ) -> Result<Vec<(RecordRow, Option<DekRow>)>> {
                if ids.is_empty() {
                    return Ok(vec![]);
                }
                if let Some(direct) = self.direct() {
                    return direct.get_records(collection, ids);
                }
                let query = || {
                    let mut q = QueryBuilder::<$db>::new(crate::direct::record_select!());
                    q.push_bind(collection).push(" AND r.id IN (");
                    let mut sep = q.separated(", ");
                    for id in ids {
                        sep.push_bind(id);
                    }
                    sep.push_unseparated(") ORDER BY r.id");
                    q
                };
                // A builder per attempt: a built query takes the builder's arguments.
                let mut q;
                let rows = hot_read!(self, |conn| {
                    q = query();
                    q.build().fetch_all(conn)
                });
                rows.iter().map(|r| decode_record_row(r)).collect()
            }

            async fn update_record(
                &self,
                collection: &str,
                id: &str,
                u: &RecordUpdate,
            ) -> Result<UpdateOutcome> {
                let mut tx = self.write.begin().await?;
                let r = sqlx::query(
                    "UPDATE records SET version = version + 1, tier = $1, branch = $2, \
                     fields = $3, updated_at = $4 \
                     WHERE collection = $5 AND id = $6 AND version = $7",
                )
                .bind(&u.tier)
                .bind(&u.branch)
                .bind(&u.fields)
                .bind(now_unix())
                .bind(collection)
                .bind(id)
                .bind(u.expected_version)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() == 0 {
                    let current: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM records WHERE collection = $1 AND id = $2",
                    )
                    .bind(collection)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    return Ok(match current {
                        Some(current) => UpdateOutcome::VersionMismatch { current },
                        None => UpdateOutcome::NotFound,
                    });
                }
                for (field, entry) in &u.index {
                    sqlx::query(
                        "DELETE FROM blind_index WHERE collection = $1 AND record_id = $2 AND field = $3",
                    )
                    .bind(collection)
                    .bind(id)
                    .bind(field)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(e) = entry {
                        let ins = sqlx::query(
                            "INSERT INTO blind_index (collection, field, hash, record_id, uniq) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(collection)
                        .bind(&e.field)
                        .bind(&e.hash)
                        .bind(id)
                        .bind(e.unique as i64)
                        .execute(&mut *tx)
                        .await;
                        if let Err(err) = ins {
                            tx.rollback().await?;
                            if unique_violation(&err) {
                                return Err(StoreError::Unique { field: e.field.clone() });
                            }
                            return Err(err.into());
                        }
                    }
                }
                tx.commit().await?;
                Ok(UpdateOutcome::Updated {
                    version: u.expected_version + 1,
                })
            }

            async fn delete_record(&self, collection: &str, id: &str) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                for sql in [
                    "DELETE FROM record_keys WHERE collection = $1 AND record_id = $2",
                    "DELETE FROM blind_index WHERE collection = $1 AND record_id = $2",
                ] {
                    sqlx::query(sql)
                        .bind(collection)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                let r = sqlx::query("DELETE FROM records WHERE collection = $1 AND id = $2")
                    .bind(collection)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }

            async fn count_records(&self, collection: &str) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE collection = $1")
                    .bind(collection)
                    .fetch_one(&self.read)
                    .await?)
            }

            async fn unique_hashes_present(
                &self,
                collection: &str,
                field: &str,
                hashes: &[&str],
            ) -> Result<Vec<String>> {
                let mut found = Vec::new();
                for chunk in hashes.chunks(1000) {
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT hash FROM blind_index WHERE uniq = 1 AND collection = ",
                    );
                    q.push_bind(collection)
                        .push(" AND field = ")
                        .push_bind(field)
                        .push(" AND hash IN (");
                    let mut sep = q.separated(", ");
                    for h in chunk {
                        sep.push_bind(*h);
                    }
                    sep.push_unseparated(")");
                    let rows = q.build().fetch_all(&self.write).await?;
                    for r in rows {
                        found.push(r.try_get(0)?);
                    }
                }
                Ok(found)
            }

            async fn search(
                &self,
                collection: &str,
                field: &str,
                hash: &str,
                unique: bool,
                limit: i64,
            ) -> Result<Vec<String>> {
                // A literal `uniq` so the planner can prove which partial index applies, and
                // no ORDER BY, which would tempt it into scanning the primary key instead.
                let sql = if unique {
                    concat!(
                        "SELECT record_id FROM blind_index",
                        $use_unique,
                        " WHERE collection = $1 AND field = $2 AND hash = $3 AND uniq = 1 LIMIT $4"
                    )
                } else {
                    concat!(
                        "SELECT record_id FROM blind_index",
                        $use_lookup,
                        " WHERE collection = $1 AND field = $2 AND hash = $3 AND uniq = 0 LIMIT $4"
                    )
                };
                if let Some(direct) = self.direct() {
                    let mut ids = direct.search(sql, collection, field, hash, limit)?;
                    ids.sort_unstable();
                    return Ok(ids);
                }
                let mut ids: Vec<String> = hot_read!(self, |conn| sqlx::query_scalar(sql)
                    .bind(collection)
                    .bind(field)
                    .bind(hash)
                    .bind(limit)
                    .fetch_all(conn));
                ids.sort_unstable();
                Ok(ids)
            }

            async fn deks_older_than(
                &self,
                collection: &str,
                version: i64,
                limit: i64,
            ) -> Result<Vec<(String, DekRow)>> {
                let rows = sqlx::query(
                    "SELECT record_id, key_id, kek_version, wrapped FROM record_keys \
                     WHERE collection = $1 AND kek_version < $2 ORDER BY record_id LIMIT $3",
                )
                .bind(collection)
                .bind(version)
                .bind(limit)
                .fetch_all(&self.write)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        Ok((
                            r.try_get(0)?,
                            DekRow {
                                key_id: r.try_get(1)?,
                                kek_version: r.try_get(2)?,
                                wrapped: r.try_get(3)?,
                            },
                        ))
                    })
                    .collect()
            }

            async fn rewrap_dek(
                &self,
                collection: &str,
                record_id: &str,
                old_version: i64,
                new: &DekRow,
            ) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE record_keys SET kek_version = $1, wrapped = $2 \
                     WHERE collection = $3 AND record_id = $4 AND kek_version = $5",
                )
                .bind(new.kek_version)
                .bind(&new.wrapped)
                .bind(collection)
                .bind(record_id)
                .bind(old_version)
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn insert_token(&self, token_hash: &str, name: &str, role: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_tokens (token_hash, name, role, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(name)
                .bind(role)
                .bind(now_unix())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRow>> {
                let row = sqlx::query("SELECT name, role FROM api_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(match row {
                    Some(r) => Some(TokenRow {
                        name: r.try_get(0)?,
                        role: r.try_get(1)?,
                    }),
                    None => None,
                })
            }

            async fn list_record_ids(
                &self,
                collection: &str,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM records WHERE collection = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(collection)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.read)
                .await?)
            }

            async fn put_principal(
                &self,
                kind: &str,
                name: &str,
                doc: &str,
                secret_hash: Option<&str>,
                expected_version: Option<i64>,
            ) -> Result<Option<i64>> {
                let r = match expected_version {
                    None => sqlx::query(
                        "INSERT INTO principals (kind, name, doc, secret_hash, version, updated_at) \
                         VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (kind, name) DO NOTHING",
                    )
                    .bind(kind)
                    .bind(name)
                    .bind(doc)
                    .bind(secret_hash)
                    .bind(now_unix())
                    .execute(&self.write)
                    .await?,
                    Some(v) => sqlx::query(
                        "UPDATE principals SET doc = $1, secret_hash = $2, version = version + 1, \
                         updated_at = $3 WHERE kind = $4 AND name = $5 AND version = $6",
                    )
                    .bind(doc)
                    .bind(secret_hash)
                    .bind(now_unix())
                    .bind(kind)
                    .bind(name)
                    .bind(v)
                    .execute(&self.write)
                    .await?,
                };
                Ok((r.rows_affected() == 1).then(|| expected_version.unwrap_or(0) + 1))
            }

            async fn get_principal(&self, kind: &str, name: &str) -> Result<Option<PrincipalRow>> {
                let row = sqlx::query(
                    "SELECT kind, name, doc, version FROM principals WHERE kind = $1 AND name = $2",
                )
                .bind(kind)
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
                row.map(|r| decode_principal(&r)).transpose()
            }

            async fn find_principal_by_secret(
                &self,
                secret_hash: &str,
            ) -> Result<Option<PrincipalRow>> {
                let row = sqlx::query(
                    "SELECT kind, name, doc, version FROM principals WHERE secret_hash = $1",
                )
                .bind(secret_hash)
                .fetch_optional(&self.read)
                .await?;
                row.map(|r| decode_principal(&r)).transpose()
            }

            async fn list_principals(&self, kind: &str) -> Result<Vec<PrincipalRow>> {
                let rows = sqlx::query(
                    "SELECT kind, name, doc, version FROM principals WHERE kind = $1 ORDER BY name",
                )
                .bind(kind)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(decode_principal).collect()
            }

            async fn delete_principal(&self, kind: &str, name: &str) -> Result<bool> {
                let r = sqlx::query("DELETE FROM principals WHERE kind = $1 AND name = $2")
                    .bind(kind)
                    .bind(name)
                    .execute(&self.write)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn insert_session(&self, s: &SessionRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, username, mfa, created_at, last_seen, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.token_hash)
                .bind(&s.username)
                .bind(s.mfa as i64)
                .bind(s.created_at)
                .bind(s.last_seen)
                .bind(s.revoked_at)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
                let row = sqlx::query(
                    "SELECT token_hash, username, mfa, created_at, last_seen, revoked_at \
                     FROM sessions WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?;
                Ok(match row {
                    Some(r) => Some(SessionRow {
                        token_hash: r.try_get(0)?,
                        username: r.try_get(1)?,
                        mfa: r.try_get::<i64, _>(2)? != 0,
                        created_at: r.try_get(3)?,
                        last_seen: r.try_get(4)?,
                        revoked_at: r.try_get(5)?,
                    }),
                    None => None,
                })
            }

            async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()> {
                sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2")
                    .bind(now)
                    .bind(token_hash)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn revoke_session(&self, token_hash: &str, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(token_hash)
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn revoke_user_sessions(&self, username: &str, now: i64) -> Result<u64> {
                let r = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE username = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(username)
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected())
            }

            async fn login_failures(&self, key: &str) -> Result<Option<(i64, i64, i64)>> {
                let row = sqlx::query(
                    "SELECT failures, locked_until, updated_at FROM login_failures WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&self.write)
                .await?;
                Ok(match row {
                    Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
                    None => None,
                })
            }

            async fn set_login_failures(
                &self,
                key: &str,
                failures: i64,
                locked_until: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO login_failures (key, failures, locked_until, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
                     failures = excluded.failures, locked_until = excluded.locked_until, \
                     updated_at = excluded.updated_at",
                )
                .bind(key)
                .bind(failures)
                .bind(locked_until)
                .bind(now_unix())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn clear_login_failures(&self, key: &str) -> Result<()> {
                sqlx::query("DELETE FROM login_failures WHERE key = $1")
                    .bind(key)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn insert_security_event(&self, e: &SecurityEvent) -> Result<()> {
                sqlx::query(
                    "INSERT INTO security_events (id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&e.id)
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.kind)
                .bind(&e.detail)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn security_events(&self, since: i64, limit: i64) -> Result<Vec<SecurityEvent>> {
                let rows = sqlx::query(
                    "SELECT id, at, actor, kind, detail FROM security_events \
                     WHERE at >= $1 ORDER BY at, id LIMIT $2",
                )
                .bind(since)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(SecurityEvent {
                            id: r.try_get(0)?,
                            at: r.try_get(1)?,
                            actor: r.try_get(2)?,
                            kind: r.try_get(3)?,
                            detail: r.try_get(4)?,
                        })
                    })
                    .collect()
            }

            async fn append_audit(&self, events: &[Vec<u8>]) -> Result<i64> {
                self.append_audit_impl(events).await
            }

            fn audit_appender(&self) -> Result<Option<Box<dyn AuditAppend>>> {
                self.audit_appender_impl()
            }

            async fn audit_events(&self, from: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>> {
                let rows = sqlx::query(
                    "SELECT seq, event FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2",
                )
                .bind(from)
                .bind(limit)
                .fetch_all(self.audit_reader())
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect()
            }

            async fn audit_count(&self) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
                    .fetch_one(self.audit_reader())
                    .await?)
            }

            async fn insert_audit_head(&self, h: &AuditHeadRow) -> Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO audit_heads (tree_size, root_hash, timestamp_ms, signature) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
                )
                .bind(h.tree_size)
                .bind(&h.root_hash)
                .bind(h.timestamp_ms)
                .bind(&h.signature)
                .execute(self.audit_writer())
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn audit_events_at(&self, seqs: &[i64]) -> Result<Vec<(i64, Vec<u8>)>> {
                let mut out = Vec::with_capacity(seqs.len());
                for chunk in seqs.chunks(1000) {
                    let mut q = QueryBuilder::new("SELECT seq, event FROM audit_events WHERE seq IN (");
                    let mut list = q.separated(", ");
                    for seq in chunk {
                        list.push_bind(*seq);
                    }
                    q.push(") ORDER BY seq");
                    for r in q.build().fetch_all(self.audit_reader()).await? {
                        out.push((r.try_get(0)?, r.try_get(1)?));
                    }
                }
                Ok(out)
            }

            async fn audit_index_upto(&self) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT upto FROM audit_index_state WHERE id = 1")
                    .fetch_optional(self.index_reader())
                    .await?
                    .unwrap_or(0))
            }

            async fn write_audit_index(
                &self,
                from: i64,
                to: i64,
                batch: AuditIndexBatch,
            ) -> Result<bool> {
                self.write_audit_index_impl(from, to, batch).await
            }

            async fn reset_audit_index(&self) -> Result<()> {
                let mut tx = self.index_writer().begin().await?;
                for sql in [
                    "UPDATE audit_index_state SET upto = 0 WHERE id = 1",
                    "DELETE FROM audit_index_keys",
                    "DELETE FROM audit_index_blocks",
                ] {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn audit_index_find(
                &self,
                keys: &[i64],
                lo: i64,
                hi: i64,
                words: i64,
            ) -> Result<(Vec<i64>, Option<i64>)> {
                let Some((first, rest)) = keys.split_first() else {
                    return Ok((vec![], None));
                };
                if lo >= hi {
                    return Ok((vec![], None));
                }
                let (lo_word, hi_word) = (audit_index_bit(lo).0, audit_index_bit(hi - 1).0);
                // The first key's words in order, each ANDed with the others' same word
                // (`CROSS JOIN` keeps SQLite's join order: it has no statistics to choose by).
                let mut q = QueryBuilder::new("SELECT k0.word, k0.bits");
                for i in 1..keys.len() {
                    q.push(format!(" & k{i}.bits"));
                }
                q.push(" FROM audit_index_keys k0");
                for i in 1..keys.len() {
                    q.push(format!(" CROSS JOIN audit_index_keys k{i}"));
                }
                q.push(" WHERE k0.key = ")
                    .push_bind(*first)
                    .push(" AND k0.word >= ")
                    .push_bind(lo_word)
                    .push(" AND k0.word <= ")
                    .push_bind(hi_word);
                for (i, key) in rest.iter().enumerate() {
                    let i = i + 1;
                    q.push(format!(" AND k{i}.key = "))
                        .push_bind(*key)
                        .push(format!(" AND k{i}.word = k0.word"));
                }
                q.push(" ORDER BY k0.word LIMIT ").push_bind(words);
                let rows = q.build().fetch_all(self.index_reader()).await?;
                let mut seqs = vec![];
                let mut last = None;
                for r in &rows {
                    let (word, bits): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                    last = Some(word);
                    let mut b = bits as u64;
                    while b != 0 {
                        let seq = word * AUDIT_INDEX_WORD + i64::from(b.trailing_zeros());
                        if (lo..hi).contains(&seq) {
                            seqs.push(seq);
                        }
                        b &= b - 1;
                    }
                }
                let next = last
                    .filter(|_| rows.len() as i64 == words)
                    .map(|w| (w + 1) * AUDIT_INDEX_WORD);
                Ok((seqs, next))
            }

            async fn audit_index_count(&self, key: i64, lo: i64, hi: i64, cap: i64) -> Result<i64> {
                if lo >= hi {
                    return Ok(0);
                }
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM audit_index_keys \
                     WHERE key = $1 AND word >= $2 AND word <= $3 LIMIT $4) AS t",
                )
                .bind(key)
                .bind(audit_index_bit(lo).0)
                .bind(audit_index_bit(hi - 1).0)
                .bind(cap)
                .fetch_one(self.index_reader())
                .await?)
            }

            async fn audit_index_span(&self, since: i64, until: i64) -> Result<Option<(i64, i64)>> {
                let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT MIN(block), MAX(block) FROM audit_index_blocks \
                     WHERE max_ms >= $1 AND min_ms <= $2",
                )
                .bind(since)
                .bind(until)
                .fetch_one(self.index_reader())
                .await?;
                Ok(lo
                    .zip(hi)
                    .map(|(lo, hi)| {
                        // (Stored rows are not trusted: no overflow on a forged block number.)
                        (
                            lo.saturating_mul(AUDIT_INDEX_BLOCK),
                            hi.saturating_add(1).saturating_mul(AUDIT_INDEX_BLOCK),
                        )
                    }))
            }

            async fn audit_index_holds(&self, postings: &[(i64, i64, i64)]) -> Result<i64> {
                let mut held = 0i64;
                for chunk in postings.chunks(300) {
                    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM audit_index_keys WHERE ");
                    for (i, (key, word, bits)) in chunk.iter().enumerate() {
                        if i > 0 {
                            q.push(" OR ");
                        }
                        q.push("(key = ")
                            .push_bind(*key)
                            .push(" AND word = ")
                            .push_bind(*word)
                            .push(" AND (bits & ")
                            .push_bind(*bits)
                            .push(") = ")
                            .push_bind(*bits)
                            .push(")");
                    }
                    let n: i64 = q.build_query_scalar().fetch_one(self.index_reader()).await?;
                    held += n;
                }
                Ok(held)
            }

            async fn audit_index_totals(&self, upto: i64) -> Result<(i64, Vec<(i64, i64, i64)>)> {
                // Page by page in key order; the word holding `upto` counts only the bits
                // below it.
                let (top, top_bit) = audit_index_bit(upto);
                let mut entries = 0i64;
                let mut after: Option<(i64, i64)> = None;
                loop {
                    let mut q = QueryBuilder::new(
                        "SELECT key, word, bits FROM audit_index_keys WHERE word <= ",
                    );
                    q.push_bind(top);
                    if let Some((key, word)) = after {
                        q.push(" AND (key > ")
                            .push_bind(key)
                            .push(" OR (key = ")
                            .push_bind(key)
                            .push(" AND word > ")
                            .push_bind(word)
                            .push("))");
                    }
                    q.push(" ORDER BY key, word LIMIT 10000");
                    let rows = q.build().fetch_all(self.index_reader()).await?;
                    for r in &rows {
                        let (key, word, bits): (i64, i64, i64) =
                            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                        let bits = bits as u64;
                        let counted = if word == top { bits & ((top_bit as u64) - 1) } else { bits };
                        entries += i64::from(counted.count_ones());
                        after = Some((key, word));
                    }
                    if rows.len() < 10000 {
                        break;
                    }
                }
                let blocks = sqlx::query_as(
                    "SELECT block, min_ms, max_ms FROM audit_index_blocks ORDER BY block",
                )
                .fetch_all(self.index_reader())
                .await?;
                Ok((entries, blocks))
            }

            async fn audit_heads(&self) -> Result<Vec<AuditHeadRow>> {
                let rows = sqlx::query(
                    "SELECT tree_size, root_hash, timestamp_ms, signature FROM audit_heads \
                     ORDER BY tree_size",
                )
                .fetch_all(self.audit_reader())
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(AuditHeadRow {
                            tree_size: r.try_get(0)?,
                            root_hash: r.try_get(1)?,
                            timestamp_ms: r.try_get(2)?,
                            signature: r.try_get(3)?,
                        })
                    })
                    .collect()
            }
        }
    };
}

fn decode_principal<R>(r: &R) -> Result<PrincipalRow>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(PrincipalRow {
        kind: r.try_get(0)?,
        name: r.try_get(1)?,
        doc: r.try_get(2)?,
        version: r.try_get(3)?,
    })
}

fn decode_record_row<R>(r: &R) -> Result<(RecordRow, Option<DekRow>)>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(crate::direct::decode_record_columns!(r, try_get))
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    Backend::Sqlite,
    None::<&str>,
    "WITHOUT ROWID",
    "BLOB",
    // A skipped row is detected by its count and refuses the batch; `OR IGNORE` spares SQLite
    // the statement journal (a copy of every page a multi-row INSERT touches, kept to undo
    // just that statement on an abort).
    "INSERT OR IGNORE",
    // Without statistics SQLite's planner can prefer a primary-key range scan over the
    // partial indexes; name them.
    " INDEXED BY blind_index_lookup",
    " INDEXED BY blind_index_unique"
);
sql_store!(
    PgStore,
    sqlx::Postgres,
    Backend::Postgres,
    Some("SELECT pg_advisory_xact_lock(7270010001)"),
    "",
    "BYTEA",
    "INSERT",
    "",
    ""
);
