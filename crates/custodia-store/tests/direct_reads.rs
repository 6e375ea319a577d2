//! SQLite point reads keep their read transaction open from one read to the next while
//! nothing has been committed (`direct.rs`). A read must still see every commit that completed
//! before it, whether the commit came from this store or from another connection (another
//! process, such as `custodia keys rotate` beside a running server). Held transactions that
//! go idle must not keep the WAL from being reset.

use custodia_store::{DekRow, NewRecord, RecordRow, RecordUpdate, Store, UpdateOutcome};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn file_store(dir: &Path) -> (Arc<dyn Store>, PathBuf) {
    let db = dir.join("custodia.db");
    let store = custodia_store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    store.put_collection("c", "{}", None).await.unwrap();
    (store, db)
}

fn record(id: &str) -> NewRecord {
    NewRecord {
        record: RecordRow {
            id: id.into(),
            version: 1,
            tier: "standard".into(),
            branch: "b".into(),
            fields: vec![1, 2, 3],
            created_at: 0,
            updated_at: 0,
        },
        dek: DekRow {
            key_id: format!("k-{id}"),
            kek_version: 1,
            wrapped: "w".into(),
        },
        index: vec![],
    }
}

async fn version_of(store: &Arc<dyn Store>, id: &str) -> Option<i64> {
    store
        .get_record("c", id)
        .await
        .unwrap()
        .map(|(r, _)| r.version)
}

/// A writer of the same file on a connection of its own, as another process has.
fn other_writer(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    // As the server's writer: no fsync per commit, so that a commit comes well within the
    // 10 ms a read holds its transaction.
    c.execute_batch("PRAGMA synchronous = NORMAL").unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_completed_commit_is_seen_by_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = file_store(dir.path()).await;
    store.insert_records("c", &[record("r1")]).await.unwrap();
    let other = other_writer(&db);
    let mut version = 1;
    for i in 0..300 {
        // A wholly checkpointed WAL, so that the read holds its transaction (reads hold one
        // only then), and it is held when the commit comes.
        checkpoint_truncate(&other);
        assert_eq!(version_of(&store, "r1").await, Some(version), "round {i}");
        if i % 3 == 2 {
            other
                .execute(
                    "UPDATE records SET version = version + 1 WHERE collection = 'c' AND id = 'r1'",
                    [],
                )
                .unwrap();
        } else {
            let update = RecordUpdate {
                expected_version: version,
                tier: "standard".into(),
                branch: "b".into(),
                fields: vec![i as u8],
                index: vec![],
            };
            let done = store.update_record("c", "r1", &update).await.unwrap();
            assert_eq!(
                done,
                UpdateOutcome::Updated {
                    version: version + 1
                }
            );
        }
        version += 1;
        assert_eq!(
            version_of(&store, "r1").await,
            Some(version),
            "round {i}: a read missed the commit before it"
        );
    }
    // Crypto-shredding is visible at once, too.
    assert!(store.delete_record("c", "r1").await.unwrap());
    assert_eq!(version_of(&store, "r1").await, None);
    store.insert_records("c", &[record("r2")]).await.unwrap();
    assert_eq!(version_of(&store, "r2").await, Some(1));
    other
        .execute(
            "DELETE FROM records WHERE collection = 'c' AND id = 'r2'",
            [],
        )
        .unwrap();
    assert_eq!(version_of(&store, "r2").await, None);
}

