//! The server side of the audit log: every data access is appended (group commit) before its
//! response is sent — if the append fails the request fails with 503 and returns nothing —
//! and a signer extends its view of the tree and signs a tree head every second while events
//! arrive, and on shutdown.

use crate::error::ApiError;
use axum::http::StatusCode;
use custodia_audit::event::{Event, EventRef};
use custodia_audit::index::{entry_of, Entry};
use custodia_audit::merkle::{Hash, HashAlg};
use custodia_audit::sth::{unhex, PublicKey, SigAlg, TreeSigner};
use custodia_audit::verify::Frontier;
use custodia_store::{AuditHeadRow, Store};
use custodia_vault::{Suite, Vault};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

const META_KEY: &str = "audit_signing_key";
const META_PUBLIC: &str = "audit_public_key";
const KEY_LABEL: &str = "audit/signing-key";
/// Events appended in one transaction at most.
const BATCH: usize = 1000;
/// The commit delay applies to batches smaller than this: a larger group already shares
/// its sync well.
const DELAY_BELOW: usize = 64;
/// The default of [`AuditLog::set_commit_delay`] (config key `audit_commit_delay_us`).
pub const DEFAULT_COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(200);
/// The longest commit delay allowed (longer ones are cut to this).
pub const MAX_COMMIT_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

/// What the appender is handed: an event to append (and who waits for its sequence
/// number), or a signed tree head to store.
enum Job {
    /// The event's canonical bytes and its index entry (made from the borrowed event, so
    /// that the indexer need not parse the bytes).
    Event(Vec<u8>, Entry, oneshot::Sender<Result<i64, ()>>),
    Head(AuditHeadRow, oneshot::Sender<custodia_store::Result<bool>>),
}

type HeadJob = (AuditHeadRow, oneshot::Sender<custodia_store::Result<bool>>);

pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    /// SQLite: tree heads are stored by the audit thread on the appender's connection, so
    /// that the audit file has one writer. Through sqlx, a head waited behind the appender's
    /// back-to-back transactions with SQLite's busy backoff — up to 5.6 s under load, past
    /// the one second the issue allows between an event and its signed head.
    heads_to_appender: std::sync::atomic::AtomicBool,
    store: Arc<dyn Store>,
    pub alg: HashAlg,
    pub public_key: PublicKey,
    signer: TreeSigner,
    frontier: Mutex<Frontier>,
    /// The size of the last tree head signed or seen, so the signer reads no history.
    last_signed: std::sync::atomic::AtomicU64,
    /// Tree hashes of the complete chunks of [`PROOF_CHUNK`] events, grown as proofs ask
    /// for larger trees: a proof then reads at most three chunks of events, not the log.
    chunk_roots: Mutex<Vec<Hash>>,
    stats: Arc<AuditStats>,
    /// Benchmarks only (`serve --dev --bench-unaudited`): events are not built nor stored,
    /// so that the read path can be measured without auditing. Off everywhere else.
    discard: std::sync::atomic::AtomicBool,
    /// SQLite's appender: microseconds to wait before a group commit while the CPU is
    /// saturated (see [`AuditLog::set_commit_delay`]); 0 = never.
    commit_delay: Arc<std::sync::atomic::AtomicU64>,
}

/// Counters of the appender, for `/metrics`.
#[derive(Default)]
struct AuditStats {
    /// Events durably appended by this node.
    appended: std::sync::atomic::AtomicU64,
    /// Group commits (one durable write each).
    groups: std::sync::atomic::AtomicU64,
    /// Group commits held back by the commit delay (see [`AuditLog::set_commit_delay`]).
    delayed: std::sync::atomic::AtomicU64,
    /// Events whose append failed (their requests got 503 and no data).
    failed: std::sync::atomic::AtomicU64,
    /// The investigation index's mark, as its indexer last saw it.
    indexed: Arc<std::sync::atomic::AtomicI64>,
    /// Restarts of the SQLite audit WAL (see custodia-store's `AuditAppender`).
    wal_restarts: std::sync::atomic::AtomicU64,
}

/// Events read per step of the signer's catch-up.
const CATCH_UP: i64 = 10_000;

/// Events per chunk for proofs (a power of two).
const PROOF_CHUNK: usize = 1024;

/// The hash and signature algorithms of a suite.
pub fn algorithms(suite: Suite) -> (HashAlg, SigAlg) {
    match suite {
        Suite::Intl => (HashAlg::Sha256, SigAlg::Ed25519),
        Suite::Gm => (HashAlg::Sm3, SigAlg::Sm2),
    }
}

fn hex(b: &[u8]) -> String {
    custodia_crypto::hex_lower(b)
}

/// A stored tree head as the verifier's type.
pub fn head_of(row: &AuditHeadRow) -> Option<custodia_audit::sth::SignedTreeHead> {
    Some(custodia_audit::sth::SignedTreeHead {
        tree_size: u64::try_from(row.tree_size).ok()?,
        root_hash: unhex(&row.root_hash)?.try_into().ok()?,
        timestamp_ms: row.timestamp_ms,
        signature: unhex(&row.signature)?,
    })
}

/// Every stored tree head as the verifier's type, oldest first; an error names a malformed one.
pub async fn stored_heads(
    store: &dyn Store,
) -> Result<Vec<custodia_audit::sth::SignedTreeHead>, String> {
    let rows = store.audit_heads().await.map_err(|e| e.to_string())?;
    rows.iter()
        .map(|r| {
            head_of(r)
                .ok_or_else(|| format!("a stored tree head (size {}) is malformed", r.tree_size))
        })
        .collect()
}

/// The log's public key as stored next to it (a verifier that trusts nobody brings its own).
pub async fn stored_public_key(store: &dyn Store) -> Option<PublicKey> {
    let text = store.get_meta(META_PUBLIC).await.ok()??;
    PublicKey::from_text(&text)
}

async fn signing_key(vault: &Vault, sig: SigAlg) -> Result<TreeSigner, String> {
    let store = vault.store();
    for _ in 0..2 {
        if let Some(sealed) = store.get_meta(META_KEY).await.map_err(|e| e.to_string())? {
            let secret = vault
                .open_secret(KEY_LABEL, &sealed)
                .map_err(|e| e.to_string())?;
            return TreeSigner::from_secret(sig, &secret)
                .ok_or_else(|| "the stored audit signing key is damaged".to_string());
        }
        let fresh = TreeSigner::generate(sig);
        let sealed = vault.seal_secret(KEY_LABEL, &fresh.secret_bytes());
        // Another node may win the race; then its key is read on the next pass.
        if store
            .insert_meta(META_KEY, &sealed)
            .await
            .map_err(|e| e.to_string())?
        {
            store
                .insert_meta(META_PUBLIC, &fresh.public_key().to_text())
                .await
                .map_err(|e| e.to_string())?;
            return Ok(fresh);
        }
    }
    Err("could not load the audit signing key".into())
}

