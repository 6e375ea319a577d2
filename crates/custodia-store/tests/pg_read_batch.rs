//! PostgreSQL record reads by id are gathered into one query while others are in flight
//! (`batch.rs`). Every caller must still get exactly its own record (or none), from its own
//! collection, as fresh as a query of its own would be; and a batch that fails must not
//! fail the reads it carried.

use custodia_store::testing::TempPg;
use custodia_store::{DekRow, NewRecord, PgStore, RecordRow, RecordUpdate, Store, UpdateOutcome};
use std::sync::Arc;

fn record(collection: &str, id: &str) -> NewRecord {
    NewRecord {
        record: RecordRow {
            id: id.into(),
            version: 1,
            tier: "standard".into(),
            branch: "b".into(),
            fields: format!("{collection}/{id}").into_bytes(),
            created_at: 0,
            updated_at: 0,
        },
        dek: DekRow {
            key_id: format!("k-{collection}-{id}"),
            kek_version: 1,
            wrapped: "w".into(),
        },
        index: vec![],
    }
}

/// Reads `(collection, id)` pairs all at once, each in a task of its own, and checks each
/// answer against what that pair holds (`fields` = "collection/id", or no record).
async fn read_all_at_once(store: &Arc<PgStore>, pairs: Vec<(String, String, bool)>) {
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|(c, id, exists)| {
            let store = store.clone();
            tokio::spawn(async move {
                let got = store.get_record(&c, &id).await.expect("read");
                match (got, exists) {
                    (Some((r, dek)), true) => {
                        assert_eq!(r.id, id);
                        assert_eq!(r.fields, format!("{c}/{id}").into_bytes(), "{c}/{id}");
                        assert_eq!(dek.expect("key").key_id, format!("k-{c}-{id}"));
                    }
                    (None, false) => {}
                    (got, _) => panic!("{c}/{id}: expected exists={exists}, got {}", got.is_some()),
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("reader");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_reads_answer_each_caller_with_its_own_fresh_record() {
    let Ok(admin) = std::env::var("CUSTODIA_TEST_DATABASE_URL") else {
        eprintln!("CUSTODIA_TEST_DATABASE_URL not set: skipping");
        return;
    };
    let pg = TempPg::create(&admin).await;
    let store = Arc::new(PgStore::open(&pg.url).await.unwrap());
    for c in ["c", "d"] {
        store.put_collection(c, "{}", None).await.unwrap();
    }
    let in_c: Vec<_> = (0..200).map(|i| record("c", &format!("r{i}"))).collect();
    let in_d: Vec<_> = (0..50).map(|i| record("d", &format!("r{i}"))).collect();
    store.insert_records("c", &in_c).await.unwrap();
    store.insert_records("d", &in_d).await.unwrap();

    // 1. Many reads at once: both collections, the same id in both, ids read twice, ids
    //    that exist in one collection only, ids that exist nowhere.
    let mut pairs = Vec::new();
    for i in 0..200u32 {
        pairs.push(("c".to_string(), format!("r{i}"), true));
        pairs.push(("d".to_string(), format!("r{i}"), i < 50));
        if i.is_multiple_of(3) {
            pairs.push(("c".to_string(), format!("r{i}"), true));
        }
        if i.is_multiple_of(10) {
            pairs.push(("c".to_string(), format!("missing{i}"), false));
            pairs.push(("nope".to_string(), format!("r{i}"), false));
        }
    }
    let before = store.read_batches().unwrap();
    read_all_at_once(&store, pairs.clone()).await;
    let (batches, reads) = store.read_batches().unwrap();
    let (batches, reads) = (batches - before.0, reads - before.1);
    assert_eq!(
        reads,
        pairs.len() as u64,
        "every read went through the batcher"
    );
    assert!(
        batches * 2 <= reads,
        "reads were gathered: {reads} reads in {batches} batches"
    );
    eprintln!("{reads} reads in {batches} batches");

    // 2. Freshness: a read that starts after a commit completed sees it, in a batch too.
    for round in 0..100i64 {
        let id = format!("r{}", round % 20);
        let current = store.get_record("c", &id).await.unwrap().unwrap().0.version;
        let outcome = store
            .update_record(
                "c",
                &id,
                &RecordUpdate {
                    expected_version: current,
                    tier: "vip".into(),
                    branch: "b".into(),
                    fields: format!("c/{id}").into_bytes(),
                    index: vec![],
                },
            )
            .await
            .unwrap();
        assert!(
            matches!(outcome, UpdateOutcome::Updated { .. }),
            "round {round}"
        );
        let readers: Vec<_> = (0..16)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(
                    async move { store.get_record("c", &id).await.unwrap().unwrap().0.version },
                )
            })
            .collect();
        for r in readers {
            assert_eq!(r.await.unwrap(), current + 1, "round {round}: a stale read");
        }
    }
    assert!(store.delete_record("d", "r7").await.unwrap());
    let gone: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get_record("d", "r7").await.unwrap().is_none() })
        })
        .collect();
    for g in gone {
        assert!(g.await.unwrap(), "a deleted record was read");
    }

    // 3. A batch whose connection was cut (every backend of the database terminated): the
    //    reads it carried each read again alone, and all succeed.
    let admin_pool = sqlx::PgPool::connect(&admin).await.unwrap();
    let own = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&own)
        .await
        .unwrap();
    own.close().await;
    for _ in 0..3 {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db)
        .execute(&admin_pool)
        .await
        .unwrap();
        let pairs: Vec<_> = (0..100)
            .map(|i| ("c".to_string(), format!("r{i}"), true))
            .collect();
        read_all_at_once(&store, pairs).await;
    }
    admin_pool.close().await;
    pg.drop_db().await;
    custodia_store::testing::mark_suite_passed("custodia-store read_batch_on_postgres");
}
