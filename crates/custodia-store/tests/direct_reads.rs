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
        // Read first, so that the connection holds a transaction when the commit comes.
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

/// `PRAGMA wal_checkpoint(TRUNCATE)` without waiting: whether it reset the WAL (no reader
/// held an older part of it).
fn truncated(c: &rusqlite::Connection) -> bool {
    let busy: i64 = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    busy == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_transactions_left_idle_are_ended_so_the_wal_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = file_store(dir.path()).await;
    store.insert_records("c", &[record("r1")]).await.unwrap();
    let checkpointer = rusqlite::Connection::open(&db).unwrap();
    checkpointer.busy_timeout(Duration::ZERO).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let mut seen_held = 0;
    for round in 0..10 {
        // A commit puts frames in the WAL; the read then holds a snapshot that uses them.
        store
            .insert_records("c", &[record(&format!("n{round}"))])
            .await
            .unwrap();
        assert_eq!(version_of(&store, "r1").await, Some(1));
        if !truncated(&checkpointer) {
            seen_held += 1;
            let since = Instant::now();
            while !truncated(&checkpointer) {
                assert!(
                    since.elapsed() < Duration::from_secs(5),
                    "round {round}: an idle read transaction kept the WAL from being reset"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "round {round}");
    }
    // Each round read right before the checkpoint; a held transaction is ended only after
    // 10 ms, so most rounds must have met one (else this test no longer tests holding).
    assert!(
        seen_held >= 5,
        "held transactions seen in {seen_held} of 10 rounds"
    );
}
