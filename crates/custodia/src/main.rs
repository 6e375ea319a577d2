//! `custodia`: the command line. It stays thin: every command is a few calls into the
//! library crates.
// `unsafe` only in `alloc` (a global allocator cannot be written without it).
#![deny(unsafe_code)]

mod alloc;
mod audit;
mod bench;
mod config;
mod dev;
mod import;
mod scan;
mod serve;

use clap::{Args, Parser, Subcommand};
use config::Config;
use custodia_vault::{CollectionSchema, Suite, Vault};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// mimalloc for small blocks, the system allocator for large ones (see `alloc`).
#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator;

#[derive(Parser)]
#[command(
    name = "custodia",
    version,
    about = "Custodia: encrypted customer records, need-to-know access, and leak forensics"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Create a new vault: data dir, config, sealed root key, admin token.
    Init(InitArgs),
    /// Customer records.
    Records {
        #[command(subcommand)]
        cmd: RecordsCmd,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Collection schemas.
    Collections {
        #[command(subcommand)]
        cmd: CollectionsCmd,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Cedar policy packs.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Find personal data in files, directories and databases (exit 1 when found).
    Scan(scan::ScanArgs),
    /// Print the current TOTP code of a base32 secret (for scripts and demo users).
    Totp {
        /// Base32 secret, as in an otpauth:// URI; default CUSTODIA_DEV_TOTP_SECRET.
        #[arg(long, env = "CUSTODIA_DEV_TOTP_SECRET")]
        secret: String,
    },
    /// Built-in benchmarks (run with --release).
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCmd,
    },
}

