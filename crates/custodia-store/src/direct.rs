//! SQLite point reads on the caller's thread.
//!
//! sqlx runs every SQLite connection on a worker thread of its own and hands each query
//! over through a channel: two thread wake-ups per query. For a record read that costs more
//! CPU than the query itself (a profile of the HTTP read benchmark put 35 % of the server's
//! CPU in sqlx's SQLite threads, three quarters of it in the kernel switching threads). The
//! hot reads — a record by id, a batch of records, a blind-index lookup — therefore go
//! through a small pool of read-only connections opened with rusqlite (which links the same
//! libsqlite3-sys as sqlx) and run where they are called. They are point lookups served from
//! SQLite's page cache, a few microseconds each, so running them on an async worker is cheaper
//! than any hand-off. Everything else, every write and PostgreSQL stay on sqlx.
//! docs/storage.md records the decision.

use crate::{DekRow, RecordRow, Result, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The record SELECT shared with the sqlx path (`$1`-style parameters work in both), up to
/// the collection's value.
macro_rules! record_select {
    () => {
        "SELECT r.id, r.version, r.tier, r.branch, r.fields, r.created_at, r.updated_at, \
         k.key_id, k.kek_version, k.wrapped \
         FROM records r LEFT JOIN record_keys k \
         ON k.collection = r.collection AND k.record_id = r.id \
         WHERE r.collection = "
    };
}
pub(crate) use record_select;

/// A row of [`record_select!`] as a record and its key, with the getter of either library
/// (`get` for rusqlite, `try_get` for sqlx): the column order lives here once.
macro_rules! decode_record_columns {
    ($r:expr, $get:ident) => {
        (
            RecordRow {
                id: $r.$get(0)?,
                version: $r.$get(1)?,
                tier: $r.$get(2)?,
                branch: $r.$get(3)?,
                fields: $r.$get(4)?,
                created_at: $r.$get(5)?,
                updated_at: $r.$get(6)?,
            },
            DekRow::joined($r.$get(7)?, $r.$get(8)?, $r.$get(9)?),
        )
    };
}
pub(crate) use decode_record_columns;

pub(crate) const RECORD_BY_ID: &str = concat!(record_select!(), "$1 AND r.id = $2");

/// Connections kept for reuse; more may be open at a moment, the rest are closed on return.
const KEEP: usize = 8;

/// A read transaction is kept open across reads for at most this long (see [`Reader`]).
const HOLD_MAX: Duration = Duration::from_millis(10);

/// How long the WAL must go without a commit before the sweeper checkpoints it, so that
/// reads can hold their transactions again (see [`Reader`]).
const QUIET: Duration = Duration::from_millis(100);

/// How long the sweeper waits before it tries to checkpoint again after a failure.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(60);

/// Bytes at the start of the WAL index (`-shm`) that change with every commit: its header,
/// twice (<https://www.sqlite.org/walformat.html>, "The WAL-Index Header").
const SHM_HEADER: usize = 96;

/// The WAL index as a read finds it.
struct ShmState {
    header: [u8; SHM_HEADER],
    /// Every frame of the WAL is in the database file (`mxFrame == nBackfill`): a read
    /// transaction begun now uses read slot 0, which does not keep the WAL from starting
    /// over; it keeps checkpoints from copying frames committed after it began, until it
    /// ends (at the next read, or 10–20 ms after it began, by the sweeper).
    settled: bool,
}

/// Reads the WAL index's header and the checkpoint's progress (`nBackfill`, the first field
/// after the two header copies) with one `pread`. Both are in the host's byte order.
fn read_shm(shm: &std::fs::File) -> Option<ShmState> {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; SHM_HEADER + 4];
    shm.read_exact_at(&mut b, 0).ok()?;
    let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut header = [0u8; SHM_HEADER];
    header.copy_from_slice(&b[..SHM_HEADER]);
    Some(ShmState {
        header,
        // mxFrame is at byte 16 of the header.
        settled: u32_at(16) == u32_at(SHM_HEADER),
    })
}

