//! Several `custodia serve` nodes sharing one database write one audit log: appends from
//! both interleave without colliding, both sign tree heads with the same key, and the whole
//! log verifies. Runs on PostgreSQL (`CUSTODIA_TEST_DATABASE_URL`) and on a shared SQLite file.
//! Also: SQLite's commit delay holds group commits back only while the runtime is saturated.

use custodia_audit::event::Event;
use custodia_server::audit::AuditLog;
use custodia_store::testing::TempPg;
use custodia_vault::{Suite, Vault};
use std::sync::Arc;

const PASS: &[u8] = b"two nodes passphrase";

fn event(node: usize, i: usize) -> Event {
    Event {
        time_ms: 1_795_543_247_000 + i as i64,
        actor: format!("node{node}"),
        actor_kind: "service".into(),
        request_id: Some(format!("{node}-{i}")),
        action: "read".into(),
        collection: Some("customers".into()),
        record_ids: vec![format!("id-{node}-{i}")],
        purpose: Some("account_service".into()),
        outcome: "ok".into(),
        ..Event::default()
    }
}

async fn two_nodes(url: &str) {
    let first = Arc::new(
        Vault::init(
            custodia_store::open(url).await.unwrap(),
            Suite::Intl,
            PASS,
            true,
        )
        .await
        .unwrap(),
    );
    let second = Arc::new(
        Vault::open(custodia_store::open(url).await.unwrap(), PASS)
            .await
            .unwrap(),
    );
    let a = AuditLog::start(first.clone()).await.unwrap();
    let b = AuditLog::start(second.clone()).await.unwrap();
    assert_eq!(a.public_key, b.public_key, "one log, one key");
    let mut tasks = vec![];
    for (node, log) in [(0, a.clone()), (1, b.clone())] {
        for w in 0..8 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = vec![];
                for i in 0..50 {
                    seqs.push(log.record(&event(node, w * 50 + i)).await.unwrap());
                }
                seqs
            }));
        }
    }
    let mut seqs = vec![];
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (0..800).collect::<Vec<i64>>(),
        "every event has its own place"
    );
    // Both nodes sign; heads from either verify with the one key.
    a.sign_head().await.unwrap();
    b.sign_head().await.unwrap();
    let store = first.store();
    let events = verify_stored(&a, store).await;
    assert_eq!(events.len(), 800);
    // Both nodes index the log at once: each batch is written by one of them, once. The logs
    // are stopped first (their background indexers end with them: a round holds the log), and
    // the index emptied, so that the two calls are the only indexers.
    let (wa, wb) = (Arc::downgrade(&a), Arc::downgrade(&b));
    drop((a, b));
    while wa.strong_count() + wb.strong_count() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    store.reset_audit_index().await.unwrap();
    let (x, y) = tokio::join!(
        custodia_server::audit::index_log(first.store(), i64::MAX),
        custodia_server::audit::index_log(second.store(), i64::MAX)
    );
    assert_eq!(
        x.unwrap() + y.unwrap(),
        800,
        "each event indexed exactly once"
    );
    for node in [&first, &second] {
        let c = custodia_server::audit::check_index(node.store().as_ref())
            .await
            .unwrap();
        assert_eq!(
            c,
            custodia_server::audit::IndexCheck {
                indexed: 800,
                entries: 800 * 5
            }
        );
    }
    let at = events
        .iter()
        .find(|(_, e)| Event::from_canonical(e).unwrap().record_ids == ["id-1-77"])
        .unwrap()
        .0;
    use custodia_audit::index::key;
    let keys = [key("record", "id-1-77"), key("actor", "node1")];
    assert_eq!(
        store.audit_index_find(&keys, 0, 800, 10).await.unwrap(),
        (vec![at], None)
    );
    let keys = [key("record", "id-1-77"), key("actor", "node0")];
    assert!(store
        .audit_index_find(&keys, 0, 800, 10)
        .await
        .unwrap()
        .0
        .is_empty());
    let (mine, next) = store
        .audit_index_find(&[key("actor", "node0")], 0, 800, 1000)
        .await
        .unwrap();
    assert_eq!((mine.len(), next), (400, None));
    assert!(mine.windows(2).all(|w| w[0] < w[1]), "in log order");
    // Word by word (64 events each): two words, then where to go on from.
    let (two, next) = store
        .audit_index_find(&[key("actor", "node0")], 0, 800, 2)
        .await
        .unwrap();
    let mut words: Vec<i64> = mine.iter().map(|s| s / 64).collect();
    words.dedup();
    let end = (words[1] + 1) * 64;
    assert_eq!(next, Some(end));
    assert_eq!(
        two,
        mine.iter()
            .copied()
            .filter(|&s| s < end)
            .collect::<Vec<_>>()
    );
    // A range inside a word keeps to the range.
    let (inside, _) = store
        .audit_index_find(&[key("actor", "node0")], 70, 75, 10)
        .await
        .unwrap();
    assert_eq!(
        inside,
        mine.iter()
            .copied()
            .filter(|s| (70..75).contains(s))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    two_nodes(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres() {
    let Ok(admin) = std::env::var("CUSTODIA_TEST_DATABASE_URL") else {
        eprintln!("two_nodes_on_postgres skipped: CUSTODIA_TEST_DATABASE_URL is not set");
        return;
    };
    let pg = TempPg::create(&admin).await;
    two_nodes(&pg.url).await;
    pg.drop_db().await;
    custodia_store::testing::mark_suite_passed("custodia-server two_nodes_on_postgres");
}

fn delayed_commits(log: &AuditLog) -> u64 {
    let mut m = String::new();
    log.render_metrics(&mut m);
    m.lines()
        .find_map(|l| l.strip_prefix("custodia_audit_delayed_commits_total "))
        .expect("the metric is rendered")
        .parse()
        .unwrap()
}

/// The commit delay waits only while every worker of the runtime is busy: events recorded one
/// at a time are never delayed; under CPU-bound load small groups are, and still every event
/// gets its own place and the log verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_delay_only_while_saturated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let vault = Arc::new(
        Vault::init(
            custodia_store::open(&url).await.unwrap(),
            Suite::Intl,
            PASS,
            true,
        )
        .await
        .unwrap(),
    );
    let log = AuditLog::start(vault.clone()).await.unwrap();
    log.set_commit_delay(std::time::Duration::from_millis(2));
    let l = log.clone();
    tokio::spawn(async move {
        for i in 0..50 {
            assert_eq!(l.record(&event(0, i)).await.unwrap(), i as i64);
        }
    })
    .await
    .unwrap();
    assert_eq!(delayed_commits(&log), 0, "an idle runtime never waits");
    let seqs = saturated_writes(&log, 1).await;
    assert_eq!(seqs, (50..370).collect::<Vec<i64>>());
    let delayed = delayed_commits(&log);
    assert!(delayed > 0, "a saturated runtime waits");
    // Zero turns it off, saturated or not.
    log.set_commit_delay(std::time::Duration::ZERO);
    let seqs = saturated_writes(&log, 2).await;
    assert_eq!(seqs, (370..690).collect::<Vec<i64>>());
    assert_eq!(delayed_commits(&log), delayed, "a zero delay never waits");
    log.sign_head().await.unwrap();
    assert_eq!(verify_stored(&log, vault.store()).await.len(), 690);
}

