//! PostgreSQL record reads by id, gathered into one query while earlier ones are in flight.
//!
//! Each record read over PostgreSQL is a network round trip: the client encodes and sends a
//! query, the server's backend wakes, plans from its cache, scans the index and answers, and
//! the client wakes to decode it. Most of that cost is per query, not per row. So reads that
//! arrive while [`RUNNERS`] batches are already in flight wait in a queue, and the next
//! runner takes the whole queue (up to [`MAX_BATCH`]) into one
//! `… WHERE r.collection = $1 AND r.id = ANY($2)` per collection. Nothing waits on purpose:
//! a read that finds a runner free starts at once, alone (the batch of one costs what the
//! plain query did). Batches form only under load, like a group commit.
//!
//! Freshness is the plain query's: a read is queued before the batch that carries it is
//! taken from the queue, and its query starts after that, so its snapshot (READ COMMITTED,
//! taken when the statement starts) includes every commit completed before the read began.
//!
//! The runner is the request that took the permit; it answers the others through oneshot
//! channels. If its future is dropped mid-batch (a request timeout), or its query fails,
//! the others are answered "read it yourself" (or their channel closes) and each runs its
//! own query as before, with its own error handling and retry ([`crate::sql`]'s
//! `hot_read!`): a batch never turns one request's failure into another's error.

use crate::held::{Done, PgConns};
use crate::{DekRow, RecordRow, Result};
use std::sync::Mutex;
use tokio::sync::{oneshot, Semaphore};

/// Batches in flight at once. Two cores' worth of backends, plus one so that a batch being
/// decoded does not leave the database idle.
pub(crate) const RUNNERS: usize = 3;

/// Most reads taken into one batch.
pub(crate) const MAX_BATCH: usize = 64;

type Found = Option<(RecordRow, Option<DekRow>)>;

/// `Some(found)`, or `None`: the batch failed, read it yourself.
type Reply = Option<Found>;

struct Pending {
    collection: String,
    id: String,
    reply: oneshot::Sender<Reply>,
}

pub(crate) struct RecordBatcher {
    queue: Mutex<Vec<Pending>>,
    runners: Semaphore,
    off: bool,
    /// Batches run and reads carried, for tests and `/metrics`-style checks.
    stats: Mutex<(u64, u64)>,
}

/// The query for `n` ids, `n` a power of two up to [`MAX_BATCH`] (a batch is padded with its
/// last id). A list of parameters, not `= ANY($2)` with an array: PostgreSQL plans an array
/// parameter's generic plan for 10 elements at a cost above the custom plan's, and so plans
/// every execution anew (~0.1 ms of the server's CPU); with `n` parameters the generic plan
/// costs what the custom one does, and is kept after five executions. Seven statements in
/// all, each prepared once per connection.
fn by_ids(n: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=MAX_BATCH.trailing_zeros())
            .map(|bits| {
                let list: Vec<String> =
                    (0..1usize << bits).map(|i| format!("${}", i + 2)).collect();
                format!(
                    "{}$1 AND r.id IN ({})",
                    crate::direct::record_select!(),
                    list.join(", ")
                )
            })
            .collect()
    });
    &all[n.next_power_of_two().trailing_zeros() as usize]
}

impl RecordBatcher {
    /// [`RUNNERS`] runners; `CUSTODIA_PG_READ_BATCH_RUNNERS` overrides it for benchmarks
    /// (0: no batching, every read alone as before).
    pub(crate) fn new() -> RecordBatcher {
        let runners = std::env::var("CUSTODIA_PG_READ_BATCH_RUNNERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RUNNERS);
        RecordBatcher::with_runners(runners)
    }

    pub(crate) fn with_runners(runners: usize) -> RecordBatcher {
        RecordBatcher {
            queue: Mutex::new(Vec::new()),
            runners: Semaphore::new(runners),
            off: runners == 0,
            stats: Mutex::new((0, 0)),
        }
    }

    /// (batches run, reads answered by them) since the store opened.
    pub(crate) fn stats(&self) -> (u64, u64) {
        *self.stats.lock().expect("batch stats")
    }

    /// The record, read in a batch; `None` when the batch could not answer (its query
    /// failed or its runner was dropped), and the caller must read it alone.
    pub(crate) async fn get(&self, conns: &PgConns, collection: &str, id: &str) -> Option<Found> {
        if self.off {
            return None;
        }
        let (tx, mut rx) = oneshot::channel();
        self.queue.lock().expect("batch queue").push(Pending {
            collection: collection.to_owned(),
            id: id.to_owned(),
            reply: tx,
        });
        loop {
            tokio::select! {
                biased;
                r = &mut rx => return r.ok().flatten(),
                permit = self.runners.acquire() => {
                    let Ok(_permit) = permit else { return None };
                    let batch = {
                        let mut q = self.queue.lock().expect("batch queue");
                        let n = q.len().min(MAX_BATCH);
                        q.drain(..n).collect::<Vec<_>>()
                    };
                    if batch.is_empty() {
                        // Another runner took ours: its answer is on the way.
                        drop(_permit);
                        return rx.await.ok().flatten();
                    }
                    self.run(conns, batch).await;
                    // Ours was in it, unless more than MAX_BATCH were queued before it.
                }
            }
        }
    }

    async fn run(&self, conns: &PgConns, mut batch: Vec<Pending>) {
        {
            let mut s = self.stats.lock().expect("batch stats");
            s.0 += 1;
            s.1 += batch.len() as u64;
        }
        batch.sort_unstable_by(|a, b| a.collection.cmp(&b.collection));
        while let Some(last) = batch.last().map(|p| p.collection.clone()) {
            let start = batch.partition_point(|p| p.collection < last);
            let group: Vec<Pending> = batch.drain(start..).collect();
            match Self::query(conns, &group).await {
                Ok(mut rows) => {
                    rows.sort_unstable_by(|a, b| a.0.id.cmp(&b.0.id));
                    for p in group {
                        let found = rows
                            .binary_search_by(|r| r.0.id.as_str().cmp(&p.id))
                            .ok()
                            .map(|i| rows[i].clone());
                        // A closed receiver (a caller that gave up) is fine.
                        let _ = p.reply.send(Some(found));
                    }
                }
                // Each reads alone, with the plain path's errors and retry.
                Err(_) => group.into_iter().for_each(|p| {
                    let _ = p.reply.send(None);
                }),
            }
        }
    }

    async fn query(conns: &PgConns, group: &[Pending]) -> Result<Vec<(RecordRow, Option<DekRow>)>> {
        let mut ids: Vec<&str> = group.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let n = ids.len().next_power_of_two();
        let last = ids[ids.len() - 1];
        let mut q = sqlx::query(by_ids(n)).bind(&group[0].collection);
        for i in 0..n {
            q = q.bind(ids.get(i).copied().unwrap_or(last));
        }
        let mut held = conns.get().await?;
        let rows = q.fetch_all(&mut *held).await;
        match rows {
            Ok(rows) => {
                held.done();
                rows.iter().map(crate::sql::decode_record_row).collect()
            }
            Err(e) => {
                if crate::held::connection_lost(&e) {
                    conns.clear_idle();
                }
                Err(e.into())
            }
        }
    }
}
