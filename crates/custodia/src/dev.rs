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
    /// Mobile of a customer of branch `demo` (the account manager's own branch).
    pub sample_mobile: String,
    /// Password of every demo user (`CUSTODIA_DEV_PASSWORD` or generated).
    pub password: String,
    /// Base32 TOTP secret of every demo user (`CUSTODIA_DEV_TOTP_SECRET` or generated).
    pub totp_secret: String,
    /// API key of the `demo-app` service account (`CUSTODIA_DEV_APP_KEY` or generated).
    pub app_key: String,
    _temp: Option<tempfile::TempDir>,
}

/// The demo users: one per role, named after it.
pub const DEMO_ROLES: &[&str] = &[
    "admin",
    "cs_agent",
    "account_manager",
    "compliance_officer",
    "analyst",
    "auditor",
];

/// The branch of the demo users; a quarter of the synthetic customers belong to it.
pub const DEMO_BRANCH: &str = "demo";

fn env_or(var: &str, make: impl FnOnce() -> String) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => make(),
    }
}

impl Dev {
    /// Creates the demo users and the `demo-app` service account (once per data dir).
    pub async fn add_people(
        &self,
        vault: &Vault,
        auth: &custodia_server::auth::AuthConfig,
    ) -> Result<(), String> {
        use custodia_server::admin::{install_service, install_user, CreateService, CreateUser};
        let secret = custodia_crypto::totp::base32_decode(&self.totp_secret)
            .filter(|s| s.len() >= 10)
            .ok_or("CUSTODIA_DEV_TOTP_SECRET must be base32 of at least 10 bytes")?;
        let today = custodia_detect::format_timestamp(custodia_store::now_unix());
        let hash = custodia_server::auth::hash_password(self.password.clone()).await;
        for role in DEMO_ROLES {
            let user = CreateUser {
                name: role.to_string(),
                password: self.password.clone(),
                roles: vec![role.to_string()],
                branch: DEMO_BRANCH.into(),
                clearance: if *role == "account_manager" {
                    custodia_core::Tier::Vip
                } else {
                    custodia_core::Tier::Standard
                },
                allowed_purposes: None,
                confidentiality_signed_at: Some(today.clone()),
                training_completed_at: Some(today.clone()),
                totp: true,
            };
            match install_user(vault, auth, user, Some(&secret), Some(hash.clone())).await {
                Ok(_) => {}
                Err(e) if e.code == "user_exists" => {}
                Err(e) => return Err(format!("demo user {role}: {} ({})", e.message, e.code)),
            }
        }
        let app = CreateService {
            name: "demo-app".into(),
            collections: vec!["customers".into()],
            purposes: vec![
                "account_service".into(),
                "customer_service".into(),
                "dsr".into(),
                "analytics".into(),
            ],
            grants: [
                "create",
                "update",
                "delete",
                "read",
                "read_clear",
                "verify",
                "search",
                "list",
            ]
            .iter()
            .map(|g| g.to_string())
            .collect(),
        };
        match install_service(vault, app, Some(self.app_key.clone())).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == "service_account_exists" => Ok(()),
            Err(e) => Err(format!("demo-app: {} ({})", e.message, e.code)),
        }
    }

    /// What a newcomer needs to sign in (all of it throwaway demo material).
    pub fn describe(&self) -> String {
        format!(
            "\nCustodia dev server: {} synthetic customers in collection 'customers'\n\
             data dir (throwaway, never use for real data): {}\n\
             admin token (bootstrap; schema, users, keys — no customer data): {}\n\
             demo users: {} (branch '{DEMO_BRANCH}'), password: {}\n\
             TOTP secret of every demo user (base32): {}\n\
             service account demo-app, API key: {}\n",
            self.records,
            self.dir_display,
            self.token,
            DEMO_ROLES.join(", "),
            self.password,
            self.totp_secret,
            self.app_key,
        )
    }
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
    let password = env_or("CUSTODIA_DEV_PASSWORD", || {
        custodia_crypto::random_token()[4..24].to_string()
    });
    if password.chars().count() < 12 {
        return Err("CUSTODIA_DEV_PASSWORD must have at least 12 characters".into());
    }
    let totp_secret = env_or("CUSTODIA_DEV_TOTP_SECRET", || {
        custodia_crypto::totp::base32_encode(&custodia_crypto::totp::generate_secret())
    });
    let app_key = env_or("CUSTODIA_DEV_APP_KEY", custodia_server::auth::new_api_key);
    Ok(Dev {
        vault: Arc::new(vault),
        token,
        records: count,
        dir_display: dir.display().to_string(),
        sample_mobile,
        password,
        totp_secret,
        app_key,
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
        let n = (records - loaded).min(250);
        let batch: Vec<RecordInput> = (0..n)
            .map(|i| {
                let mut r = synthetic_customer(synth);
                if i % 4 == 0 {
                    r.attributes.branch = DEMO_BRANCH.into();
                }
                r
            })
            .collect();
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