/// A pooled connection and the read transaction it holds open, if any.
struct Pooled {
    conn: Connection,
    /// The WAL index's header read just before the transaction began, and when.
    held: Option<([u8; SHM_HEADER], std::time::Instant)>,
}

impl Pooled {
    /// Ends the held read transaction, if any.
    fn release(&mut self) {
        self.held = None;
        if !self.conn.is_autocommit() {
            // A read transaction: nothing to undo, and a failure leaves the connection
            // as it was (it is then closed with the transaction, see `with`).
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// What the readers and their sweeper thread share.
struct Shared {
    idle: Mutex<Vec<Pooled>>,
    /// The `-shm` file, opened at the first read that finds it (SQLite creates it); `None`
    /// when the database is not in WAL mode.
    shm: std::sync::OnceLock<Option<std::fs::File>>,
    /// When to try opening the `-shm` file again after it could not be.
    shm_retry: Mutex<Option<std::time::Instant>>,
    /// The sweeper sleeps until woken (nothing held, nothing to checkpoint).
    sweeper_asleep: std::sync::atomic::AtomicBool,
    /// A read found the WAL not wholly checkpointed.
    unsettled: std::sync::atomic::AtomicBool,
}

/// Point reads on a small pool of read-only connections.
///
/// Beginning and ending a read transaction costs two locks on the WAL index (`fcntl` and a
/// mutex shared by the connections of the process): under the HTTP read benchmark that was
/// 13 % of the workers' CPU, more than the query. A connection therefore keeps its read
/// transaction open from one read to the next, for as long as no commit happened since: the
/// WAL index's header, which every commit of any connection or process rewrites before its
/// write lock is released (and so before the writer is told it committed), is read with one
/// `pread` and compared with the copy taken before the transaction began. Unchanged, the held
/// snapshot is exactly what a new one would be; changed, the transaction is ended and a new
/// one begun. So a read sees every commit that completed before it, as before.
///
/// A held transaction must not keep the WAL from being checkpointed and starting over: a
/// transaction on one of SQLite's read slots 1..N keeps the WAL from starting over, and one
/// with an older snapshot also stops a checkpoint short of the frames after it. Under steady
/// reads with commits every few milliseconds, that made the WAL grow without end (a test
/// measured 12.5 MB where it should stay near 0.4 MB). So a transaction is held only when it
/// begins on read slot 0, which SQLite gives when the WAL is wholly checkpointed
/// (`settled`): such a reader reads the database file alone and blocks nothing but the
/// copying of frames committed after it, which it gives up on its next read (the header
/// changed) or after [`HOLD_MAX`] idle, by a sweeper thread. While the WAL holds frames that
/// are not in the database file, each read has its own transaction, as before.
///
/// The server's writer checkpoints only every 16,384 frames, so a read-mostly service could
/// stay unsettled for good after a few writes. The sweeper therefore also checkpoints
/// (`PASSIVE`: it waits for no one) once the WAL has seen no commit for [`QUIET`] while reads
/// found it unsettled. Where the WAL index cannot be read (not WAL mode), every read has its
/// own transaction.
pub(crate) struct Reader {
    path: PathBuf,
    shared: std::sync::Arc<Shared>,
    /// Wakes the sweeper when it sleeps and there is work for it.
    sweep: std::sync::mpsc::Sender<()>,
}

impl Reader {
    /// Opens one connection now so that a file that cannot be read fails at start-up.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let shared = std::sync::Arc::new(Shared {
            idle: Mutex::new(Vec::new()),
            shm: std::sync::OnceLock::new(),
            shm_retry: Mutex::new(None),
            sweeper_asleep: std::sync::atomic::AtomicBool::new(false),
            unsettled: std::sync::atomic::AtomicBool::new(false),
        });
        let (sweep, woken) = std::sync::mpsc::channel();
        let weak = std::sync::Arc::downgrade(&shared);
        let file = path.to_path_buf();
        std::thread::Builder::new()
            .name("custodia-read-sweep".into())
            .spawn(move || Sweeper::new(file).run(weak, woken))
            .map_err(|e| StoreError::Direct(e.to_string()))?;
        let reader = Reader {
            path: path.to_path_buf(),
            shared,
            sweep,
        };
        let first = reader.connect()?;
        reader
            .shared
            .idle
            .lock()
            .expect("reader pool")
            .push(Pooled {
                conn: first,
                held: None,
            });
        Ok(reader)
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(direct_error)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(direct_error)?;
        conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;")
            .map_err(direct_error)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// The WAL index as it is now; `None` if there is no WAL index to read.
    fn shm_state(&self, conn: &Connection) -> Option<ShmState> {
        if let Some(shm) = self.shared.shm.get() {
            return read_shm(shm.as_ref()?);
        }
        // The first read, or the `-shm` file could not be opened before: tried again at
        // most once a second.
        {
            let mut next = self.shared.shm_retry.lock().expect("shm retry");
            let now = std::time::Instant::now();
            if next.is_some_and(|t| now < t) {
                return None;
            }
            *next = Some(now + Duration::from_secs(1));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            let _ = self.shared.shm.set(None);
            return None;
        }
        // Beside the file SQLite opened (it resolves symbolic links), not the name given.
        let mut p = conn
            .path()
            .filter(|p| !p.is_empty())
            .map(std::ffi::OsString::from)
            .unwrap_or_else(|| self.path.as_os_str().to_owned());
        p.push("-shm");
        // Not remembered when it fails: a read tries again (see above).
        let file = std::fs::File::open(p).ok()?;
        let _ = self.shared.shm.set(Some(file));
        read_shm(self.shared.shm.get()?.as_ref()?)
    }

    /// Wakes the sweeper if it sleeps.
    fn wake_sweeper(&self) {
        if self
            .shared
            .sweeper_asleep
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let _ = self.sweep.send(());
        }
    }