impl AuditLog {
    /// Loads (or creates) the signing key, replays the stored events into the tree, and
    /// starts the appender and the signer.
    pub async fn start(vault: Arc<Vault>) -> Result<Arc<AuditLog>, String> {
        let (alg, sig) = algorithms(vault.suite());
        let signer = signing_key(&vault, sig).await?;
        let store = vault.store().clone();
        let (tx, rx) = mpsc::channel(BATCH * 4);
        let log = Arc::new(AuditLog {
            tx,
            store: store.clone(),
            alg,
            public_key: signer.public_key(),
            signer,
            frontier: Mutex::new(Frontier::default()),
            last_signed: std::sync::atomic::AtomicU64::new(0),
            chunk_roots: Mutex::new(Vec::new()),
            stats: Arc::new(AuditStats::default()),
            heads_to_appender: std::sync::atomic::AtomicBool::new(false),
            discard: std::sync::atomic::AtomicBool::new(false),
            commit_delay: Arc::new(std::sync::atomic::AtomicU64::new(
                DEFAULT_COMMIT_DELAY.as_micros() as u64,
            )),
        });
        let last = store
            .audit_heads()
            .await
            .map_err(|e| e.to_string())?
            .last()
            .map_or(0, |h| h.tree_size as u64);
        log.last_signed
            .store(last, std::sync::atomic::Ordering::Relaxed);
        log.catch_up().await.map_err(|e| e.to_string())?;
        // The index entries of the batches the appender appended are handed to the indexer
        // (below), so that it need not read those events back nor parse them. Room for ~4
        // indexer rounds of group commits at full load.
        let (handoff, handed) = std::sync::mpsc::sync_channel::<(i64, Vec<Entry>)>(1024);
        // (Opening it writes up to 64 MB into its WAL: not on a runtime thread.)
        let opening = store.clone();
        let appender = tokio::task::spawn_blocking(move || opening.audit_appender())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        match appender {
            // SQLite: a thread of its own appends with its own connection — no hand-off
            // to an async task and from it to sqlx's connection thread per batch.
            Some(mut appender) => {
                let mut rx = rx;
                let weak = Arc::downgrade(&log);
                let stats = log.stats.clone();
                let delay = log.commit_delay.clone();
                let mut busy = Saturation::new();
                std::thread::Builder::new()
                    .name("custodia-audit".into())
                    .spawn(move || {
                        while let Some(first) = rx.blocking_recv() {
                            let mut batch = take_batch(first, &mut rx);
                            let wait = delay.load(std::sync::atomic::Ordering::Relaxed);
                            if wait > 0
                                && batch.3.is_none()
                                && batch.0.len() < DELAY_BELOW
                                && busy.saturated()
                            {
                                std::thread::sleep(std::time::Duration::from_micros(wait));
                                stats
                                    .delayed
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                if let Ok(next) = rx.try_recv() {
                                    take_more(&mut batch, next, &mut rx);
                                }
                            }
                            let (events, entries, waiting, head) = batch;
                            if !events.is_empty() {
                                busy.committing();
                                let t = std::time::Instant::now();
                                let appended = appender.append(&events);
                                slow_commit(t, events.len());
                                let first_seq = appended.as_ref().ok().copied();
                                answer(waiting, appended, &stats);
                                appender.maintain();
                                stats.wal_restarts.store(
                                    appender.wal_restarts(),
                                    std::sync::atomic::Ordering::Relaxed,
                                );
                                if let (Some(first_seq), Some(log)) = (first_seq, weak.upgrade()) {
                                    log.grow_from_written(first_seq, &events);
                                }
                                if let Some(first_seq) = first_seq {
                                    // Full (the indexer is behind): it reads them back later.
                                    let _ = handoff.try_send((first_seq, entries));
                                }
                            }
                            // After the events queued before it: their requests are answered
                            // first, and the head covers only what the tree already holds.
                            if let Some((row, done)) = head {
                                let _ = done.send(appender.insert_head(&row));
                            }
                        }
                    })
                    .map_err(|e| e.to_string())?;
                log.heads_to_appender
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            None => {
                tokio::spawn(append_loop(
                    store.clone(),
                    rx,
                    log.stats.clone(),
                    handoff,
                    Arc::downgrade(&log),
                ));
            }
        }
        // The investigation index follows the log, a quarter of a second behind: a task
        // writes through the store; its postings are built (and events read back are parsed)
        // on a thread at the lowest priority.
        let weak = Arc::downgrade(&log);
        let indexed = log.stats.indexed.clone();
        let niced = Niced::start()?;
        let handed = Arc::new(std::sync::Mutex::new((Pending::default(), handed)));
        let mut waited = None;
        let mut failing = None;
        tokio::spawn(async move {
            // Four times a second. At the highest append rates more than `PENDING_CAP` entries
            // can arrive in between: those past the cap are read back from the log.
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(log) = weak.upgrade() else { break };
                match index_async(&log.store, &niced, &handed, &mut waited, 100_000).await {
                    Ok(upto) => {
                        indexed.store(upto, std::sync::atomic::Ordering::Relaxed);
                        if failing.take().is_some() {
                            tracing::info!(target: "custodia::audit", "indexing the audit log again");
                        }
                    }
                    // Said when it starts failing and once a minute while it does.
                    Err(e) => {
                        if failing.is_none_or(|t: std::time::Instant| t.elapsed().as_secs() >= 60) {
                            tracing::warn!(target: "custodia::audit", error = %e, "could not index the audit log");
                            failing = Some(std::time::Instant::now());
                        }
                    }
                }
            }
        });
        let weak = Arc::downgrade(&log);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(log) = weak.upgrade() else { break };
                if let Err(e) = log.sign_head().await {
                    tracing::error!(target: "custodia::audit", error = %e, "could not sign a tree head");
                }
            }
        });
        Ok(log)
    }

    /// The appender's counters and the signed tree's size, in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.stats;
        for (name, kind, help, value) in [
            (
                "custodia_audit_events_appended_total",
                "counter",
                "Audit events durably appended by this node.",
                s.appended.load(Relaxed),
            ),
            (
                "custodia_audit_group_commits_total",
                "counter",
                "Durable writes of the audit log (one per group of events).",
                s.groups.load(Relaxed),
            ),
            (
                "custodia_audit_delayed_commits_total",
                "counter",
                "Group commits the appender held back to gather more events (CPU saturated).",
                s.delayed.load(Relaxed),
            ),
            (
                "custodia_audit_append_failures_total",
                "counter",
                "Audit events that could not be stored (their requests were refused with 503).",
                s.failed.load(Relaxed),
            ),
            (
                "custodia_audit_wal_restarts_total",
                "counter",
                "Restarts of the SQLite audit log's write-ahead log past its size limit.",
                s.wal_restarts.load(Relaxed),
            ),
            (
                "custodia_audit_indexed_events",
                "gauge",
                "Events in the investigation index (it follows the log in the background).",
                s.indexed.load(Relaxed).max(0) as u64,
            ),
            (
                "custodia_audit_signed_tree_size",
                "gauge",
                "Size of the latest signed tree head.",
                self.last_signed.load(Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }

    /// The tree grows from what was just written instead of the signer reading it back —
    /// unless another node's events came first, which the signer's catch-up then reads in
    /// order. Called by SQLite's audit thread after it answered the batch's requests (and,
    /// as [`AuditLog::grow_from_written_async`], by PostgreSQL's append task). It waits for
    /// the frontier: the signer holds it only to push leaves it already hashed or to read the
    /// root, never across a database read. (With `try_lock`, one batch skipped while the
    /// signer held it left the tree behind every later batch, and the next signing chased
    /// the log's end through the database: 1.4 s under saturated appends.)
    fn grow_from_written(&self, first_seq: i64, events: &[Vec<u8>]) {
        let mut f = self.frontier.blocking_lock();
        self.grow(&mut f, first_seq, events);
    }

    /// The same from an async task (PostgreSQL's appender).
    async fn grow_from_written_async(&self, first_seq: i64, events: &[Vec<u8>]) {
        let mut f = self.frontier.lock().await;
        self.grow(&mut f, first_seq, events);
    }

    fn grow(&self, f: &mut Frontier, first_seq: i64, events: &[Vec<u8>]) {
        if f.size() == first_seq as u64 {
            for e in events {
                f.push(self.alg, self.alg.leaf(e));
            }
        }
    }

    /// Appends one event durably; the caller must not answer before this returns `Ok`.
    pub async fn record(&self, e: &Event) -> Result<i64, ApiError> {
        if self.discarding() {
            return Ok(-1);
        }
        let (bytes, entry) = e.with_ref(|e| (e.canonical(), entry_of(e)));
        self.record_canonical(bytes, entry).await
    }

    /// The same for an event with borrowed strings (the data paths: no `Event` built).
    pub async fn record_ref(&self, e: &EventRef<'_>) -> Result<i64, ApiError> {
        if self.discarding() {
            return Ok(-1);
        }
        self.record_canonical(e.canonical(), entry_of(e)).await
    }

    /// From now on records nothing: [`AuditLog::record`] answers `Ok(-1)` at once. Only for
    /// measuring the read path without auditing (#4's ratio); `custodia serve` allows it only
    /// on a `--dev` vault (sealed by the public dev passphrase, synthetic data).
    pub fn discard_events_for_benchmark(&self) {
        tracing::warn!(target: "custodia::audit", "BENCHMARK MODE: audit events are discarded, accesses are not recorded");
        self.discard
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// SQLite's appender only (PostgreSQL's is an async task, whose timers are too coarse):
    /// while the runtime's workers have not idled since the last group commit, so that the
    /// CPU is saturated, a group of fewer than 64 events waits `delay` once before it is
    /// committed and takes the events queued meanwhile. Like PostgreSQL's `commit_delay`,
    /// it trades latency for fewer syncs, but only under saturation, where requests wait in
    /// queues anyway; a server with idle time never waits. Zero turns it off; at most
    /// [`MAX_COMMIT_DELAY`].
    pub fn set_commit_delay(&self, delay: std::time::Duration) {
        self.commit_delay.store(
            delay.min(MAX_COMMIT_DELAY).as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn discarding(&self) -> bool {
        self.discard.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn record_canonical(&self, bytes: Vec<u8>, entry: Entry) -> Result<i64, ApiError> {
        let (done, wait) = oneshot::channel();
        let unavailable = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log cannot be written; nothing was returned",
            )
        };
        self.tx
            .send(Job::Event(bytes, entry, done))
            .await
            .map_err(|_| unavailable())?;
        wait.await
            .map_err(|_| unavailable())?
            .map_err(|_| unavailable())
    }

    /// Extends the tree with events appended since (by any node), up to the end of the log as
    /// first read (a batch shorter than asked ends it, so another node appending without a
    /// pause cannot keep it chasing). The frontier is not held while the events are read and
    /// hashed: the audit thread may grow it meanwhile from what it writes.
    async fn catch_up(&self) -> custodia_store::Result<()> {
        loop {
            let from = self.frontier.lock().await.size();
            let batch = self.store.audit_events(from as i64, CATCH_UP).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let last = batch.len() < CATCH_UP as usize;
            let leaves: Vec<(u64, Hash)> = batch
                .iter()
                .map(|(seq, bytes)| (*seq as u64, self.alg.leaf(bytes)))
                .collect();
            let mut f = self.frontier.lock().await;
            for (seq, leaf) in leaves {
                if seq < f.size() {
                    continue; // grown meanwhile by the audit thread
                }
                if seq != f.size() {
                    // A gap: another node's transaction is not visible yet; next time.
                    return Ok(());
                }
                f.push(self.alg, leaf);
            }
            if last {
                return Ok(());
            }
        }
    }

    /// Signs the current tree head if it grew.
    pub async fn sign_head(&self) -> custodia_store::Result<Option<u64>> {
        let t = std::time::Instant::now();
        let r = self.sign_head_inner().await;
        // A quarter of the second allowed between an event and its signed head.
        if t.elapsed() > std::time::Duration::from_millis(250) {
            tracing::info!(target: "custodia::audit", ms = t.elapsed().as_secs_f64() * 1000.0, "slow tree head signing");
        }
        r
    }

    async fn sign_head_inner(&self) -> custodia_store::Result<Option<u64>> {
        self.catch_up().await?;
        let (size, root): (u64, Hash) = {
            let f = self.frontier.lock().await;
            (f.size(), f.root(self.alg))
        };
        if size == 0 {
            return Ok(None);
        }
        if self.last_signed.load(std::sync::atomic::Ordering::Relaxed) >= size {
            return Ok(None);
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let sth = self.signer.sign(size, root, now_ms);
        let row = AuditHeadRow {
            tree_size: size as i64,
            root_hash: hex(&sth.root_hash),
            timestamp_ms: sth.timestamp_ms,
            signature: hex(&sth.signature),
        };
        if self
            .heads_to_appender
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let stopped =
                || custodia_store::StoreError::Direct("the audit appender has stopped".into());
            let (done, stored) = oneshot::channel();
            self.tx
                .send(Job::Head(row, done))
                .await
                .map_err(|_| stopped())?;
            stored.await.map_err(|_| stopped())??;
        } else {
            self.store.insert_audit_head(&row).await?;
        }
        self.last_signed
            .fetch_max(size, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(size))
    }
}

/// Group commit: takes whatever is queued (up to a batch), appends it in one transaction,
/// then answers every waiting request.
async fn append_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<AuditStats>,
    handoff: std::sync::mpsc::SyncSender<(i64, Vec<Entry>)>,
    log: std::sync::Weak<AuditLog>,
) {
    while let Some(first) = rx.recv().await {
        let (events, entries, waiting, head) = take_batch(first, &mut rx);
        if !events.is_empty() {
            let t = std::time::Instant::now();
            let appended = store.append_audit(&events).await;
            slow_commit(t, events.len());
            let first_seq = appended.as_ref().ok().copied();
            answer(waiting, appended, &stats);
            if let Some(first_seq) = first_seq {
                if let Some(log) = log.upgrade() {
                    log.grow_from_written_async(first_seq, &events).await;
                }
                let _ = handoff.try_send((first_seq, entries));
            }
        }
        if let Some((row, done)) = head {
            let _ = done.send(store.insert_audit_head(&row).await);
        }
    }
}

type Waiting = Vec<oneshot::Sender<Result<i64, ()>>>;

/// The first job and whatever events are queued after it, up to a batch; a tree head met on
/// the way ends the batch and is returned to be stored after it.
fn take_batch(first: Job, rx: &mut mpsc::Receiver<Job>) -> Batch {
    let mut batch = (vec![], vec![], vec![], None);
    take_more(&mut batch, first, rx);
    batch
}

/// Adds `first` and the events queued after it to a batch that has no tree head yet.
fn take_more(batch: &mut Batch, first: Job, rx: &mut mpsc::Receiver<Job>) {
    debug_assert!(batch.3.is_none(), "a batch ends at its tree head");
    let (events, entries, waiting, head) = batch;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        match job {
            Job::Head(row, done) => {
                *head = Some((row, done));
                return;
            }
            Job::Event(e, entry, done) => {
                events.push(e);
                entries.push(entry);
                waiting.push(done);
            }
        }
        if events.len() < BATCH {
            next = rx.try_recv().ok();
        }
    }
}

/// Whether the runtime's workers have had work without a break since the last group commit:
/// none of them parked (went idle) or was woken in between, and none is parked now. Then
/// every request is busy on the CPU, and a commit's fixed cost (an `fdatasync` is ~60–90 µs
/// of kernel CPU on a small VM) is better shared by more events. When any worker idles, the
/// CPU has room and nothing is delayed; a request to an idle server woke a worker, so it is
/// never delayed either.
struct Saturation {
    metrics: Option<tokio::runtime::RuntimeMetrics>,
    /// The workers' park/unpark counts summed at the last commit (`None`: some was parked).
    at_commit: Option<u64>,
}

impl Saturation {
    fn new() -> Saturation {
        let metrics = tokio::runtime::Handle::try_current()
            .ok()
            .map(|h| h.metrics());
        let mut s = Saturation {
            metrics,
            at_commit: None,
        };
        s.committing();
        s
    }

    /// The summed park/unpark counts if every worker is running (an odd count: parked).
    fn all_running(&self) -> Option<u64> {
        let m = self.metrics.as_ref()?;
        let mut sum = 0u64;
        for w in 0..m.num_workers() {
            let n = m.worker_park_unpark_count(w);
            if n % 2 == 1 {
                return None;
            }
            sum = sum.wrapping_add(n);
        }
        Some(sum)
    }

    fn saturated(&self) -> bool {
        self.at_commit.is_some() && self.all_running() == self.at_commit
    }

    fn committing(&mut self) {
        self.at_commit = self.all_running();
    }
}

/// A group commit's events, their index entries, their requests, and a tree head to store
/// after them.
type Batch = (Vec<Vec<u8>>, Vec<Entry>, Waiting, Option<HeadJob>);

/// Logs a group commit that kept its requests waiting past 50 ms (an fsync stuck behind the
/// disk: the latency tail of every audited request).
fn slow_commit(since: std::time::Instant, events: usize) {
    let took = since.elapsed();
    if took > std::time::Duration::from_millis(50) {
        tracing::info!(target: "custodia::audit", ms = took.as_secs_f64() * 1000.0, events, "slow audit group commit");
    }
}

/// Tells every request of a batch its sequence number, or that the append failed.
fn answer(waiting: Waiting, appended: custodia_store::Result<i64>, stats: &AuditStats) {
    use std::sync::atomic::Ordering::Relaxed;
    let n = waiting.len() as u64;
    match appended {
        Ok(first_seq) => {
            stats.groups.fetch_add(1, Relaxed);
            stats.appended.fetch_add(n, Relaxed);
            for (i, done) in waiting.into_iter().enumerate() {
                let _ = done.send(Ok(first_seq + i as i64));
            }
        }
        Err(e) => {
            stats.failed.fetch_add(n, Relaxed);
            tracing::error!(target: "custodia::audit", error = %e, "audit append failed");
            for done in waiting {
                let _ = done.send(Err(()));
            }
        }
    }
}

/// Routes whose handlers write their own, richer events (data calls).
fn audits_itself(route: &str) -> bool {
    route.starts_with("/v1/collections/{name}/records") || route == "/v1/collections/{name}/search"
}

/// Routes not worth an event each (monitoring scrapes, the API description).
fn unaudited(route: &str) -> bool {
    route == "/metrics" || route == "/openapi.json"
}

/// Audits every administrative act — schemas, users, service accounts, keys, policies,
/// security events, logout — with its outcome, before the response leaves (fail closed).
pub async fn audit_admin(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    if audits_itself(&route) || unaudited(&route) {
        return next.run(req).await;
    }
    let who = req.extensions().get::<crate::auth::Principal>().cloned();
    let method = req.method().clone();
    // The name in the path (user, service account or collection), if any.
    let target = req
        .uri()
        .path()
        .split('/')
        .nth(3)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(64).collect::<String>());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let resp = next.run(req).await;
    let outcome = match resp.extensions().get::<crate::error::ErrorCode>() {
        Some(c) => c.0.to_string(),
        None if resp.status().is_success() => "ok".to_string(),
        None => resp.status().as_u16().to_string(),
    };
    let Some(who) = who else { return resp };
    let event = Event {
        time_ms: crate::handlers::now_ms(),
        actor: who.name.clone(),
        actor_kind: crate::handlers::actor_kind(&who).into(),
        session: who
            .session
            .as_ref()
            .map(|h| h[..16.min(h.len())].to_string()),
        client_addr: client,
        request_id,
        action: format!("{method} {route}"),
        collection: None,
        record_ids: vec![],
        target,
        fields: Default::default(),
        searched: Default::default(),
        purpose: Some("administration".into()),
        reason: None,
        outcome,
    };
    match s.audit.record(&event).await {
        Ok(_) => resp,
        Err(e) => e.into_response(),
    }
}