/// 16 writers record 20 events each while tasks that always have work (they yield, never
/// block) keep both workers from idling; their sequence numbers, sorted.
async fn saturated_writes(log: &Arc<AuditLog>, node: usize) -> Vec<i64> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box((0..2_000u64).sum::<u64>());
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut seqs = vec![];
                for i in 0..20 {
                    seqs.push(log.record(&event(node, w * 20 + i)).await.unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut seqs = vec![];
    for w in writers {
        seqs.extend(w.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.await.unwrap();
    }
    seqs.sort();
    seqs
}

/// The stored log verified against its stored signed heads, whose last covers all of it;
/// its events.
async fn verify_stored(
    log: &AuditLog,
    store: &Arc<dyn custodia_store::Store>,
) -> Vec<(i64, Vec<u8>)> {
    let heads = custodia_server::audit::stored_heads(store.as_ref())
        .await
        .unwrap();
    let events = store.audit_events(0, 10_000).await.unwrap();
    assert_eq!(heads.last().unwrap().tree_size, events.len() as u64);
    let v = custodia_audit::verify::verify_log(
        log.alg,
        events.iter().map(|(_, e)| e.as_slice()),
        &heads,
        &log.public_key,
    )
    .unwrap();
    assert_eq!(v.events as usize, events.len());
    events
}