#[derive(Args, Clone)]
struct ConfigArgs {
    /// Configuration file (custodia.toml).
    #[arg(long, env = "CUSTODIA_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL; overrides the config file and CUSTODIA_DATABASE_URL.
    #[arg(long)]
    database: Option<String>,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config, String> {
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Some(db) = &self.database {
            cfg.database_url = Some(db.clone());
        }
        Ok(cfg)
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Throwaway data dir with keys, the example collection and 10,000 synthetic customers.
    #[arg(long)]
    dev: bool,
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// With --dev: keep the data here instead of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address.
    #[arg(long)]
    insecure_http: bool,
    /// With --dev: how many synthetic customers to load.
    #[arg(long, default_value_t = 10_000)]
    dev_records: usize,
    /// Adds GET /bench/constant returning a constant body of this many bytes, and
    /// GET /bench/constant-audited, the same after a durable audit event (benchmarks).
    #[arg(long, hide = true)]
    bench_body_bytes: Option<usize>,
    /// With --dev only: records no audit events (the read path measured without auditing).
    #[arg(long, hide = true)]
    bench_unaudited: bool,
}

#[derive(Args)]
struct InitArgs {
    /// Directory for the config file and, with SQLite, the database.
    #[arg(long, default_value = "custodia-data")]
    data_dir: PathBuf,
    /// Database URL (default: SQLite in the data dir).
    #[arg(long)]
    database: Option<String>,
    /// Algorithm suite: intl (AES-256-GCM, HMAC-SHA-256) or gm (SM4-GCM, HMAC-SM3).
    #[arg(long, default_value = "intl")]
    suite: Suite,
    /// Collection schema files (TOML or JSON) to create.
    #[arg(long = "collection")]
    collections: Vec<PathBuf>,
    /// Listen address written to the config.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
}

#[derive(Subcommand)]
enum RecordsCmd {
    /// Import records from CSV (header = field names, plus `tier` and `branch`) or JSONL.
    Import(import::ImportArgs),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Add a new KEK version and re-wrap every record key under it; safe while servers run.
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only this collection (default: all).
        #[arg(long)]
        collection: Option<String>,
        /// Skip the second pass that catches keys written by servers that had not yet seen
        /// the new KEK (use when no server is running).
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the whole tree and check every signed tree head; exit 0 only if all holds.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
        /// The log's public key (`ed25519:<hex>` / `sm2:<hex>`); default: the one stored
        /// with the log (bring your own copy to trust nothing in the database).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Verify an export directory (from `audit export`) instead of a database.
        #[arg(long)]
        offline: Option<PathBuf>,
        /// Tree heads kept elsewhere (JSON lines as in heads.jsonl, or the body of
        /// GET /v1/audit/tree-head): the log must be consistent with each — a history
        /// rewritten and re-signed after they were taken is found.
        #[arg(long)]
        known_heads: Option<PathBuf>,
        /// Also check the investigation index (of `GET /v1/audit/events`) against the log:
        /// an entry deleted to hide an event from investigations, or one added, is found.
        #[arg(long, conflicts_with = "offline")]
        index: bool,
    },
    /// Rebuild the investigation index from the log (after `audit verify --index` found it
    /// altered). Safe while servers run: they index on from where this leaves it.
    Reindex {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Stream events as JSON lines (`{"seq":N,"event":{…}}`) and/or to syslog, for a SIEM.
    Tail {
        #[command(flatten)]
        config: ConfigArgs,
        /// Keep waiting for new events.
        #[arg(long)]
        follow: bool,
        /// Start at this sequence number (default 0; with --follow and no --from: new events only).
        #[arg(long)]
        from: Option<i64>,
        /// Output format on stdout.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Also forward each event to a syslog collector: RFC 5424 over TCP, octet counting.
        #[arg(long)]
        syslog: Option<String>,
    },
    /// Write events.jsonl, heads.jsonl and public_key.txt for a third party to verify.
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Parse and validate a policy pack against the schema; errors carry file:line:column.
    Check {
        /// Directory with .cedar files (and optionally a .cedarschema); default: the
        /// config's policy_dir, else the built-in pack.
        dir: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Ask a running server to re-read its policy pack (same as `kill -HUP`).
    Reload {
        /// Base URL of the server.
        #[arg(long, env = "CUSTODIA_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// A token allowed manage_policy (the admin token, or an admin's session).
        #[arg(long, env = "CUSTODIA_TOKEN")]
        token: String,
    },
}

#[derive(Subcommand)]
enum CollectionsCmd {
    /// Create or evolve a collection from a TOML or JSON schema file.
    Put {
        #[command(flatten)]
        config: ConfigArgs,
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    // A panic message can quote the string being processed (a slicing panic prints it):
    // print where it happened, never what it was about.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("custodia: internal error at {at} (details withheld: they may hold data)");
    }));
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.cmd {
        Cmd::Serve(args) => serve::run(args).await.map(|_| ExitCode::SUCCESS),
        Cmd::Init(args) => init(args).await.map(|_| ExitCode::SUCCESS),
        Cmd::Records {
            cmd: RecordsCmd::Import(args),
        } => import::run(args).await,
        Cmd::Keys {
            cmd:
                KeysCmd::Rotate {
                    config,
                    collection,
                    no_wait,
                },
        } => rotate(config, collection, no_wait)
            .await
            .map(|_| ExitCode::SUCCESS),
        Cmd::Collections {
            cmd: CollectionsCmd::Put { config, file },
        } => {
            let vault = open_vault(&config.load()?).await?;
            let schema = read_schema(&file)?;
            let (v, created) = vault
                .put_collection(schema)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{} collection, schema version {v}",
                if created { "created" } else { "updated" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { cmd } => bench::run(cmd).await.map(|_| ExitCode::SUCCESS),
        Cmd::Scan(args) => scan::run(args).await,
        Cmd::Audit {
            cmd:
                AuditCmd::Verify {
                    config,
                    public_key,
                    offline,
                    known_heads,
                    index,
                },
        } => match offline {
            Some(dir) => audit::verify_offline(&dir, public_key.as_deref(), known_heads.as_deref()),
            None => {
                audit::verify_db(
                    &config.load()?,
                    public_key.as_deref(),
                    known_heads.as_deref(),
                    index,
                )
                .await
            }
        },
        Cmd::Audit {
            cmd: AuditCmd::Export { config, out },
        } => audit::export(&config.load()?, &out).await,
        Cmd::Audit {
            cmd: AuditCmd::Reindex { config },
        } => audit::reindex(&config.load()?).await,
        Cmd::Audit {
            cmd:
                AuditCmd::Tail {
                    config,
                    follow,
                    from,
                    format,
                    syslog,
                },
        } => {
            if format != "jsonl" {
                return Err("--format: only jsonl is supported".into());
            }
            audit::tail(&config.load()?, follow, from, syslog.as_deref()).await
        }
        Cmd::Policy {
            cmd: PolicyCmd::Check { dir, config },
        } => {
            let dir = match dir {
                Some(d) => Some(d),
                None => config.load()?.policy_dir,
            };
            let (n, problems) =
                custodia_policy::check(dir.as_deref()).map_err(|e| e.to_string())?;
            if problems.is_empty() {
                println!(
                    "OK: {n} policies valid against the schema ({})",
                    dir.map(|d| d.display().to_string())
                        .unwrap_or_else(|| "built-in pack".into())
                );
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!("{} problem(s)", problems.len());
                Ok(ExitCode::from(1))
            }
        }
        Cmd::Policy {
            cmd: PolicyCmd::Reload { url, token },
        } => policy_reload(&url, &token).await.map(|_| ExitCode::SUCCESS),
        Cmd::Totp { secret } => {
            let key = custodia_crypto::totp::base32_decode(&secret)
                .filter(|k| !k.is_empty())
                .ok_or("the secret is not base32")?;
            let step = custodia_crypto::totp::step_at(custodia_store::now_unix());
            println!("{}", custodia_crypto::totp::code_string(&key, step));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `POST /v1/policies/reload` over plain HTTP/1.1 (loopback admin use; no TLS client here).
async fn policy_reload(url: &str, token: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or(
        "policy reload speaks plain HTTP to a local server; for HTTPS use kill -HUP or the API",
    )?;
    let host = rest.trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let req = format!(
        "POST /v1/policies/reload HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    conn.read_to_string(&mut resp)
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.split(' ').nth(1).unwrap_or("");
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    if status == "200" {
        println!("{body}");
        Ok(())
    } else {
        Err(format!("reload refused ({status}): {body}"))
    }
}

/// The passphrase that seals the root key: `CUSTODIA_PASSPHRASE`, or a prompt on a terminal.
fn passphrase(confirm: bool) -> Result<Zeroizing<String>, String> {
    if let Ok(p) = std::env::var("CUSTODIA_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err("set CUSTODIA_PASSPHRASE (no terminal to prompt on)".into());
    }
    let p = Zeroizing::new(
        rpassword::prompt_password("Custodia passphrase: ").map_err(|e| e.to_string())?,
    );
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat passphrase: ").map_err(|e| e.to_string())?,
        );
        if !custodia_crypto::ct_eq(p.as_bytes(), again.as_bytes()) {
            return Err("passphrases differ".into());
        }
    }
    Ok(p)
}

fn database_url(cfg: &Config) -> Result<&str, String> {
    cfg.database_url.as_deref().ok_or_else(|| {
        "no database: set database_url in the config, CUSTODIA_DATABASE_URL or --database".into()
    })
}

async fn open_vault(cfg: &Config) -> Result<Vault, String> {
    let store = custodia_store::open(database_url(cfg)?)
        .await
        .map_err(|e| e.to_string())?;
    let pass = passphrase(false)?;
    Vault::open(store, pass.as_bytes())
        .await
        .map_err(|e| e.to_string())
}

fn read_schema(path: &Path) -> Result<CollectionSchema, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let schema = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        CollectionSchema::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(schema)
}

async fn init(args: InitArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let dir = std::fs::canonicalize(&args.data_dir).map_err(|e| e.to_string())?;
    let config_path = dir.join("custodia.toml");
    let url = match args.database {
        Some(u) => u,
        None => format!("sqlite://{}", dir.join("custodia.db").display()),
    };
    let schemas = args
        .collections
        .iter()
        .map(|p| read_schema(p))
        .collect::<Result<Vec<_>, _>>()?;
    let pass = passphrase(true)?;
    if pass.chars().count() < 12 {
        return Err("the passphrase must be at least 12 characters".into());
    }
    let store = custodia_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let vault = Vault::init(store, args.suite, pass.as_bytes(), false)
        .await
        .map_err(|e| e.to_string())?;
    let token = match std::env::var("CUSTODIA_ADMIN_TOKEN") {
        Ok(t) => {
            vault
                .install_token(&t, "admin", "admin")
                .await
                .map_err(|e| e.to_string())?;
            None
        }
        Err(_) => Some(
            vault
                .create_token("admin", "admin")
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    for s in schemas {
        let name = s.name.clone();
        vault.put_collection(s).await.map_err(|e| e.to_string())?;
        println!("collection {name} created");
    }
    if !config_path.exists() {
        let cfg = Config {
            database_url: Some(url),
            listen: Some(args.listen),
            ..Config::default()
        };
        std::fs::write(
            &config_path,
            toml::to_string(&cfg).expect("config serializes"),
        )
        .map_err(|e| e.to_string())?;
        println!("config written to {}", config_path.display());
    }
    println!("vault initialized with suite {}", args.suite);
    if let Some(t) = token {
        println!("admin token (shown once, store it safely): {t}");
    }
    println!("run: custodia serve --config {}", config_path.display());
    Ok(())
}

async fn rotate(
    config: ConfigArgs,
    collection: Option<String>,
    no_wait: bool,
) -> Result<(), String> {
    let vault = open_vault(&config.load()?).await?;
    let names = match collection {
        Some(c) => vec![c],
        None => vault.list_collections().await.map_err(|e| e.to_string())?,
    };
    let mut rotated = Vec::new();
    for name in &names {
        let (version, n) = vault.rotate(name).await.map_err(|e| e.to_string())?;
        println!("{name}: KEK version {version}, {n} record keys re-wrapped");
        rotated.push((name, version));
    }
    if !no_wait && !rotated.is_empty() {
        // Running servers notice a new KEK within KEK_REFRESH; re-wrap what they wrote meanwhile.
        tokio::time::sleep(
            custodia_vault::keyring::KEK_REFRESH + std::time::Duration::from_secs(1),
        )
        .await;
        for (name, version) in rotated {
            let n = vault
                .finish_rotation(name, version)
                .await
                .map_err(|e| e.to_string())?;
            if n > 0 {
                println!("{name}: {n} more record keys re-wrapped");
            }
        }
    }
    Ok(())
}

pub(crate) fn is_terminal_stderr() -> bool {
    std::io::stderr().is_terminal()
}