/// The event of a sign-in attempt. The typed username is kept only if it could be a
/// username (a password typed into the wrong box must not land in the log).
pub fn login_event(username: &str, client: std::net::IpAddr, outcome: &str) -> Event {
    let actor = if custodia_core::is_valid_name(username) {
        username.to_string()
    } else {
        "(not a username)".to_string()
    };
    Event {
        time_ms: crate::handlers::now_ms(),
        actor,
        actor_kind: "user".into(),
        session: None,
        client_addr: Some(client.to_string()),
        request_id: None,
        action: "login".into(),
        collection: None,
        record_ids: vec![],
        target: None,
        fields: Default::default(),
        searched: Default::default(),
        purpose: None,
        reason: None,
        outcome: outcome.into(),
    }
}

// ----- HTTP: tree head, proofs, investigations ---------------------------------------

use crate::guard::Admin;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct TreeHeadView {
    pub tree_size: i64,
    /// Hex.
    pub root_hash: String,
    pub timestamp: String,
    pub timestamp_ms: i64,
    /// Hex; Ed25519 (intl) or SM2 (gm) over `custodia-tree-head-v1 ‖ size ‖ time ‖ root`.
    pub signature: String,
    /// `ed25519:<hex>` or `sm2:<hex>`.
    pub public_key: String,
}