    /// Runs `f` on an idle connection (or a new one) inside a read transaction that may be
    /// one it already held (see [`Reader`]), then returns the connection.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        use std::sync::atomic::Ordering::SeqCst;
        let pooled = self.shared.idle.lock().expect("reader pool").pop();
        let mut p = match pooled {
            Some(p) => p,
            None => Pooled {
                conn: self.connect()?,
                held: None,
            },
        };
        // Read before any new transaction begins: a commit between the two makes the copy
        // older than the snapshot, never newer (the next read then begins again).
        let now = self.shm_state(&p.conn);
        let current = matches!((&p.held, &now),
            (Some((was, since)), Some(is)) if *was == is.header && since.elapsed() < HOLD_MAX);
        if !current {
            p.release();
            match now {
                // A BEGIN that fails leaves this read on a transaction of its own, as before.
                Some(s) if s.settled && p.conn.execute_batch("BEGIN").is_ok() => {
                    p.held = Some((s.header, std::time::Instant::now()));
                }
                Some(s) if !s.settled && !self.shared.unsettled.load(SeqCst) => {
                    self.shared.unsettled.store(true, SeqCst);
                    self.wake_sweeper();
                }
                _ => {}
            }
        }
        let out = f(&p.conn).map_err(direct_error);
        if out.is_err() {
            p.release();
        } else if let (false, Some((before, _))) = (current, &p.held) {
            // A new transaction takes its read slot at its first read, not at `BEGIN`. A
            // commit in between (or one half-written when the header was read) may have put
            // it on a slot other than 0: then the header has changed, or is no longer
            // settled, and the transaction is not kept.
            let kept =
                matches!(self.shm_state(&p.conn), Some(s) if s.settled && s.header == *before);
            if !kept {
                p.release();
            }
        }
        if p.held.is_some() == p.conn.is_autocommit() {
            // Out of step (a failed ROLLBACK): not reused.
            return out;
        }
        let held = p.held.is_some();
        {
            let mut idle = self.shared.idle.lock().expect("reader pool");
            if idle.len() < KEEP {
                idle.push(p);
            }
        }
        if held {
            self.wake_sweeper();
        }
        out
    }

    pub(crate) fn get_record(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<Option<(RecordRow, Option<DekRow>)>> {
        self.with(|c| {
            let mut st = c.prepare_cached(RECORD_BY_ID)?;
            st.query_row((collection, id), decode_record).optional()
        })
    }

    pub(crate) fn get_records(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<(RecordRow, Option<DekRow>)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        self.with(|c| {
            // `?` numbers itself after the `$1` before it.
            let mut sql = String::with_capacity(300 + ids.len() * 3);
            sql.push_str(concat!(record_select!(), "$1 AND r.id IN (?"));
            sql.push_str(&", ?".repeat(ids.len() - 1));
            sql.push_str(") ORDER BY r.id");
            // Batches of one size recur (a page of search results): cached like the rest.
            let mut st = c.prepare_cached(&sql)?;
            st.raw_bind_parameter(1, collection)?;
            for (i, id) in ids.iter().enumerate() {
                st.raw_bind_parameter(i + 2, id.as_str())?;
            }
            let mut rows = st.raw_query();
            let mut out = Vec::with_capacity(ids.len());
            while let Some(row) = rows.next()? {
                out.push(decode_record(row)?);
            }
            Ok(out)
        })
    }

    pub(crate) fn search(
        &self,
        sql: &str,
        collection: &str,
        field: &str,
        hash: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare_cached(sql)?;
            let ids = st.query_map((collection, field, hash, limit), |r| r.get(0))?;
            ids.collect()
        })
    }
}

