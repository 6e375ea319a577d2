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
    }
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
