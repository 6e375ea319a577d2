//! SQLite keeps the audit log in its own file; a log left in the main file by an earlier
//! version is moved over once, in order, heads included.

use custodia_store::{AuditHeadRow, Store};

/// Audit events left in a database file's own `audit_events` table.
async fn events_in(db: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Writes event `{"e":seq}` at each `seq`, as an earlier version left them.
async fn put_events(db: &sqlx::SqlitePool, seqs: impl IntoIterator<Item = i64>) {
    for seq in seqs {
        sqlx::query("INSERT INTO audit_events (seq, event) VALUES ($1, $2)")
            .bind(seq)
            .bind(format!("{{\"e\":{seq}}}").into_bytes())
            .execute(db)
            .await
            .unwrap();
    }
}

/// Whether the events are `{"e":0}`, `{"e":1}`, … at sequence numbers 0, 1, ….
fn numbered_in_order(events: &[(i64, Vec<u8>)]) -> bool {
    events
        .iter()
        .enumerate()
        .all(|(i, (seq, e))| *seq == i as i64 && *e == format!("{{\"e\":{i}}}").into_bytes())
}

#[tokio::test]
async fn audit_log_lives_in_its_own_file_and_old_logs_move_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("custodia.db");
    let url = format!("sqlite://{}", db.display());
    let audit = dir.path().join("custodia-audit.db");
    assert_eq!(custodia_store::audit_file(&db), audit);

    // A fresh store appends to the audit file, not to the main one.
    let store = custodia_store::open(&url).await.unwrap();
    assert_eq!(
        store.append_audit(&[b"{\"a\":0}".to_vec()]).await.unwrap(),
        0
    );
    assert!(audit.exists());
    drop(store);
    let main = sqlx::SqlitePool::connect(&url).await.unwrap();
    assert_eq!(events_in(&main).await, 0);

    // The layout of an earlier version: the log in the main file, no audit file.
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().contains("custodia-audit.db") {
            let _ = std::fs::remove_file(p);
        }
    }
    put_events(&main, 0..7).await;
    sqlx::query("INSERT INTO audit_heads VALUES (7, 'ab', 1, 'cd')")
        .execute(&main)
        .await
        .unwrap();

    let store = custodia_store::open(&url).await.unwrap();
    let events = store.audit_events(0, 100).await.unwrap();
    assert_eq!(events.len(), 7);
    assert!(numbered_in_order(&events));
    assert_eq!(
        store.audit_heads().await.unwrap(),
        vec![AuditHeadRow {
            tree_size: 7,
            root_hash: "ab".into(),
            timestamp_ms: 1,
            signature: "cd".into(),
        }]
    );
    // Appends continue after the moved events; the main file no longer holds them.
    assert_eq!(store.append_audit(&[b"{}".to_vec()]).await.unwrap(), 7);
    assert_eq!(events_in(&main).await, 0);

    // An older binary still appending to the main file, with a different event at a
    // sequence number the audit file already has: the open stops, nothing is deleted.
    drop(store);
    sqlx::query("INSERT INTO audit_events (seq, event) VALUES (3, X'7b7d')")
        .execute(&main)
        .await
        .unwrap();
    let err = match custodia_store::open(&url).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened despite a conflicting audit log"),
    };
    assert!(err.contains("differ at event 3"), "{err}");
    assert_eq!(events_in(&main).await, 1);
}

/// The blocking appender (its own connection, used by the server's audit thread) and the
/// async `append_audit` of another store on the same files — two nodes — interleave into
/// one gap-free sequence, each batch in one piece; an in-memory store has no appender.
#[tokio::test]
async fn blocking_appender_and_other_writers_share_one_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("custodia.db").display());
    let a = custodia_store::open(&url).await.unwrap();
    let b = custodia_store::open(&url).await.unwrap();
    let mut appender = a.audit_appender().unwrap().expect("a file store has one");
    let ev = |s: &str| s.as_bytes().to_vec();
    assert_eq!(appender.append(&[ev("a0"), ev("a1")]).unwrap(), 0);
    // `b` caches no counter yet; then its cached counter goes stale behind the appender.
    assert_eq!(b.append_audit(&[ev("b0")]).await.unwrap(), 2);
    assert_eq!(appender.append(&[ev("a2"), ev("a3"), ev("a4")]).unwrap(), 3);
    assert_eq!(b.append_audit(&[ev("b1")]).await.unwrap(), 6);
    assert_eq!(a.append_audit(&[ev("a5")]).await.unwrap(), 7);
    assert_eq!(appender.append(&[ev("a6")]).unwrap(), 8);
    let events = b.audit_events(0, 100).await.unwrap();
    let got: Vec<(i64, String)> = events
        .into_iter()
        .map(|(s, e)| (s, String::from_utf8(e).unwrap()))
        .collect();
    let want: Vec<(i64, String)> = ["a0", "a1", "b0", "a2", "a3", "a4", "b1", "a5", "a6"]
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i64, e.to_string()))
        .collect();
    assert_eq!(got, want);
    // The appender writes the audit file only.
    let main = sqlx::SqlitePool::connect(&url).await.unwrap();
    assert_eq!(events_in(&main).await, 0);

    let memory = custodia_store::open("sqlite::memory:").await.unwrap();
    assert!(memory.audit_appender().unwrap().is_none());
}

