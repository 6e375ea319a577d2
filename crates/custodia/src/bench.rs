//! `custodia bench`: measurements that the issues set targets for, each printed next to
//! its reference measured in the same run. Run with `--release`.

use clap::Subcommand;
use custodia_detect::synth::Synth;
use custodia_vault::{RecordInput, Suite, Vault};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Encrypt+decrypt of a 12-field record (the vault's full path) vs a bare AEAD loop
    /// over the same bytes.
    Crypto {
        #[arg(long, default_value = "intl")]
        suite: Suite,
        /// Distinct records cycled through.
        #[arg(long, default_value_t = 1000)]
        records: usize,
        /// Passes over them per round.
        #[arg(long, default_value_t = 10)]
        passes: usize,
        /// Rounds; each figure is the median over rounds.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Cedar: one decision (uncached) and a 12-field record's field modes (warm cache);
    /// then the read path (SQLite read, decrypt, JSON) with policy vs without.
    Policy {
        /// Decisions / reads per measurement.
        #[arg(long, default_value_t = 20_000)]
        iterations: usize,
        /// Records in the read-path database.
        #[arg(long, default_value_t = 1000)]
        records: usize,
        /// Rounds of the read-path comparison; the figure is the median.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Audit: durable appends (group commit) from concurrent writers, and whole-log
    /// verification vs a raw SHA-256 loop over the same bytes.
    Audit {
        /// Events appended.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Concurrent writers (requests in flight).
        #[arg(long, default_value_t = 256)]
        writers: usize,
        /// Concurrent readers in the read-path comparison (a list: each is measured).
        #[arg(long, value_delimiter = ',', default_value = "32,128,256")]
        readers: Vec<usize>,
        /// The appender's commit delay under saturation, µs (`audit_commit_delay_us`; at
        /// most 10000, as in the configuration).
        #[arg(long, default_value_t = custodia_server::audit::DEFAULT_COMMIT_DELAY.as_micros() as u64,
              value_parser = clap::value_parser!(u64).range(..=custodia_server::audit::MAX_COMMIT_DELAY.as_micros() as u64))]
        commit_delay_us: u64,
    },
    /// Scanner accuracy per type (byte-span overlap against the corpus's truth) and its
    /// speed in process, on a seeded synthetic corpus (generated when DIR has none).
    /// Speed against ripgrep: bench/scan_rg.sh.
    Scan {
        /// Corpus directory (made with this seed and size if it holds no truth.jsonl).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Corpus size in MB when generating.
        #[arg(long, default_value_t = 20)]
        mb: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Scanner threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Writes a synthetic CSV of the example `customers` collection (for import benchmarks).
    GenCsv {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub async fn run(cmd: BenchCmd) -> Result<(), String> {
    match cmd {
        BenchCmd::Crypto {
            suite,
            records,
            passes,
            rounds,
        } => crypto(suite, records, passes, rounds.max(1)).await,
        BenchCmd::GenCsv { rows, out, seed } => gen_csv(rows, &out, seed),
        BenchCmd::Scan {
            dir,
            mb,
            seed,
            threads,
        } => scan(dir, mb, seed, threads),
        BenchCmd::Policy {
            iterations,
            records,
            rounds,
        } => policy(iterations.max(100), records.max(10), rounds.max(1)).await,
        BenchCmd::Audit {
            events,
            writers,
            readers,
            commit_delay_us,
        } => audit(events.max(1000), writers.max(1), &readers, commit_delay_us).await,
    }
}

/// One pass of the read path with policy: decide read, shape fields, count the quota.
#[allow(clippy::too_many_arguments)]
async fn with_policy(
    vault: &Vault,
    ids: &[String],
    engine: &custodia_policy::Engine,
    guard: &custodia_server::guard::Guard,
    am: &custodia_policy::Asker,
    limits: &custodia_policy::quota::Limits,
    reads: usize,
    out: &mut Vec<f64>,
) -> Result<(), String> {
    let t = Instant::now();
    let mut bytes = 0usize;
    for i in 0..reads {
        let (schema, version, rec) = vault
            .get_with_schema("customers", &ids[i % ids.len()])
            .await
            .map_err(|e| e.to_string())?;
        let target = custodia_server::guard::Guard::record_target("customers", &rec.attributes);
        if !engine.allows(am, custodia_policy::Action::Read, &target) {
            return Err("the account manager may read".into());
        }
        let (view, clear) = guard.view(am, &schema, version, rec);
        guard
            .quotas
            .consume("bench", limits, 1, clear, custodia_store::now_unix())
            .map_err(|_| "quota")?;
        bytes += serde_json::to_vec(&view).map_err(|e| e.to_string())?.len();
    }
    out.push(reads as f64 / t.elapsed().as_secs_f64());
    std::hint::black_box(bytes);
    Ok(())
}

/// p50 and p99 of per-call times, in microseconds.
/// CPU time (user + system) this process has used, from /proc (Linux; 0 elsewhere).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ")".
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn percentiles(mut ns: Vec<u128>) -> (f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    (at(0.50), at(0.99))
}

fn bench_asker(roles: &[&str], purpose: &str) -> custodia_policy::Asker {
    use custodia_policy::{Asker, RequestContext, Subject, SubjectKind};
    Asker {
        subject: std::sync::Arc::new(
            Subject {
                kind: SubjectKind::User,
                name: "bench".into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                branch: "b1".into(),
                clearance: custodia_core::Tier::Vip,
                purposes: vec![purpose.into()],
                compliant: true,
                mfa: true,
                grants: vec![],
                collections: vec![],
            }
            .normalized(),
        ),
        context: std::sync::Arc::new(RequestContext {
            purpose: purpose.into(),
            reason: String::new(),
            hour: 10,
            weekday: 2,
            client_ip: "10.1.2.3".parse().expect("literal address"),
        }),
    }
}

async fn policy(iterations: usize, records: usize, rounds: usize) -> Result<(), String> {
    use custodia_policy::{Action, Engine, Target};
    let engine = std::sync::Arc::new(Engine::load(None).map_err(|e| e.to_string())?);
    let schema = custodia_vault::CollectionSchema::from_toml(crate::dev::CUSTOMERS_TOML)
        .map_err(|e| e.to_string())?;
    let am = bench_asker(&["account_manager"], "account_service");
    let target = Target::Record {
        collection: "customers".into(),
        tier: custodia_core::Tier::High,
        branch: "b1".into(),
    };
    let mut allowed = 0usize;
    let mut one = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        allowed += engine.decide_uncached(&am, Action::Read, &target) as usize;
        one.push(t.elapsed().as_nanos());
    }
    assert_eq!(allowed, iterations, "the account manager may read");
    let (p50, p99) = percentiles(one);
    if std::env::var_os("CUSTODIA_BENCH_BREAKDOWN").is_some() {
        let [e, r, a] = custodia_policy::profile_decision(&engine, &am, &target, iterations);
        println!("  entities {e} ns, context+request {r} ns, authorize {a} ns");
    }
    println!("one Cedar decision (uncached):      p50 {p50:.1} µs  p99 {p99:.1} µs  (target p99 <= 20 µs)");

    let fields = schema
        .fields
        .iter()
        .filter(|f| f.level != custodia_core::Level::C3)
        .count();
    let mut cold = Vec::with_capacity(iterations / 10);
    for _ in 0..iterations / 10 {
        let t = Instant::now();
        std::hint::black_box(engine.field_modes_uncached(
            &am,
            &schema,
            custodia_core::Tier::High,
            "b1",
        ));
        cold.push(t.elapsed().as_nanos());
    }
    let (c50, c99) = percentiles(cold);
    println!("{fields}-field record, uncached:          p50 {c50:.1} µs  p99 {c99:.1} µs  (2 decisions per field)");
    let mut warm = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let tier = [
            custodia_core::Tier::Standard,
            custodia_core::Tier::High,
            custodia_core::Tier::Vip,
        ][i % 3];
        let t = Instant::now();
        std::hint::black_box(engine.field_modes(&am, &schema, 1, tier, "b1"));
        warm.push(t.elapsed().as_nanos());
    }
    let (w50, w99) = percentiles(warm);
    println!("{fields}-field record, warm cache:        p50 {w50:.2} µs  p99 {w99:.2} µs  (target <= 30 µs)");

    // The read path: store read + decrypt + JSON, with and without the policy step
    // (decide read, decide field modes, mask, count quota).
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = custodia_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let vault = Vault::init(store, Suite::Intl, b"bench passphrase", true)
        .await
        .map_err(|e| e.to_string())?;
    vault
        .put_collection(schema.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut s = Synth::new(7);
    let inputs: Vec<RecordInput> = (0..records)
        .map(|i| {
            let mut r = twelve_field_record(&mut s);
            r.attributes.branch = if i % 2 == 0 { "b1".into() } else { "b2".into() };
            r
        })
        .collect();
    let ids: Vec<String> = vault
        .create_many("customers", &inputs)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|r| r.ok().map(|w| w.id))
        .collect();
    let guard = custodia_server::guard::Guard::new(
        engine.clone(),
        custodia_policy::quota::Quotas::new(Default::default()),
    );
    let limits = custodia_policy::quota::Limits {
        search_limit: 20,
        records_per_hour: u64::MAX / 4,
        records_per_day: u64::MAX / 4,
        clear_fields_per_day: u64::MAX / 4,
    };
    let reads = iterations.min(20_000);
    if std::env::var_os("CUSTODIA_BENCH_BREAKDOWN").is_some() {
        let (schema, version, rec) = vault
            .get_with_schema("customers", &ids[0])
            .await
            .map_err(|e| e.to_string())?;
        let target = custodia_server::guard::Guard::record_target("customers", &rec.attributes);
        let t = Instant::now();
        for _ in 0..reads {
            std::hint::black_box(engine.allows(&am, Action::Read, &target));
        }
        println!(
            "  allows (cached): {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / reads as f64
        );
        let t = Instant::now();
        for _ in 0..reads {
            std::hint::black_box(guard.view(&am, &schema, version, rec.clone()));
        }
        println!(
            "  view (incl. clone): {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / reads as f64
        );
        let t = Instant::now();
        for _ in 0..reads {
            std::hint::black_box(
                guard
                    .quotas
                    .consume("bench", &limits, 1, 12, custodia_store::now_unix())
                    .is_ok(),
            );
        }
        println!(
            "  quota: {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / reads as f64
        );
        let (view, _) = guard.view(&am, &schema, version, rec.clone());
        let t = Instant::now();
        for _ in 0..reads {
            std::hint::black_box(serde_json::to_vec(&view).map_err(|e| e.to_string())?);
        }
        println!(
            "  json view: {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / reads as f64
        );
        let t = Instant::now();
        for _ in 0..reads {
            std::hint::black_box(serde_json::to_vec(&rec.fields).map_err(|e| e.to_string())?);
        }
        println!(
            "  json fields: {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / reads as f64
        );
    }
    let mut with = vec![];
    let mut without = vec![];
    for round in 0..rounds * 2 {
        // Alternate which path runs first, so warm-up and drift favour neither.
        if round % 2 == 1 {
            with_policy(
                &vault, &ids, &engine, &guard, &am, &limits, reads, &mut with,
            )
            .await?;
        }
        let t = Instant::now();
        let mut bytes = 0usize;
        for i in 0..reads {
            let (_, _, rec) = vault
                .get_with_schema("customers", &ids[i % ids.len()])
                .await
                .map_err(|e| e.to_string())?;
            bytes += serde_json::to_vec(&rec.fields)
                .map_err(|e| e.to_string())?
                .len();
        }
        without.push(reads as f64 / t.elapsed().as_secs_f64());
        std::hint::black_box(bytes);
        let t = Instant::now();
        let mut bytes = 0usize;
        for i in 0..reads {
            let (schema, version, rec) = vault
                .get_with_schema("customers", &ids[i % ids.len()])
                .await
                .map_err(|e| e.to_string())?;
            let target = custodia_server::guard::Guard::record_target("customers", &rec.attributes);
            if !engine.allows(&am, Action::Read, &target) {
                return Err("the account manager may read".into());
            }
            let (view, clear) = guard.view(&am, &schema, version, rec);
            guard
                .quotas
                .consume("bench", &limits, 1, clear, custodia_store::now_unix())
                .map_err(|_| "quota")?;
            bytes += serde_json::to_vec(&view).map_err(|e| e.to_string())?.len();
        }
        with.push(reads as f64 / t.elapsed().as_secs_f64());
        std::hint::black_box(bytes);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (w, wo) = (median(&mut with), median(&mut without));
    println!(
        "read path (SQLite, {records} records, half own branch): with policy {w:.0} reads/s, \
         without {wo:.0} reads/s, ratio {:.3} (target >= 0.85)",
        w / wo
    );
    Ok(())
}

/// Twelve non-C3 fields: the synthetic customer plus employer code and notes.
fn twelve_field_record(s: &mut Synth) -> RecordInput {
    let mut r = crate::dev::synthetic_customer(s);
    r.fields
        .insert("employer_uscc".into(), Value::from(s.uscc()));
    r.fields.insert(
        "notes".into(),
        Value::from("prefers branch visits; statement by post"),
    );
    r
}

async fn crypto(suite: Suite, records: usize, passes: usize, rounds: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = custodia_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let vault = Vault::init(store, suite, b"bench passphrase", true)
        .await
        .map_err(|e| e.to_string())?;
    vault
        .put_collection(
            custodia_vault::CollectionSchema::from_toml(crate::dev::CUSTOMERS_TOML)
                .map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut s = Synth::new(99);
    let inputs: Vec<RecordInput> = (0..records).map(|_| twelve_field_record(&mut s)).collect();
    let n_fields = inputs[0].fields.len();
    let validated = vault
        .validate_many("customers", &inputs)
        .await
        .map_err(|e| e.to_string())?;
    // The reference encrypts exactly the same plaintexts under AADs of exactly the same
    // bytes' shape (collection ‖ 16-byte record id ‖ field ‖ 16-byte key id), one key per
    // record, as a bare loop over the AEAD would.
    let reference: Vec<Vec<(Vec<u8>, Vec<u8>)>> = validated
        .iter()
        .map(|v| {
            v.values
                .iter()
                .map(|(field, value)| {
                    let aad = custodia_crypto::aad(&[
                        b"customers",
                        &rand::random::<[u8; 16]>(),
                        field.as_bytes(),
                        &rand::random::<[u8; 16]>(),
                    ]);
                    (aad, value.as_bytes().to_vec())
                })
                .collect()
        })
        .collect();

    // Warm up all paths.
    for v in validated.iter().take(100) {
        let sealed = vault
            .seal_validated("customers", v)
            .await
            .map_err(|e| e.to_string())?;
        vault
            .open_only("customers", &sealed)
            .await
            .map_err(|e| e.to_string())?;
    }

    // Alternate the three measurements over several rounds and keep each one's median, so
    // that a burst of noise on the shared machine does not decide the ratio.
    let total = records * passes;
    let (mut crypto, mut raw, mut full) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut sink = 0usize;
        for _ in 0..passes {
            for v in &validated {
                let sealed = vault
                    .seal_validated("customers", v)
                    .await
                    .map_err(|e| e.to_string())?;
                sink += vault
                    .open_only("customers", &sealed)
                    .await
                    .map_err(|e| e.to_string())?
                    .len();
            }
        }
        crypto.push(t.elapsed().as_secs_f64());
        assert_eq!(sink, total * n_fields, "every field decrypted");

        let t = Instant::now();
        let mut sink = 0usize;
        for _ in 0..passes {
            for fields in &reference {
                let key = suite.generate_data_key();
                let aead = suite.aead(&key).map_err(|e| e.to_string())?;
                for (aad, value) in fields {
                    let ct = aead.seal(aad, value);
                    sink += aead.open_owned(aad, ct).map_err(|e| e.to_string())?.len();
                }
            }
        }
        raw.push(t.elapsed().as_secs_f64());
        assert!(sink > 0);

        let t = Instant::now();
        for _ in 0..passes {
            for r in &inputs {
                let sealed = vault
                    .seal_only("customers", r)
                    .await
                    .map_err(|e| e.to_string())?;
                vault
                    .open_only("customers", &sealed)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        full.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (crypto_secs, raw_secs, full_secs) =
        (median(&mut crypto), median(&mut raw), median(&mut full));
    let crypto_rate = total as f64 / crypto_secs;
    let raw_rate = total as f64 / raw_secs;
    let full_rate = total as f64 / full_secs;
    println!("suite {suite}, {n_fields}-field records, {total} encrypt+decrypt round trips per round, median of {rounds} rounds");
    println!(
        "field crypto (DEK wrap/unwrap, {n_fields} AEADs each way, blind indexes, stored form): {crypto_rate:>9.0} records/s ({:.2} µs/record)",
        1e6 / crypto_rate
    );
    println!(
        "bare AEAD loop (same plaintexts, same AAD shape, one key per record)             : {raw_rate:>9.0} records/s ({:.2} µs/record)",
        1e6 / raw_rate
    );
    println!("ratio: {:.2} (target ≥ 0.5)", crypto_rate / raw_rate);
    println!(
        "for reference, the whole write+read path with validation and normalization: {full_rate:.0} records/s ({:.2} µs/record, ratio {:.2})",
        1e6 / full_rate,
        full_rate / raw_rate
    );
    Ok(())
}

fn gen_csv(rows: usize, out: &PathBuf, seed: u64) -> Result<(), String> {
    let mut w = csv::Writer::from_path(out).map_err(|e| e.to_string())?;
    let mut s = Synth::new(seed);
    let mut cols: Vec<&str> = custodia_detect::synth::CUSTOMER_FIELDS.to_vec();
    cols.extend(["tier", "branch"]);
    w.write_record(&cols).map_err(|e| e.to_string())?;
    let mut row: Vec<String> = Vec::with_capacity(cols.len());
    for _ in 0..rows {
        row.clear();
        for (_, v) in s.customer() {
            row.push(v);
        }
        row.push(s.tier().to_string());
        row.push(s.branch());
        w.write_record(&row).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())?;
    Ok(())
}

fn bench_event(i: usize) -> custodia_audit::event::Event {
    let fields = custodia_detect::synth::CUSTOMER_FIELDS
        .iter()
        .chain(&["notes", "phone_pin"])
        .map(|f| (f.to_string(), "masked".to_string()))
        .collect();
    custodia_audit::event::Event {
        time_ms: 1_795_543_247_000 + i as i64,
        actor: format!("agent{:03}", i % 500),
        actor_kind: "user".into(),
        session: Some("0123456789abcdef".into()),
        client_addr: Some("10.1.2.3".into()),
        request_id: Some(format!("{:032x}", i)),
        action: "read".into(),
        collection: Some("customers".into()),
        // 20,000 customers, each read again every 20,000 events.
        record_ids: vec![format!("01a20ee5-faf1-7909-9a91-{:012x}", i % 20_000)],
        target: None,
        fields,
        searched: Default::default(),
        purpose: Some("customer_service".into()),
        reason: None,
        outcome: "ok".into(),
    }
}

async fn audit(
    events: usize,
    writers: usize,
    readers: &[usize],
    commit_delay_us: u64,
) -> Result<(), String> {
    use std::sync::Arc;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = custodia_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let vault = Arc::new(
        Vault::init(store, Suite::Intl, b"bench passphrase", true)
            .await
            .map_err(|e| e.to_string())?,
    );
    let log = custodia_server::audit::AuditLog::start(vault.clone()).await?;
    log.set_commit_delay(std::time::Duration::from_micros(commit_delay_us));
    let per = events / writers;
    let start = Instant::now();
    let mut tasks = vec![];
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let e = bench_event(w * per + i);
                let t = Instant::now();
                log.record(&e).await.map_err(|e| e.message)?;
                lat.push(t.elapsed().as_nanos());
            }
            Ok::<_, String>(lat)
        }));
    }
    // Tree heads signed while the appends run, as the server's signer does every second
    // (here every 200 ms, for more samples): how long each signing takes under load bounds
    // the time from an event to a signed head that covers it (≤ the period + this).
    let appending = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let signer = {
        let (log, appending) = (log.clone(), appending.clone());
        tokio::spawn(async move {
            let mut took = vec![];
            while appending.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let t = Instant::now();
                log.sign_head().await.map_err(|e| e.to_string())?;
                took.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, String>(took)
        })
    };
    let mut lat = vec![];
    for t in tasks {
        lat.extend(t.await.map_err(|e| e.to_string())??);
    }
    let secs = start.elapsed().as_secs_f64();
    appending.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut took = signer.await.map_err(|e| e.to_string())??;
    took.sort_by(|a, b| a.total_cmp(b));
    let n = lat.len();
    let (p50, p99) = percentiles(lat);
    println!(
        "durable appends (SQLite, fsync per group commit, {writers} writers): {:.0} events/s, \
         time to durable p50 {:.2} ms p99 {:.2} ms (targets >= 50,000/s, p99 <= 10 ms)",
        n as f64 / secs,
        p50 / 1000.0,
        p99 / 1000.0
    );
    println!(
        "tree heads signed during the appends: {}, signing took median {:.1} ms, at most {:.1} ms \
         (event to signed head <= 1 s + this; target p99 <= 1 s)",
        took.len(),
        took.get(took.len() / 2).copied().unwrap_or(0.0),
        took.last().copied().unwrap_or(0.0)
    );
    let t = Instant::now();
    log.sign_head().await.map_err(|e| e.to_string())?;
    println!(
        "signing a tree head after {n} appends (catch-up on what the tree lacks + sign): \
         {:.1} ms; heads are signed every second, so event to signed head <= 1 s + this",
        t.elapsed().as_secs_f64() * 1000.0
    );

    read_path_with_audit(&vault, &log, readers).await?;
    investigations(events).await?;

    // Verification speed vs a bare SHA-256 loop over the same bytes.
    let bytes: Vec<Vec<u8>> = (0..events).map(|i| bench_event(i).canonical()).collect();
    let total: usize = bytes.iter().map(Vec::len).sum();
    let alg = custodia_audit::merkle::HashAlg::Sha256;
    let signer = custodia_audit::sth::TreeSigner::generate(custodia_audit::sth::SigAlg::Ed25519);
    let mut f = custodia_audit::verify::Frontier::default();
    for b in &bytes {
        f.push(alg, alg.leaf(b));
    }
    let head = signer.sign(events as u64, f.root(alg), 0);
    let mut raw_rates = vec![];
    let mut verify_rates = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        let mut acc = 0u8;
        for b in &bytes {
            use sha2::Digest;
            acc ^= sha2::Sha256::digest(b)[0];
        }
        std::hint::black_box(acc);
        raw_rates.push(events as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let v = custodia_audit::verify::verify_log(
            alg,
            bytes.iter().map(Vec::as_slice),
            std::slice::from_ref(&head),
            &signer.public_key(),
        )
        .map_err(|e| e.to_string())?;
        assert_eq!(v.events, events as u64);
        verify_rates.push(events as f64 / t.elapsed().as_secs_f64());
    }
    raw_rates.sort_by(|a, b| a.total_cmp(b));
    verify_rates.sort_by(|a, b| a.total_cmp(b));
    let (raw, ver) = (raw_rates[1], verify_rates[1]);
    println!(
        "verify {events} events ({:.0} bytes each): {ver:.0} events/s vs raw SHA-256 loop \
         {raw:.0} events/s, ratio {:.2} (targets >= 1,000,000/s and >= 0.5)",
        total as f64 / events as f64,
        ver / raw
    );
    Ok(())
}