fn bad(field: &str, msg: &str) -> ApiError {
    ApiError::bad_request("invalid_query", field, msg.to_string())
}

fn store_error(e: custodia_store::StoreError) -> ApiError {
    crate::auth::store_err(e)
}

async fn latest_head(s: &crate::AppState) -> Result<AuditHeadRow, ApiError> {
    s.vault
        .store()
        .audit_heads()
        .await
        .map_err(store_error)?
        .pop()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_tree_head",
                "no tree head has been signed yet",
            )
        })
}

/// Leaf hashes of the first `n` events.
/// Leaf hashes of events `from..to`.
async fn leaf_range(s: &crate::AppState, from: i64, to: i64) -> Result<Vec<Hash>, ApiError> {
    let alg = s.audit.alg;
    let mut out = Vec::with_capacity((to - from).max(0) as usize);
    while from + (out.len() as i64) < to {
        let at = from + out.len() as i64;
        let batch = s
            .vault
            .store()
            .audit_events(at, (to - at).min(10_000))
            .await
            .map_err(store_error)?;
        if batch.is_empty() {
            break;
        }
        out.extend(batch.iter().map(|(_, e)| alg.leaf(e)));
    }
    Ok(out)
}

/// A proof over the first `size` events about leaf or edge `m`, from the chunk hashes and
/// at most three chunks of events (see [`custodia_audit::merkle::Chunked`]). A log with
/// fewer than `size` events is the caller's error about `size_field`.
async fn chunked_proof<T>(
    s: &crate::AppState,
    size: usize,
    m: usize,
    size_field: &str,
    prove: impl FnOnce(&custodia_audit::merkle::Chunked) -> Option<T>,
) -> Result<T, ApiError> {
    let short = || bad(size_field, "the log holds fewer events than that size");
    use custodia_audit::merkle::{root, Chunked};
    let c = PROOF_CHUNK;
    let mut roots = s.audit.chunk_roots.lock().await;
    // Complete chunks not hashed yet (once each: events never change in a sound log).
    while roots.len() < size / c {
        let from = roots.len() * c;
        let leaves = leaf_range(s, from as i64, (from + 64 * c).min(size / c * c) as i64).await?;
        if leaves.len() < c {
            return Err(short());
        }
        roots.extend(leaves.chunks_exact(c).map(|l| root(s.audit.alg, l)));
    }
    let mut loaded = std::collections::BTreeMap::new();
    for i in Chunked::chunks_needed(c, size, m) {
        let (from, to) = (i * c, ((i + 1) * c).min(size));
        if from < to {
            let leaves = leaf_range(s, from as i64, to as i64).await?;
            if leaves.len() < to - from {
                return Err(short());
            }
            loaded.insert(i, leaves);
        }
    }
    let tree = Chunked {
        alg: s.audit.alg,
        chunk: c,
        roots: &roots,
        loaded: &loaded,
        size,
    };
    // Every chunk a proof needs is loaded (tested for every index and edge), and the
    // callers checked the bounds: no proof here is a bug, not bad input.
    prove(&tree).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "proof_failed",
            "the proof could not be made",
        )
    })
}