/// The appender never checkpoints inside a commit (`wal_autocheckpoint = 0`); its own
/// thread copies the WAL into the audit file within about a second.
#[tokio::test]
async fn appended_events_reach_the_audit_file_by_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("custodia.db").display());
    let store = custodia_store::open(&url).await.unwrap();
    let file = dir.path().join("custodia-audit.db");
    let mut appender = store.audit_appender().unwrap().unwrap();
    let events: Vec<Vec<u8>> = (0..300)
        .map(|i| vec![b'a' + (i % 26) as u8; 1000])
        .collect();
    appender.append(&events).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&file).unwrap().len() < 300_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(store.audit_events(0, 1000).await.unwrap().len(), 300);
}

#[tokio::test]
async fn audit_files_of_the_first_layout_get_seq_as_their_rowid() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("custodia-audit.db");
    let url = format!("sqlite://{}", dir.path().join("custodia.db").display());
    // An audit file as the first version wrote it: `seq BIGINT PRIMARY KEY`, which SQLite
    // backs with an index of its own, and migration 1 recorded.
    let old = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", audit.display()))
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE custodia_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        "INSERT INTO custodia_migrations VALUES (1, 0)",
        "CREATE TABLE audit_events (seq BIGINT PRIMARY KEY, event BLOB NOT NULL)",
        "CREATE TABLE audit_heads (tree_size BIGINT PRIMARY KEY, root_hash TEXT NOT NULL, \
         timestamp_ms BIGINT NOT NULL, signature TEXT NOT NULL)",
    ] {
        sqlx::query(sql).execute(&old).await.unwrap();
    }
    // Inserted out of order: the rowid table must still hand them back by `seq`.
    put_events(&old, [2, 0, 1]).await;
    let indexes = |pool: sqlx::SqlitePool| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pragma_index_list('audit_events')")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(indexes(old.clone()).await, 1);
    old.close().await;

    let store = custodia_store::open(&url).await.unwrap();
    assert_eq!(
        store.append_audit(&[b"{\"e\":3}".to_vec()]).await.unwrap(),
        3
    );
    let events = store.audit_events(0, 100).await.unwrap();
    assert_eq!(events.len(), 4);
    assert!(numbered_in_order(&events));
    drop(store);
    let migrated = sqlx::SqlitePool::connect(&format!("sqlite://{}", audit.display()))
        .await
        .unwrap();
    assert_eq!(indexes(migrated.clone()).await, 0, "seq is the rowid now");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM custodia_migrations ORDER BY version")
            .fetch_all(&migrated)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
}

/// A store in `dir` whose audit appender has a WAL limit of 64 pages instead of 65,536,
/// so that the checkpoint thread (every second) has to restart it within a test.
async fn store_with_small_audit_wal(
    dir: &std::path::Path,
) -> (
    custodia_store::SqliteStore,
    Box<dyn custodia_store::AuditAppend>,
) {
    let url = format!("sqlite://{}", dir.join("custodia.db").display());
    let store = custodia_store::SqliteStore::open(&url).await.unwrap();
    let appender = store.audit_appender_with_wal_limit(64).unwrap().unwrap();
    (store, appender)
}