/// The thread beside a [`Reader`]: it ends the read transactions that idle connections have
/// held for [`HOLD_MAX`], and checkpoints a WAL that reads found unsettled once it has seen no
/// commit for [`QUIET`]. It looks every [`HOLD_MAX`] while it has either to do, sleeps until
/// woken otherwise (see `Reader::with`), and stops with its [`Reader`].
struct Sweeper {
    path: PathBuf,
    /// A read-write connection for checkpoints, opened at the first one.
    checkpoints: Option<Connection>,
    /// When the last checkpoint failed, if it did.
    failed_at: Option<std::time::Instant>,
    /// While waiting for the WAL to go quiet: its header, and since when it has not changed.
    watching: Option<([u8; SHM_HEADER], std::time::Instant)>,
}

impl Sweeper {
    fn new(path: PathBuf) -> Sweeper {
        Sweeper {
            path,
            checkpoints: None,
            failed_at: None,
            watching: None,
        }
    }

    fn run(mut self, shared: std::sync::Weak<Shared>, woken: std::sync::mpsc::Receiver<()>) {
        use std::sync::atomic::Ordering::SeqCst;
        use std::sync::mpsc::RecvTimeoutError;
        let mut holding = false;
        loop {
            if holding || self.watching.is_some() {
                if let Err(RecvTimeoutError::Disconnected) = woken.recv_timeout(HOLD_MAX) {
                    return;
                }
            } else {
                let Some(s) = shared.upgrade() else { return };
                s.sweeper_asleep.store(true, SeqCst);
                // A read that came before the flag was set did not wake us: look first.
                let work = s.unsettled.load(SeqCst)
                    || s.idle
                        .lock()
                        .expect("reader pool")
                        .iter()
                        .any(|p| p.held.is_some());
                drop(s);
                if !work && woken.recv().is_err() {
                    return;
                }
                let Some(s) = shared.upgrade() else { return };
                s.sweeper_asleep.store(false, SeqCst);
            }
            while woken.try_recv().is_ok() {}
            let Some(s) = shared.upgrade() else { return };
            holding = sweep_held(&s);
            if s.unsettled.swap(false, SeqCst) || self.watching.is_some() {
                let state = s.shm.get().and_then(|f| f.as_ref()).and_then(read_shm);
                self.settle(state);
            }
        }
    }