/// The latest signed tree head.
#[utoipa::path(get, path = "/v1/audit/tree-head", security(("bearer" = [])),
    responses((status = 200, body = TreeHeadView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn tree_head(State(s): State<crate::AppState>) -> Result<Json<TreeHeadView>, ApiError> {
    let h = latest_head(&s).await?;
    Ok(Json(TreeHeadView {
        tree_size: h.tree_size,
        root_hash: h.root_hash,
        timestamp: custodia_detect::format_timestamp(h.timestamp_ms / 1000),
        timestamp_ms: h.timestamp_ms,
        signature: h.signature,
        public_key: s.audit.public_key.to_text(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// Event index (0-based), below the tree size.
    #[param(minimum = 0)]
    pub index: i64,
    /// Tree size the proof is for; default: the latest signed tree head.
    #[param(minimum = 1)]
    pub size: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    pub index: i64,
    pub tree_size: i64,
    /// Hex of `H(0x00 ‖ event)`.
    pub leaf_hash: String,
    /// Hex hashes, leaf to root (RFC 6962 audit path).
    pub proof: Vec<String>,
}

/// RFC 6962 audit path of one event.
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", security(("bearer" = [])), params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody, description = "no_tree_head: none signed yet")))]
pub async fn inclusion(
    State(s): State<crate::AppState>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InclusionProof>, ApiError> {
    let Query(q) = q.map_err(|_| bad("query", "expected ?index=<n>[&size=<n>]"))?;
    let size = match q.size {
        Some(n) => n,
        None => latest_head(&s).await?.tree_size,
    };
    if q.index < 0 || q.index >= size {
        return Err(bad("index", "index must be below the tree size"));
    }
    let m = q.index as usize;
    let (leaf, proof) = chunked_proof(&s, size as usize, m, "size", |t| {
        Some((t.leaf(m)?, t.inclusion_proof(m)?))
    })
    .await?;
    Ok(Json(InclusionProof {
        index: q.index,
        tree_size: size,
        leaf_hash: hex(&leaf),
        proof: proof.iter().map(|h| hex(h)).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size, 1 up to `to`.
    #[param(minimum = 1)]
    pub from: i64,
    /// Default: the latest signed tree head.
    #[param(minimum = 1)]
    pub to: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: i64,
    pub to: i64,
    pub proof: Vec<String>,
}

/// RFC 6962 consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/audit/proof/consistency", security(("bearer" = [])), params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody, description = "no_tree_head: none signed yet")))]
pub async fn consistency(
    State(s): State<crate::AppState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let Query(q) = q.map_err(|_| bad("query", "expected ?from=<n>[&to=<n>]"))?;
    let to = match q.to {
        Some(n) => n,
        None => latest_head(&s).await?.tree_size,
    };
    if q.from < 1 || q.from > to {
        return Err(bad("from", "from must be between 1 and to"));
    }
    let m = q.from as usize;
    let proof = chunked_proof(&s, to as usize, m, "to", |t| t.consistency_proof(m)).await?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to,
        proof: proof.iter().map(|h| hex(h)).collect(),
    }))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub actor: Option<String>,
    /// A record id: "who accessed customer X".
    pub record: Option<String>,
    pub action: Option<String>,
    pub purpose: Option<String>,
    pub outcome: Option<String>,
    /// RFC 3339 time or date; empty: no bound.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Continue after this sequence number (the `next` of the previous page).
    pub after: Option<i64>,
    /// At most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventPage {
    pub events: Vec<AuditEventView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// The filters of an investigation, and the page they fill.
struct Matcher<'q> {
    q: &'q EventsQuery,
    since: Option<i64>,
    until: Option<i64>,
    /// Each string filter as serde writes it (quoted, escaped): an event without one of them
    /// is passed over before parsing, which is most of a scan's cost.
    needles: Vec<memchr::memmem::Finder<'static>>,
    limit: usize,
    out: Vec<AuditEventView>,
    next: Option<i64>,
}

impl Matcher<'_> {
    /// Offers a stored event; true once the page is full and another match was seen (the
    /// search stops).
    fn offer(&mut self, seq: i64, bytes: &[u8]) -> bool {
        if !self.needles.iter().all(|n| n.find(bytes).is_some()) {
            return false;
        }
        let Some(e) = Event::from_canonical(bytes) else {
            return false;
        };
        let q = self.q;
        let keep = q.actor.as_ref().is_none_or(|x| &e.actor == x)
            && q.record.as_ref().is_none_or(|x| e.record_ids.contains(x))
            && q.action.as_ref().is_none_or(|x| &e.action == x)
            && q.purpose
                .as_ref()
                .is_none_or(|x| e.purpose.as_ref() == Some(x))
            && q.outcome.as_ref().is_none_or(|x| &e.outcome == x)
            && self.since.is_none_or(|t| e.time_ms >= t)
            && self.until.is_none_or(|t| e.time_ms <= t);
        if !keep {
            return false;
        }
        if self.out.len() == self.limit {
            self.next = Some(self.out.last().map_or(seq - 1, |v| v.seq));
            return true;
        }
        self.out.push(AuditEventView {
            seq,
            event: serde_json::to_value(&e).unwrap_or_default(),
        });
        false
    }

    /// Reads the log from `from` (to `end`, or its end) and offers every event; true when the
    /// page filled.
    async fn scan(
        &mut self,
        store: &dyn Store,
        mut from: i64,
        end: Option<i64>,
    ) -> Result<bool, ApiError> {
        loop {
            let want = end.map_or(10_000, |e| (e - from).clamp(0, 10_000));
            if want == 0 {
                return Ok(false);
            }
            let batch = store.audit_events(from, want).await.map_err(store_error)?;
            if batch.is_empty() {
                return Ok(false);
            }
            for (seq, bytes) in batch {
                if end.is_some_and(|e| seq >= e) {
                    return Ok(false);
                }
                from = seq + 1;
                if self.offer(seq, &bytes) {
                    return Ok(true);
                }
            }
        }
    }
}

/// Words of postings (64 events each) read per round of an investigation.
const FOUND_WORDS: i64 = 64;

/// Investigations: events filtered by actor, record, action, purpose, outcome and time,
/// paginated (auditor, compliance officer). This read is itself audited.
///
/// The part of the log the investigation index covers is searched through it: the rarest
/// filter's entries, each checked for the others, and a time range narrowed to the blocks of
/// events it spans; only the events found are read. The rest of the log (what the indexer has
/// not reached yet: a quarter of a second's events, more while appends outpace it) is
/// scanned. Every event is checked against the filter as read from the log, so a wrong index
/// entry cannot add an event to the answer; a mark past the log's end is not trusted.
#[utoipa::path(get, path = "/v1/audit/events", security(("bearer" = [])), params(EventsQuery),
    responses((status = 200, body = AuditEventPage), (status = 403, body = crate::error::ErrorBody)))]
pub async fn events(
    State(s): State<crate::AppState>,
    a: Admin,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditEventPage>, ApiError> {
    s.guard.require(
        &a.asker,
        custodia_policy::Action::ReadAudit,
        &custodia_policy::Target::System,
    )?;
    let Query(q) = q.map_err(|_| bad("query", "unknown or malformed filter"))?;
    Ok(Json(
        search_events(s.vault.store().as_ref(), &q, true).await?,
    ))
}

/// The search behind `GET /v1/audit/events`; `use_index: false` scans the whole log (the
/// benchmark's reference).
pub async fn search_events(
    store: &dyn Store,
    q: &EventsQuery,
    use_index: bool,
) -> Result<AuditEventPage, ApiError> {
    match search_once(store, q, use_index).await? {
        Some(page) => Ok(page),
        // The index was emptied while it was read (`audit reindex`): scan instead.
        None => Ok(search_once(store, q, false)
            .await?
            .unwrap_or(AuditEventPage {
                events: vec![],
                next: None,
            })),
    }
}

/// [`search_events`]; `None` when the index's mark went back while the index was read (it
/// was emptied meanwhile, and what was read of it may lack entries).
async fn search_once(
    store: &dyn Store,
    q: &EventsQuery,
    use_index: bool,
) -> Result<Option<AuditEventPage>, ApiError> {
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        match v {
            None => Ok(None),
            // `?since=` (empty) is no bound, as on /v1/security-events.
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => custodia_detect::parse_timestamp(t)
                .map(|x| Some(x * 1000))
                .ok_or_else(|| bad(field, "expected a date or an RFC 3339 time")),
        }
    };
    let since = time("since", &q.since)?;
    let until = time("until", &q.until)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit", "limit must be between 1 and 1000"));
    }
    let from = q.after.map_or(0, |a| a.saturating_add(1)).max(0);
    let filters = [
        ("actor", &q.actor),
        ("record", &q.record),
        ("action", &q.action),
        ("purpose", &q.purpose),
        ("outcome", &q.outcome),
    ];
    let mut m = Matcher {
        q,
        since,
        until,
        needles: filters
            .iter()
            .filter_map(|(_, v)| v.as_ref())
            .map(|v| {
                memchr::memmem::Finder::new(&serde_json::to_vec(v).unwrap_or_default()).into_owned()
            })
            .collect(),
        limit: limit as usize,
        out: vec![],
        next: None,
    };
    let mut upto = if use_index {
        store.audit_index_upto().await.map_err(store_error)?
    } else {
        0
    };
    // A mark past the log's last event (the log cut short, or the mark moved by hand) would
    // leave the events appended below it out of both the index and the scan: scan it all.
    if upto > 0
        && store
            .audit_events_at(&[upto - 1])
            .await
            .map_err(store_error)?
            .is_empty()
    {
        tracing::error!(target: "custodia::audit", mark = upto,
            "the audit index's mark is past the log's end; searching without the index (run `custodia audit verify --index`)");
        upto = 0;
    }
    // The indexed part, [lo, hi).
    let (mut lo, mut hi) = (from, upto);
    if since.is_some() || until.is_some() {
        match store
            .audit_index_span(since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX))
            .await
            .map_err(store_error)?
        {
            Some((a, b)) => (lo, hi) = (lo.max(a), hi.min(b)),
            None => hi = lo,
        }
    }
    let mut keys: Vec<i64> = filters
        .iter()
        .filter_map(|(kind, v)| v.as_ref().map(|v| custodia_audit::index::key(kind, v)))
        .collect();
    let mut full = false;
    if lo < hi && keys.is_empty() {
        full = m.scan(store, lo, Some(hi)).await?;
    } else if lo < hi {
        if keys.len() > 1 {
            let mut counted = Vec::with_capacity(keys.len());
            for k in keys {
                let n = store
                    .audit_index_count(k, lo, hi, 10_000)
                    .await
                    .map_err(store_error)?;
                counted.push((n, k));
            }
            counted.sort();
            keys = counted.into_iter().map(|(_, k)| k).collect();
        }
        while !full && lo < hi {
            let (found, next) = store
                .audit_index_find(&keys, lo, hi, FOUND_WORDS)
                .await
                .map_err(store_error)?;
            // Read in slices of what the page still lacks (and one more, for `next`), so
            // that a common value does not read thousands of events for a page of a few.
            let mut rest = &found[..];
            while !full && !rest.is_empty() {
                let want = (m.limit + 1 - m.out.len()).max(16).min(rest.len());
                let (now, later) = rest.split_at(want);
                rest = later;
                for (seq, bytes) in store.audit_events_at(now).await.map_err(store_error)? {
                    if m.offer(seq, &bytes) {
                        full = true;
                        break;
                    }
                }
            }
            match next {
                Some(n) => lo = n,
                None => break,
            }
        }
    }
    if use_index && upto > 0 && store.audit_index_upto().await.map_err(store_error)? < upto {
        return Ok(None);
    }
    if !full {
        m.scan(store, from.max(upto), None).await?;
    }
    Ok(Some(AuditEventPage {
        events: m.out,
        next: m.next,
    }))
}

/// Events indexed per transaction. Each transaction rewrites the last page of every key it
/// touches, so fewer, larger ones write fewer pages per entry (5,000 until 2026-12-04).
const INDEX_BATCH: i64 = 20_000;

/// What indexing these events (in sequence order) adds.
pub fn index_batch(events: &[(i64, Vec<u8>)]) -> custodia_store::AuditIndexBatch {
    let entries: Vec<(i64, Entry)> = events
        .iter()
        .filter_map(|(seq, bytes)| Some((*seq, custodia_audit::index::entry(bytes)?)))
        .collect();
    index_entries(&entries)
}

/// What indexing these entries (in sequence order) adds.
fn index_entries(entries: &[(i64, Entry)]) -> custodia_store::AuditIndexBatch {
    let mut b = custodia_store::AuditIndexBatch::default();
    let mut keyed: Vec<(i64, i64)> = Vec::with_capacity(entries.len() * 6);
    for (seq, entry) in entries {
        keyed.extend(entry.keys.iter().map(|k| (*k, *seq)));
        let (block, t) = (seq / custodia_store::AUDIT_INDEX_BLOCK, entry.time_ms);
        add_block(&mut b.blocks, (block, t, t));
    }
    // In key order (each key's postings then land side by side in the index's tree), one
    // posting per key and word of 64 events.
    keyed.sort_unstable();
    for (key, seq) in keyed {
        let (word, bit) = custodia_store::audit_index_bit(seq);
        match b.postings.last_mut() {
            Some(p) if p.0 == key && p.1 == word => p.2 |= bit,
            _ => b.postings.push((key, word, bit)),
        }
    }
    b
}

/// Adds a block's time range `(block, earliest, latest)` to ranges in block order: widens the
/// last one if it is the same block.
fn add_block(blocks: &mut Vec<(i64, i64, i64)>, b: (i64, i64, i64)) {
    match blocks.last_mut() {
        Some(l) if l.0 == b.0 => {
            l.1 = l.1.min(b.1);
            l.2 = l.2.max(b.2);
        }
        _ => blocks.push(b),
    }
}

/// The entries (events × keys) in postings.
fn entries_in(postings: &[(i64, i64, i64)]) -> i64 {
    postings
        .iter()
        .map(|p| i64::from((p.2 as u64).count_ones()))
        .sum()
}

/// [`index_log`] for the indexing task: the entries the appender handed over where they
/// continue the index, else events read back and parsed; postings built on the low-priority
/// thread. Returns the mark reached. Events at the mark that were not handed over are most
/// likely another node's, which that node indexes from memory: they are read back only if
/// the mark is still there a round later (`waited`), so that nodes do not all read and parse
/// each other's events.
async fn index_async(
    store: &Arc<dyn Store>,
    niced: &Niced,
    handed: &HandedOver,
    waited: &mut Option<i64>,
    max: i64,
) -> custodia_store::Result<i64> {
    let mut done = 0;
    loop {
        let from = store.audit_index_upto().await?;
        let h = handed.clone();
        let run = niced
            .run(move || {
                // (Poisoned by a panic: what it holds is only a cache of the log.)
                let mut h = h.lock().unwrap_or_else(|p| p.into_inner());
                let (pending, rx) = &mut *h;
                while let Ok((first, events)) = rx.try_recv() {
                    pending.add(first, events);
                }
                let run = pending.run_from(from)?;
                let (last, n) = (run.last()?.0, run.len() as i64);
                Some((last, n, index_entries(&run)))
            })
            .await
            .flatten();
        let (last, n, batch, was_handed) = match run {
            Some((last, n, batch)) => (last, n, batch, true),
            None if *waited != Some(from) => {
                *waited = Some(from);
                return Ok(from);
            }
            None => {
                let events = store.audit_events(from, INDEX_BATCH).await?;
                let Some(last) = events.last().map(|e| e.0) else {
                    if from > 0 && store.audit_events_at(&[from - 1]).await?.is_empty() {
                        // Not indexing again until `audit reindex`; said once per mark.
                        static SAID: std::sync::atomic::AtomicI64 =
                            std::sync::atomic::AtomicI64::new(-1);
                        if SAID.swap(from, std::sync::atomic::Ordering::Relaxed) != from {
                            tracing::error!(target: "custodia::audit", mark = from,
                                "the audit index's mark is past the log's end: the index is not kept up and searches scan the log; run `custodia audit verify --index` and `custodia audit reindex`");
                        }
                    }
                    return Ok(from);
                };
                let n = events.len() as i64;
                let Some(batch) = niced.run(move || index_batch(&events)).await else {
                    return Ok(from);
                };
                (last, n, batch, false)
            }
        };
        if store.write_audit_index(from, last + 1, batch).await? {
            done += n;
        }
        if (!was_handed && n < INDEX_BATCH) || done >= max {
            return store.audit_index_upto().await;
        }
    }
}

type HandedOver = Arc<std::sync::Mutex<(Pending, std::sync::mpsc::Receiver<(i64, Vec<Entry>)>)>>;

/// A thread at the lowest priority that runs the closures it is given, one at a time.
struct Niced(std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>);

impl Niced {
    fn start() -> Result<Niced, String> {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::Builder::new()
            .name("custodia-audit-index".into())
            .spawn(move || {
                lower_priority();
                while let Ok(job) = rx.recv() {
                    // A job that panics fails alone (its caller gets `None`); the thread
                    // goes on with the next.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!(target: "custodia::audit", "an audit index job panicked");
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Niced(tx))
    }

    /// `f`'s result; `None` if the thread is gone.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .ok()?;
        rx.await.ok()
    }
}

/// Events the audit thread handed to the indexer, by sequence number, until indexed.
#[derive(Default)]
struct Pending(std::collections::BTreeMap<i64, Entry>);

/// Entries kept for the indexer at most (~6 MB); past that it reads the events back.
const PENDING_CAP: usize = 50_000;

impl Pending {
    /// Keeps a handed-over batch, unless that would pass the cap: then the batch is dropped
    /// (read back later), and what is kept, the run the index continues with, stays.
    fn add(&mut self, first: i64, events: Vec<Entry>) {
        if self.0.len() + events.len() <= PENDING_CAP {
            self.0.extend((first..).zip(events));
        }
    }

    /// The events from `from` on without a gap (at most a batch), taken out; `None` when the
    /// event at `from` was not handed over (another node's, or dropped).
    fn run_from(&mut self, from: i64) -> Option<Vec<(i64, Entry)>> {
        self.0 = self.0.split_off(&from);
        let mut run = vec![];
        let mut next = from;
        while (run.len() as i64) < INDEX_BATCH {
            let Some(e) = self.0.remove(&next) else { break };
            run.push((next, e));
            next += 1;
        }
        (!run.is_empty()).then_some(run)
    }
}

/// Lowers the calling thread to the lowest scheduling priority (nice 19), where the system
/// allows it.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(target: "custodia::audit", error = %e, "could not lower the index thread's priority");
    }
}

/// Brings the investigation index towards the end of the log, `INDEX_BATCH` events per
/// transaction, at most about `max` events; returns how many it indexed. Several nodes may run
/// it at once: each batch is written by one of them.
pub async fn index_log(store: &Arc<dyn Store>, max: i64) -> custodia_store::Result<i64> {
    let mut done = 0;
    while done < max {
        let from = store.audit_index_upto().await?;
        let events = store.audit_events(from, INDEX_BATCH).await?;
        let Some(last) = events.last().map(|e| e.0) else {
            break;
        };
        let n = events.len() as i64;
        // Parsing thousands of events would hold up a runtime thread for milliseconds.
        let Ok(batch) = tokio::task::spawn_blocking(move || index_batch(&events)).await else {
            break;
        };
        if store.write_audit_index(from, last + 1, batch).await? {
            done += n;
        }
        if n < INDEX_BATCH {
            break;
        }
    }
    Ok(done)
}

/// What [`check_index`] found in an index that matches its log.
#[derive(Debug, PartialEq, Eq)]
pub struct IndexCheck {
    /// Events covered (the index's mark).
    pub indexed: i64,
    /// Entries `(key, event)`.
    pub entries: i64,
}

/// Rebuilds the investigation index of every event below its mark from the log and compares
/// it with the stored one: every entry present, no other entry below the mark, each block's
/// times exact. (The index is outside the tree: whoever can write the database could hide
/// an event from investigations by deleting its entry; this finds that.) The error names the
/// first event whose entries differ, or what else does.
pub async fn check_index(store: &dyn Store) -> Result<IndexCheck, String> {
    let upto = store.audit_index_upto().await.map_err(|e| e.to_string())?;
    let mut from = 0i64;
    let mut entries = 0i64;
    let mut blocks: Vec<(i64, i64, i64)> = vec![];
    while from < upto {
        let events = store
            .audit_events(from, INDEX_BATCH.min(upto - from))
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = events.last().map(|e| e.0) else {
            return Err(format!(
                "the index's mark is at event {upto}, past the log's end (event {from} is missing)"
            ));
        };
        let batch = index_batch(&events);
        let held = store
            .audit_index_holds(&batch.postings)
            .await
            .map_err(|e| e.to_string())?;
        if held != batch.postings.len() as i64 {
            for (seq, bytes) in &events {
                let one = index_batch(&[(*seq, bytes.clone())]);
                let held = store
                    .audit_index_holds(&one.postings)
                    .await
                    .map_err(|e| e.to_string())?;
                if held != one.postings.len() as i64 {
                    return Err(format!(
                        "event {seq}: {} of its {} index entries are missing",
                        one.postings.len() as i64 - held,
                        one.postings.len()
                    ));
                }
            }
        }
        entries += entries_in(&batch.postings);
        for b in batch.blocks {
            add_block(&mut blocks, b);
        }
        from = last + 1;
    }
    let (stored, stored_blocks) = store
        .audit_index_totals(upto)
        .await
        .map_err(|e| e.to_string())?;
    if stored != entries {
        return Err(format!(
            "the index holds {stored} entries below event {upto}, the events give {entries}"
        ));
    }
    // Blocks past the mark, or the mark's own block grown by events indexed since it was
    // read (a server indexing meanwhile), are not this check's.
    let block = custodia_store::AUDIT_INDEX_BLOCK;
    let stored_blocks: Vec<_> = stored_blocks
        .into_iter()
        .filter(|b| b.0.saturating_mul(block) < upto)
        .collect();
    if stored_blocks.len() != blocks.len() {
        return Err(format!(
            "the index has {} time blocks below event {upto}, the events give {}",
            stored_blocks.len(),
            blocks.len()
        ));
    }
    for (want, got) in blocks.iter().zip(&stored_blocks) {
        let whole = (want.0 + 1) * block <= upto;
        let fits = want.0 == got.0
            && if whole {
                want == got
            } else {
                got.1 <= want.1 && got.2 >= want.2
            };
        if !fits {
            return Err(format!(
                "the time range of block {} (events {} to {}) differs from its events'",
                want.0,
                want.0 * block,
                (want.0 + 1) * block - 1
            ));
        }
    }
    Ok(IndexCheck {
        indexed: upto,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_at(seq: i64, actor: &str, record: &str) -> Event {
        Event {
            time_ms: 1_795_543_247_000 + seq * 10,
            actor: actor.into(),
            actor_kind: "user".into(),
            action: "read".into(),
            record_ids: vec![record.into()],
            outcome: "ok".into(),
            ..Default::default()
        }
    }

    fn event(seq: i64, actor: &str, record: &str) -> (i64, Vec<u8>) {
        (seq, event_at(seq, actor, record).canonical())
    }

    /// A queued event job whose bytes are its number, and the receiver of its answer.
    fn event_job(n: u32) -> (Job, oneshot::Receiver<Result<i64, ()>>) {
        let (done, wait) = oneshot::channel();
        let e = event_at(n as i64, "a", "r");
        let entry = e.with_ref(entry_of);
        (Job::Event(n.to_be_bytes().to_vec(), entry, done), wait)
    }

    fn head_job(size: i64) -> Job {
        let (done, _) = oneshot::channel();
        let row = AuditHeadRow {
            tree_size: size,
            root_hash: String::new(),
            timestamp_ms: 0,
            signature: String::new(),
        };
        Job::Head(row, done)
    }

    fn numbers(events: &[Vec<u8>]) -> Vec<u32> {
        events
            .iter()
            .map(|e| u32::from_be_bytes(e[..4].try_into().unwrap()))
            .collect()
    }

    /// A batch takes the events queued after its first job, in order, and ends at a tree
    /// head met on the way; what follows the head stays queued for the next batch. The
    /// commit delay's second take (`take_more`) keeps the same rule.
    #[test]
    fn a_batch_ends_at_its_tree_head_and_keeps_the_order() {
        let (tx, mut rx) = mpsc::channel(16);
        // The answers' receivers stay alive, as the waiting requests do.
        let queue = |n| {
            let (job, wait) = event_job(n);
            tx.try_send(job).ok().unwrap();
            wait
        };
        let first = event_job(0);
        let mut answers = vec![first.1, queue(1), queue(2)];
        let batch = take_batch(first.0, &mut rx);
        assert_eq!(numbers(&batch.0), [0, 1, 2]);
        assert_eq!((batch.1.len(), batch.2.len()), (3, 3));
        assert!(batch.3.is_none(), "no head was queued");

        // The delay's second take: more events, then a head in the middle of the queue.
        let mut batch = batch;
        let (e3, w3) = event_job(3);
        answers.extend([w3, queue(4)]);
        tx.try_send(head_job(5)).ok().unwrap();
        answers.push(queue(6));
        take_more(&mut batch, e3, &mut rx);
        assert_eq!(numbers(&batch.0), [0, 1, 2, 3, 4]);
        assert_eq!(batch.2.len(), 5, "one answer per event");
        assert_eq!(batch.3.as_ref().map(|h| h.0.tree_size), Some(5));
        // The event after the head begins the next batch.
        let next = rx.try_recv().ok().unwrap();
        let after = take_batch(next, &mut rx);
        assert_eq!(numbers(&after.0), [6]);
        // A head first in the queue makes a batch of no events (stored on its own).
        tx.try_send(head_job(7)).ok().unwrap();
        let alone = take_batch(rx.try_recv().ok().unwrap(), &mut rx);
        assert!(alone.0.is_empty() && alone.2.is_empty());
        assert_eq!(alone.3.map(|h| h.0.tree_size), Some(7));
    }

    /// A batch holds at most `BATCH` events (one transaction's worth); the rest wait.
    #[test]
    fn a_batch_holds_at_most_batch_events() {
        let (tx, mut rx) = mpsc::channel(BATCH + 16);
        let mut answers = vec![];
        let (first, w) = event_job(0);
        answers.push(w);
        for n in 1..(BATCH as u32 + 10) {
            let (job, w) = event_job(n);
            answers.push(w);
            tx.try_send(job).ok().unwrap();
        }
        let batch = take_batch(first, &mut rx);
        assert_eq!(batch.0.len(), BATCH);
        assert_eq!(numbers(&batch.0), (0..BATCH as u32).collect::<Vec<_>>());
        let rest = take_batch(rx.try_recv().ok().unwrap(), &mut rx);
        assert_eq!(
            numbers(&rest.0),
            (BATCH as u32..BATCH as u32 + 10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn postings_hold_one_bit_per_event_in_words_of_64() {
        use custodia_audit::index::key;
        let actor = |s| if s == 64 { "b" } else { "a" };
        let events: Vec<_> = [62, 63, 64, 65, 1100]
            .into_iter()
            .map(|s| event(s, actor(s), &format!("r{s}")))
            .collect();
        let b = index_batch(&events);
        // Entries made before storing (handed over by the audit thread) index alike.
        let made: Vec<_> = [62, 63, 64, 65, 1100]
            .into_iter()
            .map(|s| {
                (
                    s,
                    event_at(s, actor(s), &format!("r{s}")).with_ref(entry_of),
                )
            })
            .collect();
        assert_eq!(index_entries(&made), b);
        let posting = |k: i64, word: i64| {
            b.postings
                .iter()
                .find(|p| p.0 == k && p.1 == word)
                .map(|p| p.2 as u64)
        };
        let a = key("actor", "a");
        assert_eq!(posting(a, 0), Some((1 << 62) | (1 << 63)));
        assert_eq!(posting(a, 1), Some(1 << 1)); // 65
        assert_eq!(posting(a, 17), Some(1 << (1100 - 17 * 64)));
        assert_eq!(posting(key("actor", "b"), 1), Some(1)); // 64
        assert_eq!(posting(key("action", "read"), 1), Some(0b11));
        assert_eq!(posting(key("record", "r63"), 0), Some(1 << 63));
        // One posting per (key, word), in key order; four entries per event (no purpose).
        let mut keys: Vec<_> = b.postings.iter().map(|p| (p.0, p.1)).collect();
        keys.dedup();
        assert_eq!(keys.len(), b.postings.len());
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(entries_in(&b.postings), 5 * 4);
        // Time blocks of 1,024 events: events 62–65 in block 0, 1,100 in block 1.
        assert_eq!(
            b.blocks,
            [
                (0, 1_795_543_247_620, 1_795_543_247_650),
                (1, 1_795_543_258_000, 1_795_543_258_000)
            ]
        );
    }

    #[test]
    fn handed_over_events_are_taken_without_gaps_and_capped() {
        let batch = |first: i64, n: usize| {
            let entry = |i| Entry {
                time_ms: i,
                keys: vec![i],
            };
            (first, (0..n as i64).map(entry).collect())
        };
        let mut p = Pending::default();
        let (f, e) = batch(0, 10);
        p.add(f, e);
        let (f, e) = batch(20, 5);
        p.add(f, e);
        // Not handed over from 0 on: read back instead.
        assert!(p.run_from(-1).is_none());
        let run = p.run_from(0).unwrap();
        assert_eq!(
            run.iter().map(|e| e.0).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        // 10–19 are another node's: not here.
        assert!(p.run_from(10).is_none());
        // Past 20, what is older than the mark is dropped.
        assert_eq!(p.run_from(22).unwrap().len(), 3);
        assert!(p.0.is_empty());
        // Past the cap, the batch that would pass it is dropped (it is read back later); the
        // run kept, which the index continues with, stays.
        let (f, e) = batch(100, PENDING_CAP - 5);
        p.add(f, e);
        let (f, e) = batch(100 + PENDING_CAP as i64 - 5, 10);
        p.add(f, e);
        assert_eq!(p.0.len(), PENDING_CAP - 5);
        assert_eq!(p.run_from(100).unwrap().len(), INDEX_BATCH as usize);
        // Room again: kept, after the gap the dropped batch left.
        let (f, e) = batch(100 + PENDING_CAP as i64 + 5, 3);
        p.add(f, e);
        assert_eq!(p.0.len(), PENDING_CAP - 5 - INDEX_BATCH as usize + 3);
        p.0.clear();
        // A batch at most per run.
        let (f, e) = batch(0, INDEX_BATCH as usize + 7);
        let mut p = Pending::default();
        p.add(f, e);
        assert_eq!(p.run_from(0).unwrap().len(), INDEX_BATCH as usize);
        assert_eq!(p.run_from(INDEX_BATCH).unwrap().len(), 7);
    }
}