/// An event of ~520 bytes.
fn padded_event(seq: i64) -> Vec<u8> {
    format!("{{\"e\":{seq},\"pad\":\"{}\"}}", "x".repeat(500)).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgrown_audit_wal_is_restarted_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut appender) = store_with_small_audit_wal(dir.path()).await;
    let event = padded_event;
    let mut next = 0i64;
    let mut append = |appender: &mut Box<dyn custodia_store::AuditAppend>| {
        let batch: Vec<Vec<u8>> = (next..next + 50).map(event).collect();
        assert_eq!(appender.append(&batch).unwrap(), next);
        appender.maintain(); // as the audit thread does after answering a batch
        next += 50;
    };
    append(&mut appender);
    // A reader holding an old snapshot for 1.5 s (an export, a proof): passive checkpoints
    // cannot copy past it, so the WAL grows past the limit and is restarted once the
    // reader is done — the restart waits for it, and holds the appender meanwhile.
    let audit = format!(
        "sqlite://{}",
        dir.path().join("custodia-audit.db").display()
    );
    let reader = sqlx::SqlitePool::connect(&audit).await.unwrap();
    let mut snapshot = reader.begin().await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut *snapshot)
        .await
        .unwrap();
    assert_eq!(seen, 50);
    let held = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        snapshot.commit().await.unwrap();
    });
    let wal = dir.path().join("custodia-audit.db-wal");
    let mut grown = 0;
    let started = std::time::Instant::now();
    while appender.wal_restarts() == 0 && started.elapsed() < std::time::Duration::from_secs(10) {
        append(&mut appender);
        grown = grown.max(std::fs::metadata(&wal).unwrap().len());
    }
    assert!(
        appender.wal_restarts() >= 1,
        "no restart after {next} events"
    );
    held.await.unwrap();
    // Appends after the restart write from the start of the WAL and still land in order.
    for _ in 0..20 {
        append(&mut appender);
    }
    // The WAL file is cut back to what it keeps across restarts (6 times the limit of 64
    // pages), not further: the next restarts overwrite it in place instead of growing it
    // again (and a cut back to less, in the first commit after every restart, took ~0.5 s
    // on a 1 GB WAL).
    let keep = 6 * 64 * 4096;
    assert!(
        grown > keep,
        "the held reader let the WAL grow ({grown} bytes)"
    );
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), keep);
    drop(appender);
    assert_eq!(store.audit_count().await.unwrap(), next);
    // Every event, in order, read in chunks (the appends may have run to millions).
    let mut seen = 0i64;
    while seen < next {
        let chunk = store.audit_events(seen, 200_000).await.unwrap();
        assert!(!chunk.is_empty(), "events missing from {seen}");
        for (seq, e) in chunk {
            assert!(seq == seen && e == event(seen), "event {seen} out of place");
            seen += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_wal_stays_bounded_under_appends_without_a_pause() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut appender) = store_with_small_audit_wal(dir.path()).await;
    let event = padded_event;
    let wal = dir.path().join("custodia-audit.db-wal");
    let mut next = 0i64;
    let started = std::time::Instant::now();
    // No reader at all: passive checkpoints copy everything they see, yet the appends never
    // pause, so SQLite alone would never start the WAL over and it would grow with the log.
    while appender.wal_restarts() < 4 && started.elapsed() < std::time::Duration::from_secs(30) {
        let batch: Vec<Vec<u8>> = (next..next + 50).map(event).collect();
        assert_eq!(appender.append(&batch).unwrap(), next);
        appender.maintain();
        next += 50;
    }
    let restarts = appender.wal_restarts();
    assert!(restarts >= 4, "{restarts} restarts after {next} events");
    let written = next as u64 * 520;
    let wal_size = std::fs::metadata(&wal).unwrap().len();
    // Bounded by what a second or two of appends writes (the checkpoint thread's period),
    // not by the log: the WAL was reused. (Each commit of 50 events writes ~1.6 times their
    // bytes to the WAL, so a WAL never reused would be larger than `written`.)
    assert!(
        wal_size < written,
        "WAL of {wal_size} bytes after {written} bytes of events and {restarts} restarts"
    );
    drop(appender);
    assert_eq!(store.audit_count().await.unwrap(), next);
    let last = store.audit_events(next - 100, 1000).await.unwrap();
    assert!(last
        .iter()
        .enumerate()
        .all(|(i, (seq, e))| *seq == next - 100 + i as i64 && *e == event(*seq)));
}