    /// Checkpoints the WAL once it has been unsettled and without a commit for [`QUIET`].
    fn settle(&mut self, state: Option<ShmState>) {
        let Some(state) = state.filter(|s| !s.settled) else {
            self.watching = None;
            return;
        };
        match self.watching {
            Some((header, since)) if header == state.header => {
                if since.elapsed() >= QUIET {
                    self.checkpoint();
                    // If it could not copy everything (a read was in the way), reads say
                    // so again and the next try waits for another quiet spell.
                    self.watching = None;
                }
            }
            _ => self.watching = Some((state.header, std::time::Instant::now())),
        }
    }

    fn checkpoint(&mut self) {
        // After a failure (a read-only file or file system, say) the next try waits a minute:
        // reads then simply do not hold their transactions.
        if self
            .failed_at
            .is_some_and(|t| t.elapsed() < CHECKPOINT_RETRY)
        {
            return;
        }
        if self.checkpoints.is_none() {
            self.checkpoints = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| tracing::debug!(error = %e, "checkpoint connection"))
            .ok();
        }
        let done = match &self.checkpoints {
            Some(c) => c
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(|e| tracing::debug!(error = %e, "idle checkpoint of the records file"))
                .is_ok(),
            None => false,
        };
        if !done {
            self.checkpoints = None;
            self.failed_at = Some(std::time::Instant::now());
        }
    }
}

/// Ends the transactions idle connections have held for [`HOLD_MAX`]; whether some are
/// still held.
fn sweep_held(s: &Shared) -> bool {
    let mut idle = s.idle.lock().expect("reader pool");
    let mut holding = false;
    for p in idle.iter_mut() {
        match p.held {
            Some((_, since)) if since.elapsed() >= HOLD_MAX => p.release(),
            Some(_) => holding = true,
            None => {}
        }
    }
    // A connection whose ROLLBACK failed is still in a transaction: not reused.
    idle.retain(|p| p.held.is_some() != p.conn.is_autocommit());
    holding
}

fn decode_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RecordRow, Option<DekRow>)> {
    Ok(decode_record_columns!(r, get))
}

fn direct_error(e: rusqlite::Error) -> StoreError {
    StoreError::Direct(e.to_string())
}

/// Appends to the SQLite audit file on its own connection (`synchronous=FULL`: one fsync
/// per commit). Each batch is one `BEGIN IMMEDIATE` transaction that reads the end of the
/// log under the write lock and inserts after it, so another process appending to the same
/// file is serialized, not collided with.
///
/// It never checkpoints: a checkpoint inside a commit copies the WAL into the database file
/// and syncs it (up to a second for a large WAL here) while every request waits for that
/// commit. A thread of its own checkpoints instead, passively (beside the appends, never
/// blocking them), every second; it ends when the appender is dropped. A passive
/// checkpoint copies only the frames that exist when it starts, and SQLite restarts the
/// WAL only when a write finds all of it copied, so under appends without a pause the WAL
/// would grow for as long as they last. Past [`WAL_LIMIT_FRAMES`], when a reader's snapshot
/// kept the passive checkpoint from copying everything, the thread runs a `RESTART`
/// checkpoint, which waits for the appender between two commits, copies the rest and makes
/// the next commit write from the start of the WAL again. Past [`WAL_CAP`] times the limit
/// in any case, the appender itself copies the rest between two commits, to the same effect
/// (a `RESTART` from the thread lost the write lock to appends without a pause). The limit is 256 MB of 4 KiB pages (~450,000 events of ~560 bytes). A `RESTART`
/// checkpoint holds the appender for the frames the last passive one had not copied and a sync of the file; at
/// 64 MB that came every ~6 s under saturated load and showed in the p99 of the HTTP read.
///
/// Why not start the WAL over at every limit (tried 2026-11-30): without the cap, appends
/// with no pause and no reader (`bench audit`) grew the WAL to 2 GB; but starting it over
/// whenever it passed the limit — by `RESTART`, or by the appender copying the small tail
/// left by repeated passive checkpoints — tripled the saturated HTTP read's p99 (4–5 ms to
/// 16–28 ms over three runs each, though the holds themselves took 0.5–45 ms): commits that
/// rewrite the WAL's old pages seem slower here than commits that extend the file.
const WAL_LIMIT_FRAMES: i64 = 65536;