/// Copies the whole WAL into the database file and empties it (waiting for readers, and
/// trying again while another checkpoint — the reader's sweeper — runs).
fn checkpoint_truncate(c: &rusqlite::Connection) {
    let since = Instant::now();
    loop {
        let busy: i64 = c
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .unwrap();
        if busy == 0 {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the checkpoint could not finish"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` without waiting: whether it reset the WAL (no reader
/// held an older part of it).
fn truncated(c: &rusqlite::Connection) -> bool {
    let busy: i64 = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    busy == 0
}

/// Waits until a TRUNCATE checkpoint succeeds (at most 5 s); whether the first try failed.
fn truncated_after_wait(c: &rusqlite::Connection, round: usize) -> bool {
    if truncated(c) {
        return false;
    }
    let since = Instant::now();
    while !truncated(c) {
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "round {round}: an idle read transaction kept the WAL from being checkpointed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// A read that holds its transaction on a wholly checkpointed WAL blocks the copying of
/// frames committed after it; left idle, it must be ended so that checkpoints go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_transactions_left_idle_are_ended_so_the_wal_can_be_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = file_store(dir.path()).await;
    store.insert_records("c", &[record("r1")]).await.unwrap();
    let checkpointer = rusqlite::Connection::open(&db).unwrap();
    checkpointer.busy_timeout(Duration::ZERO).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let mut seen_held = 0;
    for round in 0..10 {
        truncated_after_wait(&checkpointer, round);
        // The WAL is empty: this read holds its transaction.
        assert_eq!(version_of(&store, "r1").await, Some(1));
        // A commit puts frames in the WAL, which the held transaction keeps from the file.
        store
            .insert_records("c", &[record(&format!("n{round}"))])
            .await
            .unwrap();
        if truncated_after_wait(&checkpointer, round) {
            seen_held += 1;
        }
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "round {round}");
    }
    // Each round read right before the commit and the checkpoint; a held transaction is
    // ended only after 10 ms idle, so rounds must meet one (else this no longer tests
    // holding). Not every round: a loaded machine may take 10 ms between the two.
    assert!(
        seen_held >= 1,
        "held transactions seen in {seen_held} of 10 rounds"
    );
}

/// After commits stop, a WAL that reads keep finding not wholly checkpointed is checkpointed
/// by the reader's sweeper (the server's writer waits for 16,384 frames), so that reads can
/// hold their transactions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_wal_is_checkpointed_while_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = file_store(dir.path()).await;
    quiet_wal_gets_checkpointed(&store, &db).await;
}

/// The same through a symbolic link to the database file: SQLite keeps the WAL and its index
/// beside the file the link points to, and the reader must find them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_opened_through_a_symbolic_link_is_checkpointed_too() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    // Create the database where it really lives, then open it through the link.
    drop(file_store(&real).await);
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(real.join("custodia.db"), &link).unwrap();
    let store = custodia_store::open(&format!("sqlite://{}", link.display()))
        .await
        .unwrap();
    assert!(!Path::new(&format!("{}-shm", link.display())).exists());
    quiet_wal_gets_checkpointed(&store, &real.join("custodia.db")).await;
}

async fn quiet_wal_gets_checkpointed(store: &Arc<dyn Store>, db: &Path) {
    let n = format!("q{}", rand_suffix());
    store.insert_records("c", &[record(&n)]).await.unwrap();
    let shm = std::fs::File::open(format!("{}-shm", db.display())).unwrap();
    // mxFrame (byte 16 of the WAL index) and nBackfill (byte 96), host byte order.
    let frames = || {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 100];
        shm.read_exact_at(&mut b, 0).unwrap();
        let at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        (at(16), at(96))
    };
    let (max, backfilled) = frames();
    assert!(
        max > 0 && backfilled < max,
        "the insert left frames in the WAL"
    );
    let since = Instant::now();
    loop {
        assert_eq!(version_of(store, &n).await, Some(1));
        let (max, backfilled) = frames();
        if max == backfilled {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "not checkpointed after 5 s: {backfilled} of {max} frames"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Steady reads while another connection commits more often than a held transaction lives
/// (10 ms): held snapshots must not keep the WAL from starting over after each checkpoint,
/// or it grows for as long as the load lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_steady_reads_and_frequent_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = file_store(dir.path()).await;
    let ids: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
    let batch: Vec<_> = ids.iter().map(|id| record(id)).collect();
    store.insert_records("c", &batch).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop, ids) = (store.clone(), stop.clone(), ids.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = &ids[(n * 7 + t) % ids.len()];
                    assert!(version_of(&store, id).await.is_some());
                    n += 1;
                    if n.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                n
            })
        })
        .collect();
    // The writer checkpoints every 100 frames (the server's default is 16,384), so that the
    // WAL would start over many times in this run.
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let writer = {
        let (db, wal) = (db.clone(), wal.clone());
        std::thread::spawn(move || {
            let w = other_writer(&db);
            w.execute_batch("PRAGMA wal_autocheckpoint = 100").unwrap();
            let mut largest = 0u64;
            for i in 0..3000 {
                w.execute(
                    "UPDATE records SET version = version + 1 WHERE collection = 'c' AND id = ?1",
                    [format!("r{}", i % 50)],
                )
                .unwrap();
                largest = largest.max(std::fs::metadata(&wal).unwrap().len());
                std::thread::sleep(Duration::from_micros(300));
            }
            largest
        })
    };
    let largest = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    // 3,000 commits wrote at least 3,000 frames (over 12 MB); a WAL that starts over after
    // each checkpoint stays near 100 frames (~0.4 MB).
    eprintln!("largest WAL {largest} bytes, {reads} reads");
    assert!(reads > 3000, "the readers ran ({reads} reads)");
    assert!(
        largest < 3 << 20,
        "the WAL grew to {largest} bytes: held reads kept it from starting over"
    );
}