/// The appender writes its WAL in place: the file is prefilled with zeros (64 MB by default;
/// here, with a limit of 256 pages, 1 MB), so group commits overwrite blocks instead of
/// growing the file (and making `fdatasync` write the inode too). A copy taken mid-log, as a
/// crash leaves the files, still recovers every event and nothing more: the zeros after the
/// last frame are not taken for frames.
#[tokio::test]
async fn the_audit_wal_is_prefilled_and_recovers_from_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("custodia.db").display());
    let store = custodia_store::SqliteStore::open(&url).await.unwrap();
    let wal = dir.path().join("custodia-audit.db-wal");
    let mut appender = store.audit_appender_with_wal_limit(256).unwrap().unwrap();
    let prefilled = std::fs::metadata(&wal).unwrap().len();
    assert_eq!(prefilled, 256 * 4096);
    let mut next = 0i64;
    for _ in 0..10 {
        let batch: Vec<Vec<u8>> = (next..next + 20).map(padded_event).collect();
        assert_eq!(appender.append(&batch).unwrap(), next);
        next += 20;
    }
    // 200 events of ~520 bytes (some 40 pages): written over the zeros, the file did not grow.
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), prefilled);
    // The files as a crash leaves them (no checkpoint, no clean close), copied.
    let copy = tempfile::tempdir().unwrap();
    for name in ["custodia.db", "custodia-audit.db", "custodia-audit.db-wal"] {
        std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
    }
    drop(appender);
    let url = format!("sqlite://{}", copy.path().join("custodia.db").display());
    let recovered = custodia_store::open(&url).await.unwrap();
    let events = recovered.audit_events(0, 10_000).await.unwrap();
    assert_eq!(events.len() as i64, next);
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, (seq, e))| *seq == i as i64 && *e == padded_event(*seq)));
}

/// The investigation index's writes and reads answer alike on an in-memory database (written
/// through sqlx) and on a file (written by the direct writer): the mark moves only from where
/// it is, postings of the same word merge, and finds, counts and spans see what was written.
#[tokio::test]
async fn the_audit_index_answers_alike_in_memory_and_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!("sqlite://{}", dir.path().join("custodia.db").display());
    let mut answers = vec![];
    for url in ["sqlite::memory:", file.as_str()] {
        let store = custodia_store::open(url).await.unwrap();
        let (a, b) = (11i64, 22i64);
        // Events 0..100: key a on the even ones, key b on multiples of 3; 1 ms apart.
        let batch = |seqs: std::ops::Range<i64>| {
            let mut postings = std::collections::BTreeMap::<(i64, i64), i64>::new();
            for s in seqs.clone() {
                let (word, bit) = custodia_store::audit_index_bit(s);
                if s % 2 == 0 {
                    *postings.entry((a, word)).or_default() |= bit;
                }
                if s % 3 == 0 {
                    *postings.entry((b, word)).or_default() |= bit;
                }
            }
            custodia_store::AuditIndexBatch {
                postings: postings
                    .into_iter()
                    .map(|((k, w), bits)| (k, w, bits))
                    .collect(),
                blocks: vec![(0, seqs.start, seqs.end - 1)],
            }
        };
        assert!(store.write_audit_index(0, 50, batch(0..50)).await.unwrap());
        // Not from the mark: nothing written.
        assert!(!store
            .write_audit_index(0, 100, batch(0..100))
            .await
            .unwrap());
        // Events 50..100 share words 0 and 1 with the first batch: their bits are merged.
        assert!(store
            .write_audit_index(50, 100, batch(50..100))
            .await
            .unwrap());
        assert_eq!(store.audit_index_upto().await.unwrap(), 100);
        let both = store.audit_index_find(&[b, a], 0, 100, 10).await.unwrap();
        assert_eq!(both.0, (0..100).step_by(6).collect::<Vec<_>>());
        assert_eq!(both.1, None);
        let first_word = store.audit_index_find(&[a], 0, 100, 1).await.unwrap();
        assert_eq!(first_word, ((0..64).step_by(2).collect(), Some(64)));
        assert_eq!(store.audit_index_count(a, 0, 100, 10).await.unwrap(), 2);
        assert_eq!(
            store.audit_index_span(10, 20).await.unwrap(),
            Some((0, custodia_store::AUDIT_INDEX_BLOCK))
        );
        assert_eq!(store.audit_index_span(200, 300).await.unwrap(), None);
        let totals = store.audit_index_totals(100).await.unwrap();
        assert_eq!(totals, (50 + 34, vec![(0, 0, 99)]));
        answers.push((both, first_word, totals));
        store.reset_audit_index().await.unwrap();
        assert_eq!(store.audit_index_upto().await.unwrap(), 0);
        assert_eq!(store.audit_index_totals(100).await.unwrap(), (0, vec![]));
    }
    assert_eq!(answers[0], answers[1]);
}