/// Past this many times [`WAL_LIMIT_FRAMES`] (1 GB) the WAL is restarted even with no reader
/// holding it back.
const WAL_CAP: i64 = 4;

/// Before the appender restarts a WAL past its cap, the checkpoint thread runs up to this
/// many more passive passes, until fewer than [`WRAP_TAIL`] frames are left uncopied.
const WRAP_PASSES: usize = 4;

/// See [`WRAP_PASSES`]: ~4 MB.
const WRAP_TAIL: i64 = 1024;

pub(crate) struct AuditAppender {
    conn: Connection,
    _checkpointer: std::sync::mpsc::Sender<()>,
    /// Times the WAL was copied whole so that the next commit writes from its start.
    restarts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Set by the checkpoint thread when the WAL passed its cap.
    wrap: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// A read-write connection with a 10 s busy timeout, then `pragmas`.
fn open_writer(path: &Path, pragmas: &str) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(direct_error)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(direct_error)?;
    conn.execute_batch(pragmas).map_err(direct_error)?;
    Ok(conn)
}

/// A writer of the audit file whose WAL restarts past `wal_limit` frames (see
/// [`WAL_LIMIT_FRAMES`]).
///
/// Its `journal_size_limit` is [`WAL_KEEP`] times that limit (1.5 GB by default), above the
/// size at which the WAL is restarted in any case, so that a restart does not cut the file
/// back. SQLite cuts it back in the first commit after a restart, and on this kind of disk
/// (ext4, virtio) that commit took 450–495 ms after the WAL had reached ~1.1 GB: every request
/// waiting on it showed in the p99 (2026-12-04). Kept at its size, the WAL is overwritten in
/// place, as PostgreSQL recycles its WAL segments up to `max_wal_size` (1 GB by default). Only
/// a WAL that a long-held reader let grow past the keep is cut back.
fn open_audit_writer(path: &Path, wal_limit: i64) -> Result<Connection> {
    let keep = WAL_KEEP * wal_limit * 4096;
    open_writer(
        path,
        &format!(
            "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA journal_size_limit = {keep}; \
             PRAGMA cache_size = -32768; PRAGMA secure_delete = ON;"
        ),
    )
}

/// Bytes of the audit WAL written (as zeros) before the first append, so that the first
/// commits overwrite rather than extend it.
const WAL_PREFILL: u64 = 64 << 20;

/// The audit WAL file keeps up to this many times its limit of frames across restarts (see
/// [`open_audit_writer`]): above the cap at which it is restarted even without a reader.
const WAL_KEEP: i64 = WAL_CAP + 2;

/// The WAL is prefilled only where the disk has this many times [`WAL_PREFILL`] free.
const PREFILL_ROOM: u64 = 8;

/// Extends the audit WAL with zeros to [`WAL_PREFILL`] bytes, under the write lock (no other
/// connection, of this process or another, appends meanwhile), so that commits overwrite
/// blocks the file already has. A commit that extends the file also changes its size, and
/// then `fdatasync` writes the inode as well: on this kind of disk (ext4, virtio) a second
/// synchronous write per group commit. SQLite reads a WAL's frames up to the first whose
/// salt and checksum do not match, so zeros past the last frame are never taken for one (it
/// leaves old frames past the end itself when it starts the WAL over). Best effort: on any
/// error (a full disk) the WAL simply grows as it would have.
fn prefill_wal(conn: &mut Connection, path: &Path, size: u64) {
    let wal = {
        let mut p = path.as_os_str().to_owned();
        p.push("-wal");
        std::path::PathBuf::from(p)
    };
    let fill = || -> std::io::Result<u64> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&wal)?;
        let mut at = file.metadata()?.len();
        let fs = rustix::fs::fstatvfs(&file)?;
        if fs.f_bavail.saturating_mul(fs.f_frsize) < PREFILL_ROOM * size {
            return Err(std::io::Error::other("too little free space"));
        }
        let zeros = vec![0u8; 1 << 20];
        let from = at;
        while at < size {
            let n = zeros.len().min((size - at) as usize);
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        file.sync_data()?;
        Ok(at - from)
    };
    let filled = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|tx| {
            let filled = fill();
            tx.rollback()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            filled
        });
    match filled {
        Ok(bytes) => tracing::debug!(target: "custodia::audit", bytes, "audit WAL prefilled"),
        Err(e) => tracing::info!(target: "custodia::audit", error = %e, "audit WAL not prefilled"),
    }
}

