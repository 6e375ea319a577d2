//! `serve --dev`: a throwaway vault with the example collection and synthetic customers,
//! ready in seconds. The passphrase is fixed and public: dev data must never be real.

use custodia_detect::synth::Synth;
use custodia_vault::{CollectionSchema, RecordInput, Suite, Vault};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

pub const DEV_PASSPHRASE: &[u8] = b"custodia-dev-passphrase-not-secret";
pub const CUSTOMERS_TOML: &str = include_str!("../../../examples/customers.toml");

pub struct Dev {
    pub vault: Arc<Vault>,
    pub token: String,
    pub records: i64,
    pub dir_display: String,
    pub sample_mobile: String,
    _temp: Option<tempfile::TempDir>,
}

/// One synthetic customer of the example collection, seeded.
pub fn synthetic_customer(s: &mut Synth) -> RecordInput {
    let mut fields = Map::new();
    for (k, v) in s.customer() {
        fields.insert(k.to_string(), Value::from(v));
    }
    if fields.get("segment").and_then(Value::as_str) == Some("corporate") {
        fields.insert("employer_uscc".into(), Value::from(s.uscc()));
    }
    let mut attributes = custodia_vault::Attributes {
        branch: s.branch(),
        ..Default::default()
    };
    attributes.tier = s.tier().parse().unwrap_or_default();
    RecordInput { fields, attributes }
}

pub async fn setup(data_dir: Option<PathBuf>, records: usize) -> Result<Dev, String> {
    let (dir, temp) = match data_dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("custodia-dev-")
                .tempdir()
                .map_err(|e| e.to_string())?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let url = format!("sqlite://{}", dir.join("custodia.db").display());
    let store = custodia_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let vault = match Vault::init(store.clone(), Suite::Intl, DEV_PASSPHRASE, true).await {
        Ok(v) => v,
        Err(custodia_vault::VaultError::AlreadyInitialized) => Vault::open(store, DEV_PASSPHRASE)
            .await
            .map_err(|e| e.to_string())?,
        Err(e) => return Err(e.to_string()),
    };
    let token = match std::env::var("CUSTODIA_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => custodia_crypto::random_token(),
    };
    vault
        .install_token(&token, "admin", "admin")
        .await
        .map_err(|e| e.to_string())?;
    let schema = CollectionSchema::from_toml(CUSTOMERS_TOML).map_err(|e| e.to_string())?;
    if vault.collection("customers").await.is_err() {
        vault
            .put_collection(schema)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut synth = Synth::new(20_261_124);
    let existing = vault.count("customers").await.map_err(|e| e.to_string())?;
    let mut sample_mobile = String::new();
    if existing == 0 {
        load(&vault, &mut synth, records, &mut sample_mobile).await?;
    } else {
        let first = synthetic_customer(&mut synth);
        sample_mobile = first.fields["mobile"].as_str().unwrap_or("").to_string();
    }
    let count = vault.count("customers").await.map_err(|e| e.to_string())?;
    Ok(Dev {
        vault: Arc::new(vault),
        token,
        records: count,
        dir_display: dir.display().to_string(),
        sample_mobile,
        _temp: temp,
    })
}

async fn load(
    vault: &Vault,
    synth: &mut Synth,
    records: usize,
    sample_mobile: &mut String,
) -> Result<(), String> {
    let start = std::time::Instant::now();
    let mut loaded = 0usize;
    while loaded < records {
        let n = (records - loaded).min(1000);
        let batch: Vec<RecordInput> = (0..n).map(|_| synthetic_customer(synth)).collect();
        if sample_mobile.is_empty() {
            if let Some(m) = batch.first().and_then(|r| r.fields["mobile"].as_str()) {
                *sample_mobile = m.to_string();
            }
        }
        let results = vault
            .create_many("customers", &batch)
            .await
            .map_err(|e| e.to_string())?;
        // A synthetic id number can repeat; the unique index refuses it and we draw again.
        loaded += results.iter().filter(|r| r.is_ok()).count();
    }
    tracing::info!(
        records,
        seconds = start.elapsed().as_secs_f64(),
        "synthetic customers loaded"
    );
    Ok(())
}
