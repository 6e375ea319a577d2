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
        /// Passes over them.
        #[arg(long, default_value_t = 20)]
        passes: usize,
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
        } => crypto(suite, records, passes).await,
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

async fn crypto(suite: Suite, records: usize, passes: usize) -> Result<(), String> {
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
    // The exact bytes the vault encrypts: canonical values.
    let plain: Vec<Vec<Vec<u8>>> = inputs
        .iter()
        .map(|r| {
            r.fields
                .values()
                .map(|v| match v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => other.to_string().into_bytes(),
                })
                .collect()
        })
        .collect();

    // Warm up both paths.
    for r in inputs.iter().take(100) {
        let sealed = vault
            .seal_only("customers", r)
            .await
            .map_err(|e| e.to_string())?;
        vault
            .open_only("customers", &sealed)
            .await
            .map_err(|e| e.to_string())?;
    }

    let total = records * passes;
    let t = Instant::now();
    let mut sink = 0usize;
    for _ in 0..passes {
        for r in &inputs {
            let sealed = vault
                .seal_only("customers", r)
                .await
                .map_err(|e| e.to_string())?;
            let opened = vault
                .open_only("customers", &sealed)
                .await
                .map_err(|e| e.to_string())?;
            sink += opened.len();
        }
    }
    let vault_secs = t.elapsed().as_secs_f64();
    assert_eq!(sink, total * n_fields, "every field decrypted");

    let t = Instant::now();
    let mut sink = 0usize;
    let aad = b"customers/record/field/key";
    for _ in 0..passes {
        for fields in &plain {
            let key = suite.generate_data_key();
            let aead = suite.aead(&key).map_err(|e| e.to_string())?;
            for f in fields {
                let ct = aead.seal(aad, f);
                sink += aead.open(aad, &ct).map_err(|e| e.to_string())?.len();
            }
        }
    }
    let raw_secs = t.elapsed().as_secs_f64();
    assert!(sink > 0);

    let vault_rate = total as f64 / vault_secs;
    let raw_rate = total as f64 / raw_secs;
    println!("suite {suite}, {n_fields}-field records, {total} encrypt+decrypt round trips");
    println!(
        "vault path  : {vault_rate:>10.0} records/s ({:.2} µs/record)",
        1e6 / vault_rate
    );
    println!(
        "bare AEAD   : {raw_rate:>10.0} records/s ({:.2} µs/record)",
        1e6 / raw_rate
    );
    println!("ratio       : {:.2} (target ≥ 0.5)", vault_rate / raw_rate);
    Ok(())
}

fn gen_csv(rows: usize, out: &PathBuf, seed: u64) -> Result<(), String> {
    let mut w = csv::Writer::from_path(out).map_err(|e| e.to_string())?;
    let mut s = Synth::new(seed);
    let cols = [
        "full_name",
        "id_no",
        "mobile",
        "email",
        "bank_card",
        "address",
        "date_of_birth",
        "segment",
        "annual_income",
        "risk_score",
        "tier",
        "branch",
    ];
    w.write_record(cols).map_err(|e| e.to_string())?;
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