/// Counts a restart of the audit WAL if it `restarted`, and logs the attempt.
fn count_restart(
    counter: &std::sync::atomic::AtomicU64,
    restarted: bool,
    frames: i64,
    since: std::time::Instant,
) {
    if restarted {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    tracing::info!(
        target: "custodia::audit",
        frames,
        restarted,
        ms = since.elapsed().as_secs_f64() * 1000.0,
        "audit WAL restart"
    );
}

impl AuditAppender {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, WAL_LIMIT_FRAMES)
    }

    /// With a WAL limit of `wal_limit` frames instead of [`WAL_LIMIT_FRAMES`] (tests).
    pub(crate) fn open_with(path: &Path, wal_limit: i64) -> Result<Self> {
        let mut conn = open_audit_writer(path, wal_limit)?;
        // No larger than the WAL may grow before it is restarted (tests set small limits).
        prefill_wal(&mut conn, path, WAL_PREFILL.min(wal_limit as u64 * 4096));
        let checkpoints = open_audit_writer(path, wal_limit)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let restarts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = restarts.clone();
        let wrap = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = wrap.clone();
        std::thread::Builder::new()
            .name("custodia-audit-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_secs(1))
                {
                    // (busy, frames in the WAL, frames copied)
                    let checkpoint = |mode: &str| {
                        checkpoints.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                        })
                    };
                    let done = match checkpoint("PASSIVE") {
                        Ok((_, log, copied)) if log > wal_limit && copied < log => {
                            let t = std::time::Instant::now();
                            let r = checkpoint("RESTART");
                            // Busy: a reader kept the WAL past the busy timeout; next second.
                            count_restart(&counted, matches!(r, Ok((0, _, _))), log, t);
                            r.map(|_| ())
                        }
                        // Past the cap with everything copied that was there when the pass
                        // began (no reader holds it back), but appends without a pause: the
                        // appender copies the rest itself between two commits (a `RESTART`
                        // from here competes for the write lock with those appends, and could
                        // lose for its whole busy timeout).
                        Ok((_, log, _)) if log > WAL_CAP * wal_limit => {
                            // Each pass copies what was there when it began: a few more
                            // leave the appender only the last pass's appends to copy
                            // while it holds its requests (35–134 ms with one pass).
                            let mut tail = Ok(());
                            for _ in 0..WRAP_PASSES {
                                match checkpoint("PASSIVE") {
                                    Ok((_, log, copied)) if log - copied > WRAP_TAIL => {}
                                    other => {
                                        tail = other.map(|_| ());
                                        break;
                                    }
                                }
                            }
                            asked.store(true, std::sync::atomic::Ordering::Relaxed);
                            tail
                        }
                        other => other.map(|_| ()),
                    };
                    if let Err(e) = done {
                        tracing::warn!(target: "custodia::audit", error = %e, "audit checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Direct(e.to_string()))?;
        Ok(AuditAppender {
            conn,
            _checkpointer: stop,
            restarts,
            wrap,
        })
    }

    /// When the checkpoint thread asked: copies what the WAL holds beyond the database file
    /// on the appender's own connection, between two of its commits (so everything, unless
    /// another node's process writes the same file meanwhile), after which the next commit
    /// writes from the start of the WAL again — unless a reader still holds an older
    /// snapshot then; the count may include such a miss, and the thread asks again.
    fn wrap_if_asked(&mut self) {
        if !self.wrap.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let t = std::time::Instant::now();
        let r = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            });
        match r {
            Ok((busy, log, copied)) => {
                count_restart(&self.restarts, busy == 0 && copied == log, log, t);
            }
            Err(e) => {
                tracing::warn!(target: "custodia::audit", error = %e, "audit checkpoint failed")
            }
        }
    }
}