/// The investigation index: how fast it is built, and investigations through it vs a scan of
/// the whole log, on a fresh log of `events` events (SQLite).
async fn investigations(events: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}", dir.path().join("investigate.db").display());
    let store = custodia_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    for chunk in (0..events).collect::<Vec<_>>().chunks(5000) {
        let batch: Vec<Vec<u8>> = chunk.iter().map(|&i| bench_event(i).canonical()).collect();
        store
            .append_audit(&batch)
            .await
            .map_err(|e| e.to_string())?;
    }
    if std::env::var_os("CUSTODIA_BENCH_PHASES").is_some() {
        let t = Instant::now();
        let mut all = vec![];
        let mut from = 0;
        loop {
            let b = store
                .audit_events(from, 5000)
                .await
                .map_err(|e| e.to_string())?;
            let Some(l) = b.last() else { break };
            from = l.0 + 1;
            all.push(b);
        }
        let read = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let batches: Vec<_> = all
            .iter()
            .map(|b| custodia_server::audit::index_batch(b))
            .collect();
        let parse = t.elapsed().as_secs_f64();
        let rows: usize = batches.iter().map(|b| b.postings.len()).sum();
        println!("phases: read {read:.2} s, parse {parse:.2} s, {rows} posting rows");
    }
    let t = Instant::now();
    let n = custodia_server::audit::index_log(&store, i64::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "investigation index: {n} events indexed in {:.2} s, {:.0} events/s (one task, behind \
         the log)",
        secs,
        n as f64 / secs
    );
    let q = |f: &dyn Fn(&mut custodia_server::audit::EventsQuery)| {
        let mut q = custodia_server::audit::EventsQuery {
            limit: Some(100),
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let mid = events / 2;
    let second =
        |ms: usize| custodia_detect::format_timestamp((1_795_543_247_000 + ms as i64) / 1000);
    let cases: Vec<(&str, custodia_server::audit::EventsQuery)> = vec![
        (
            "who accessed customer X (record=)",
            q(&|q| q.record = bench_event(mid).record_ids.first().cloned()),
        ),
        (
            "what did user U access (actor=), a page of 100 from the middle",
            q(&|q| {
                q.actor = Some("agent007".into());
                q.after = Some(mid as i64);
            }),
        ),
        (
            "user U on customer X (actor= & record=)",
            q(&|q| {
                q.actor = Some(bench_event(mid).actor);
                q.record = bench_event(mid).record_ids.first().cloned();
            }),
        ),
        (
            "one second of the log (since= & until=), 1,000 events",
            q(&|q| {
                q.since = Some(second(mid));
                q.until = Some(second(mid + 1000));
                q.limit = Some(1000);
            }),
        ),
        (
            "refusals (outcome=denied): none",
            q(&|q| q.outcome = Some("denied".into())),
        ),
    ];
    for (name, query) in &cases {
        let timed = |use_index: bool| {
            let store = store.clone();
            async move {
                let mut ms = vec![];
                let mut found = 0;
                for _ in 0..3 {
                    let t = Instant::now();
                    let page =
                        custodia_server::audit::search_events(store.as_ref(), query, use_index)
                            .await
                            .map_err(|e| e.message)?;
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    found = page.events.len();
                }
                ms.sort_by(|a, b| a.total_cmp(b));
                Ok::<_, String>((ms[1], found))
            }
        };
        let (indexed, a) = timed(true).await?;
        let (scanned, b) = timed(false).await?;
        if a != b {
            return Err(format!(
                "{name}: {a} events through the index, {b} by a scan"
            ));
        }
        println!(
            "investigation over {events} events, {name}: {a} found, index {indexed:.2} ms vs \
             scan {scanned:.1} ms ({:.0}x)",
            scanned / indexed
        );
    }
    Ok(())
}

/// The read path (store read, decrypt, policy, view, JSON) from N concurrent readers, with
/// and without appending each read's audit event before answering; alternating, medians.
/// An audited run's CPU per read includes indexing its events (after the reads).
/// An audited read waits for its group commit (an fsync), so fewer readers than it takes
/// to keep both cores busy through that wait measure latency rather than throughput.
async fn read_path_with_audit(
    vault: &std::sync::Arc<Vault>,
    log: &std::sync::Arc<custodia_server::audit::AuditLog>,
    reader_counts: &[usize],
) -> Result<(), String> {
    use std::sync::Arc;
    let schema = custodia_vault::CollectionSchema::from_toml(crate::dev::CUSTOMERS_TOML)
        .map_err(|e| e.to_string())?;
    vault
        .put_collection(schema)
        .await
        .map_err(|e| e.to_string())?;
    let mut s = Synth::new(5);
    let inputs: Vec<RecordInput> = (0..1000).map(|_| twelve_field_record(&mut s)).collect();
    let ids: Arc<Vec<String>> = Arc::new(
        vault
            .create_many("customers", &inputs)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|r| r.ok().map(|w| w.id))
            .collect(),
    );
    let engine = Arc::new(custodia_policy::Engine::load(None).map_err(|e| e.to_string())?);
    let guard = Arc::new(custodia_server::guard::Guard::new(
        engine,
        custodia_policy::quota::Quotas::new(Default::default()),
    ));
    let asker = bench_asker(&["account_manager"], "account_service");
    for &readers in reader_counts {
        let readers = readers.max(1);
        let per = 16_000 / readers;
        let run = |audited: bool| {
            let (vault, log, guard, ids, asker) = (
                vault.clone(),
                log.clone(),
                guard.clone(),
                ids.clone(),
                asker.clone(),
            );
            async move {
                let t = Instant::now();
                let cpu0 = process_cpu_secs();
                let mut tasks = vec![];
                for r in 0..readers {
                    let (vault, log, guard, ids, asker) = (
                        vault.clone(),
                        log.clone(),
                        guard.clone(),
                        ids.clone(),
                        asker.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        let mut last = -1i64;
                        for i in 0..per {
                            let id = &ids[(r * per + i) % ids.len()];
                            let (schema, version, rec) = vault
                                .get_with_schema("customers", id)
                                .await
                                .map_err(|e| e.to_string())?;
                            let (view, _) = guard.view(&asker, &schema, version, rec);
                            if audited {
                                // Built as the read handler builds it: borrowed strings,
                                // the field modes once (until 2026-11-30 an owned `Event`,
                                // its modes built twice at first).
                                let (actor, request_id) =
                                    (format!("agent{:03}", i % 500), format!("{i:032x}"));
                                let modes = view.access.modes();
                                let e = custodia_audit::event::EventRef {
                                    time_ms: 1_795_543_247_000 + i as i64,
                                    actor: &actor,
                                    actor_kind: "user",
                                    session: Some("0123456789abcdef"),
                                    client_addr: Some("10.1.2.3"),
                                    request_id: Some(&request_id),
                                    action: "read",
                                    collection: Some("customers"),
                                    record_ids: std::slice::from_ref(&view.id),
                                    target: None,
                                    fields: custodia_audit::event::Pairs(&modes),
                                    searched: Default::default(),
                                    purpose: Some("customer_service"),
                                    reason: None,
                                    outcome: "ok",
                                };
                                last = last.max(log.record_ref(&e).await.map_err(|e| e.message)?);
                            }
                            std::hint::black_box(
                                serde_json::to_vec(&view).map_err(|e| e.to_string())?,
                            );
                        }
                        Ok::<i64, String>(last)
                    }));
                }
                let mut last = -1;
                for t in tasks {
                    last = last.max(t.await.map_err(|e| e.to_string())??);
                }
                let n = (readers * per) as f64;
                let rate = n / t.elapsed().as_secs_f64();
                if audited {
                    // The investigation index follows the log a quarter of a second behind:
                    // its work on this run's events counts in this run's CPU, and must not
                    // slow the next run (until 2026-12-04 it ran into the unaudited runs).
                    let store = vault.store();
                    let waiting = std::time::Instant::now();
                    while store.audit_index_upto().await.map_err(|e| e.to_string())? <= last {
                        if waiting.elapsed() > std::time::Duration::from_secs(120) {
                            return Err("the audit index did not catch up within 2 minutes".into());
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
                Ok::<(f64, f64), String>((rate, (process_cpu_secs() - cpu0) * 1e6 / n))
            }
        };
        let (mut with, mut without) = (vec![], vec![]);
        let (mut with_cpu, mut without_cpu) = (vec![], vec![]);
        for round in 0..6 {
            for audited in [round % 2 == 1, round % 2 == 0] {
                let (rate, cpu) = run(audited).await?;
                if audited {
                    with.push(rate);
                    with_cpu.push(cpu);
                } else {
                    without.push(rate);
                    without_cpu.push(cpu);
                }
            }
        }
        for v in [&mut with, &mut without, &mut with_cpu, &mut without_cpu] {
            v.sort_by(|a, b| a.total_cmp(b));
        }
        let (w, wo) = (with[3], without[3]);
        let (wc, woc) = (with_cpu[3], without_cpu[3]);
        println!(
        "read path, {readers} concurrent readers: with audit {w:.0} reads/s, without {wo:.0} reads/s, \
         ratio {:.2} (target >= 0.8); CPU per read {wc:.1} µs vs {woc:.1} µs, ratio {:.2}",
        w / wo,
        woc / wc
    );
    }
    Ok(())
}

/// Scanner accuracy and in-process speed on a synthetic corpus.
fn scan(dir: Option<PathBuf>, mb: u64, seed: u64, threads: usize) -> Result<(), String> {
    use custodia_corpus::{CorpusConfig, Span, METADATA_FILES, TRUTH_FILE};
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
            tmp.path().join("corpus")
        }
    };
    if !dir.join(TRUTH_FILE).exists() {
        let t = Instant::now();
        let s = custodia_corpus::generate(&CorpusConfig::new(seed, mb * 1_000_000), &dir)
            .map_err(|e| format!("generating the corpus: {e}"))?;
        println!(
            "corpus: {} files, {:.1} MB, seed {seed}, generated in {:.1} s",
            s.files.len(),
            s.total_bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    let opts = custodia_scan::Options {
        excludes: METADATA_FILES.iter().map(|f| f.to_string()).collect(),
        threads,
        ..Default::default()
    };
    let prefix = format!("{}/", dir.display());
    let mut best = f64::MAX;
    let mut found = vec![];
    let mut bytes = 0;
    for round in 0..3 {
        let (tx, rx) = custodia_scan::channel();
        let keep = round == 0;
        let prefix = prefix.clone();
        let consumer = std::thread::spawn(move || {
            let (mut spans, mut bytes) = (vec![], 0u64);
            for e in rx {
                match e {
                    custodia_scan::Event::Findings(fs) if keep => {
                        spans.extend(fs.into_iter().map(|f| Span {
                            path: f.path.strip_prefix(&prefix).unwrap_or(&f.path).to_string(),
                            start: f.start,
                            end: f.end,
                            ty: f.ty.id().to_string(),
                        }))
                    }
                    custodia_scan::Event::Done { bytes: b, .. } => bytes += b,
                    _ => {}
                }
            }
            (spans, bytes)
        });
        let t = Instant::now();
        custodia_scan::scan_files(std::slice::from_ref(&dir), &opts, &tx).map_err(|e| e.0)?;
        drop(tx);
        let (spans, b) = consumer.join().map_err(|_| "collector failed")?;
        best = best.min(t.elapsed().as_secs_f64());
        bytes = b;
        if keep {
            found = spans;
        }
    }
    println!(
        "scan: {:.1} MB with {threads} threads, best of 3: {:.2} s = {:.1} MB/s (ripgrep comparison: bench/scan_rg.sh {})",
        bytes as f64 / 1e6,
        best,
        bytes as f64 / 1e6 / best,
        dir.display()
    );
    let truth = custodia_corpus::read_truth(&dir.join(TRUTH_FILE)).map_err(|e| e.to_string())?;
    let score = custodia_corpus::score(&truth, &found);
    print!("{score}");
    let missed = score.missed_targets();
    if !missed.is_empty() {
        println!("targets missed: {}", missed.join(", "));
    }
    Ok(())
}