impl crate::AuditAppend for AuditAppender {
    fn insert_head(&mut self, h: &crate::AuditHeadRow) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO audit_heads (tree_size, root_hash, timestamp_ms, signature) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tree_size) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute((h.tree_size, &h.root_hash, h.timestamp_ms, &h.signature))
            })
            .map_err(direct_error)?;
        Ok(n == 1)
    }

    fn wal_restarts(&self) -> u64 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn maintain(&mut self) {
        self.wrap_if_asked();
    }

    fn append(&mut self, events: &[Vec<u8>]) -> Result<i64> {
        let tx =
            rusqlite::Transaction::new(&mut self.conn, rusqlite::TransactionBehavior::Immediate)
                .map_err(direct_error)?;
        let first: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(direct_error)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO audit_events (seq, event) VALUES (?1, ?2)")
                .map_err(direct_error)?;
            for (i, e) in events.iter().enumerate() {
                insert
                    .execute((first + i as i64, e.as_slice()))
                    .map_err(direct_error)?;
            }
        }
        tx.commit().map_err(direct_error)?;
        Ok(first)
    }
}

/// Index postings per multi-row INSERT.
const KEYS_PER_INSERT: usize = 64;

fn insert_keys_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO audit_index_keys (key, word, bits) VALUES (?, ?, ?)");
    for _ in 1..rows {
        sql.push_str(", (?, ?, ?)");
    }
    sql.push_str(crate::sql::MERGE_POSTING);
    sql
}

/// Writes the audit log's investigation index file with rusqlite: prepared statements of 64
/// postings, on a blocking thread. Through sqlx each batch was a statement of thousands of
/// bound values, built, prepared and copied anew: most of the indexer's time.
pub(crate) struct IndexWriter {
    conn: Connection,
}

impl IndexWriter {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let conn = open_writer(
            path,
            "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;",
        )?;
        Ok(IndexWriter { conn })
    }

    /// [`crate::Store::write_audit_index`].
    pub(crate) fn write(
        &mut self,
        from: i64,
        to: i64,
        batch: &crate::AuditIndexBatch,
    ) -> Result<bool> {
        let tx =
            rusqlite::Transaction::new(&mut self.conn, rusqlite::TransactionBehavior::Immediate)
                .map_err(direct_error)?;
        let moved = tx
            .prepare_cached("UPDATE audit_index_state SET upto = ?1 WHERE id = 1 AND upto = ?2")
            .and_then(|mut st| st.execute((to, from)))
            .map_err(direct_error)?;
        if moved != 1 {
            return Ok(false);
        }
        {
            // Rows of 64 postings per statement, then one per posting for the rest: a
            // statement's own cost (reset, bind, step) was a third of an entry's.
            let mut chunks = batch.postings.chunks_exact(KEYS_PER_INSERT);
            let mut st = tx
                .prepare_cached(&insert_keys_sql(KEYS_PER_INSERT))
                .map_err(direct_error)?;
            for chunk in &mut chunks {
                let params = chunk.iter().flat_map(|(k, w, b)| {
                    [
                        k as &dyn rusqlite::ToSql,
                        w as &dyn rusqlite::ToSql,
                        b as &dyn rusqlite::ToSql,
                    ]
                });
                st.execute(rusqlite::params_from_iter(params))
                    .map_err(direct_error)?;
            }
            let mut st = tx
                .prepare_cached(&insert_keys_sql(1))
                .map_err(direct_error)?;
            for posting in chunks.remainder() {
                st.execute(*posting).map_err(direct_error)?;
            }
            let mut st = tx
                .prepare_cached(crate::sql::UPSERT_INDEX_BLOCK)
                .map_err(direct_error)?;
            for b in &batch.blocks {
                st.execute(*b).map_err(direct_error)?;
            }
        }
        tx.commit().map_err(direct_error)?;
        Ok(true)
    }
}
