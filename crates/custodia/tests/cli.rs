//! The `custodia` binary as a user runs it: real processes, real ports, real files.
//! Output checks look for ids, counts and messages; record values are never printed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_custodia");
const TOKEN: &str = "cli-test-admin-token-0123456789";
const PASS: &str = "cli test passphrase 2026";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn custodia(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("CUSTODIA_PASSPHRASE", PASS)
        .env("CUSTODIA_ADMIN_TOKEN", TOKEN)
        .env("CUSTODIA_LOG", "warn")
        .env_remove("CUSTODIA_CONFIG")
        .env_remove("CUSTODIA_DATABASE_URL")
        .env_remove("CUSTODIA_LISTEN");
    c
}

/// A running server; killed on drop.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `custodia serve …` and waits for its "listening on" line.
fn start(mut cmd: Command, wait: Duration) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn custodia");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx.recv_timeout(wait).expect("server announced its address");
    Running { child, url }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A fresh service account allowed to search and read `customers` in clear, created with
/// the admin token (which itself sees no customer data).
fn app_key(url: &str) -> String {
    let name = format!(
        "cli-app-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let resp: serde_json::Value = client()
        .post(format!("{url}/v1/service-accounts"))
        .bearer_auth(TOKEN)
        .json(
            &serde_json::json!({"name": name, "collections": ["customers"],
            "purposes": ["account_service"], "grants": ["search", "read", "read_clear"]}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    resp["api_key"]
        .as_str()
        .expect("service account created")
        .to_string()
}

fn search(url: &str, field: &str, value: &str) -> serde_json::Value {
    client()
        .post(format!("{url}/v1/collections/customers/search"))
        .bearer_auth(app_key(url))
        .header("X-Custodia-Purpose", "account_service")
        .json(&serde_json::json!({"where": {field: value}}))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn metric(url: &str, prefix: &str) -> Option<f64> {
    let text = client()
        .get(format!("{url}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn serve_dev_loads_ten_thousand_customers() {
    let started = Instant::now();
    let mut cmd = custodia(&["serve", "--dev", "--listen", "127.0.0.1:0"]);
    cmd.env("CUSTODIA_DEV_PASSWORD", DEV_PASSWORD)
        .env("CUSTODIA_DEV_TOTP_SECRET", DEV_TOTP)
        .env("CUSTODIA_DEV_APP_KEY", DEV_APP_KEY);
    let s = start(cmd, Duration::from_secs(120));
    eprintln!("serve --dev (debug build) ready in {:?}", started.elapsed());
    let health: serde_json::Value = client()
        .get(format!("{}/healthz", s.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        metric(&s.url, "custodia_records{collection=\"customers\"} "),
        Some(10_000.0)
    );
    // A token other than the one from CUSTODIA_ADMIN_TOKEN is refused.
    let st = client()
        .get(format!("{}/v1/collections", s.url))
        .bearer_auth("nope")
        .send()
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 401);
    demo_people_see_what_their_roles_allow(&s.url);
    // SIGHUP re-reads the policy pack too.
    let st = Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&s.url, "custodia_policy_reloads_total ") != Some(2.0) {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the policies"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const DEV_PASSWORD: &str = "dev password for tests";
const DEV_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const DEV_APP_KEY: &str = "csk_dev-app-key-for-tests-0123";

/// The demo users and `demo-app` of `serve --dev`, with the credentials from the
/// environment: the customer-service agent sees masks, the account manager (branch
/// `demo`, clearance vip) sees its own branch's customers in clear, the admin none.
fn demo_people_see_what_their_roles_allow(url: &str) {
    let c = client();
    let get = |token: &str, path: &str, purpose: &str| -> (u16, serde_json::Value) {
        let r = c
            .get(format!("{url}{path}"))
            .bearer_auth(token)
            .header("X-Custodia-Purpose", purpose)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap_or_default())
    };
    // demo-app lists ids and reads clear: find a customer of branch `demo`.
    let (st, ids) = get(
        DEV_APP_KEY,
        "/v1/collections/customers/records?limit=20",
        "account_service",
    );
    assert_eq!(st, 200, "{ids}");
    let mut mobile = None;
    for id in ids["ids"].as_array().unwrap() {
        let (_, rec) = get(
            DEV_APP_KEY,
            &format!("/v1/collections/customers/records/{}", id.as_str().unwrap()),
            "account_service",
        );
        if rec["attributes"]["branch"] == "demo" {
            mobile = rec["fields"]["mobile"].as_str().map(str::to_string);
            break;
        }
    }
    let mobile = mobile.expect("a quarter of the demo customers are in branch demo");
    let secret = custodia_crypto::totp::base32_decode(DEV_TOTP).unwrap();
    let login = |user: &str| -> String {
        let step = custodia_crypto::totp::step_at(custodia_store::now_unix());
        let r: serde_json::Value = c
            .post(format!("{url}/v1/auth/login"))
            .json(
                &serde_json::json!({"username": user, "password": DEV_PASSWORD,
                "totp": custodia_crypto::totp::code_string(&secret, step)}),
            )
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{user} signs in: {r}"))
            .to_string()
    };
    let search_as = |token: &str, purpose: &str| -> serde_json::Value {
        c.post(format!("{url}/v1/collections/customers/search"))
            .bearer_auth(token)
            .header("X-Custodia-Purpose", purpose)
            .json(&serde_json::json!({"where": {"mobile": mobile}}))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let cs = search_as(&login("cs_agent"), "customer_service");
    assert_eq!(cs["records"][0]["access"]["mobile"], "masked");
    assert!(cs["records"][0]["fields"]["mobile"]
        .as_str()
        .unwrap()
        .contains('*'));
    let am = search_as(&login("account_manager"), "account_service");
    assert_eq!(am["records"][0]["access"]["mobile"], "clear");
    assert_eq!(am["records"][0]["fields"]["mobile"], mobile.as_str());
    // The demo admin user administers but sees no customer.
    let admin = login("admin");
    let (st, _) = get(&admin, "/v1/users", "administration");
    assert_eq!(st, 200);
    let r = search_as(&admin, "administration");
    assert_eq!(r["error"]["code"], "forbidden");
    // The bootstrap admin token keeps working.
    let (st, _) = get(TOKEN, "/v1/collections", "administration");
    assert_eq!(st, 200);
    // `custodia policy reload` asks the running server to re-read its pack.
    let out = custodia(&["policy", "reload", "--url", url, "--token", TOKEN])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"policies\""));
    let out = custodia(&["policy", "reload", "--url", url, "--token", "wrong"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(metric(url, "custodia_policy_reloads_total "), Some(1.0));
}

/// Changes one byte inside a value of the first audit event, keeping it valid JSON.
fn tamper_first_audit_event(db: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let (event,): (Vec<u8>,) = sqlx::query_as("SELECT event FROM audit_events WHERE seq = 0")
            .fetch_one(&pool)
            .await
            .unwrap();
        let text = String::from_utf8(event).unwrap();
        let changed = text.replacen("\"outcome\":\"ok\"", "\"outcome\":\"oK\"", 1);
        assert_ne!(text, changed);
        sqlx::query("UPDATE audit_events SET event = $1 WHERE seq = 0")
            .bind(changed.into_bytes())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

/// `custodia policy check` accepts the shipped pack and locates errors by file and line.
#[test]
fn policy_check_reports_file_and_line() {
    let out = custodia(&["policy", "check"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: "));
    let out = custodia(&["policy", "check", repo_file("policies").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the policies/ directory is the built-in pack"
    );
    // A pack of one file: `policy check`'s exit code and its error output.
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        std::fs::write(dir.path().join("ops.cedar"), text).unwrap();
        let out = custodia(&["policy", "check", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(
        "// ok\npermit(principal, action == Action::\"read_schema\", resource);\n\n\
         permit(principal is User, action == Action::\"read_clear\", resource)\n\
         when { principal.nickname == \"x\" };\n",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("ops.cedar:5:"), "{err}");
    assert!(err.contains("nickname"), "{err}");
    // `read_schema` is on collections (since 2026-12-05): a pack written for `System` is
    // refused at its line, not loaded with a rule that can never apply.
    let (code, err) = check(
        "// old\npermit(principal, action == Action::\"read_schema\", resource == System::\"custodia\");\n",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("ops.cedar:2:"), "{err}");
}

/// `custodia init` into a new temporary dir (SQLite there, or the given database).
fn init_dir(suite: &str, database: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let schema = repo_file("examples/customers.toml");
    let mut args = vec![
        "init",
        "--data-dir",
        data.to_str().unwrap(),
        "--suite",
        suite,
        "--collection",
        schema.to_str().unwrap(),
    ];
    if let Some(db) = database {
        args.extend(["--database", db]);
    }
    let out = custodia(&args).output().unwrap();
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("collection customers created"));
    assert!(stdout.contains(&format!("suite {suite}")));
    let config = data.join("custodia.toml");
    assert!(config.exists());
    (dir, config)
}

#[test]
fn init_import_rotate_serve() {
    let (dir, config) = init_dir("gm", None);
    let config = config.to_str().unwrap().to_string();
    // Initializing twice is refused.
    let again = custodia(&[
        "init",
        "--data-dir",
        config.trim_end_matches("/custodia.toml"),
    ])
    .output()
    .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialized"));

    let csv = dir.path().join("customers.csv");
    let out = custodia(&[
        "bench",
        "gen-csv",
        "--rows",
        "300",
        "--out",
        csv.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&csv).unwrap();
    let first_data = text.lines().nth(1).unwrap().to_string();
    let first_mobile = first_data.split(',').nth(2).unwrap().to_string();
    // Two bad rows at known lines: 302 (unallocated mobile prefix) and 303 (bad tier).
    let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
    let mut bad_mobile: Vec<String> = first_data.split(',').map(str::to_string).collect();
    bad_mobile[1] = "11010519491231002X".into();
    bad_mobile[2] = "15499990000".into();
    writeln!(f, "{}", bad_mobile.join(",")).unwrap();
    let mut bad_tier: Vec<String> = text
        .lines()
        .nth(2)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    bad_tier[1] = "110105194912310038".into();
    bad_tier[10] = "gold".into();
    writeln!(f, "{}", bad_tier.join(",")).unwrap();
    drop(f);

    let out = custodia(&[
        "records",
        "import",
        "--config",
        &config,
        "--collection",
        "customers",
        csv.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "some rows rejected → exit 1");
    assert!(stdout.contains("imported 300 records"), "{stdout}");
    assert!(stdout.contains("2 rows rejected"), "{stdout}");
    assert!(stderr.contains("line 302: field mobile"), "{stderr}");
    assert!(stderr.contains("line 303: field tier"), "{stderr}");
    assert!(
        !stderr.contains("15499990000") && !stderr.contains("gold"),
        "values never echoed"
    );

    // JSONL, both shapes, with a machine-readable report.
    let jsonl = dir.path().join("more.jsonl");
    std::fs::write(
        &jsonl,
        "{\"full_name\":\"测试甲\",\"id_no\":\"11010519491231002X\",\"mobile\":\"13912345678\",\"tier\":\"vip\",\"branch\":\"BJ-001\"}\n\
         {\"fields\":{\"full_name\":\"测试乙\",\"id_no\":\"110105194912310038\",\"mobile\":\"+86 139-1234-5679\"},\"attributes\":{\"tier\":\"high\"}}\n\
         {\"fields\":{\"full_name\":\"测试丙\",\"id_no\":\"11010519491231002X\",\"mobile\":\"13912345670\"}}\n\
         not json\n",
    )
    .unwrap();
    let out = custodia(&[
        "records",
        "import",
        "--config",
        &config,
        "--collection",
        "customers",
        "--format",
        "json",
        jsonl.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 2);
    assert_eq!(report["rejected"], 2);
    assert_eq!(report["rows"][0]["line"], 3);
    assert_eq!(report["rows"][0]["code"], "duplicate_value");
    assert_eq!(report["rows"][0]["field"], "id_no");
    assert_eq!(report["rows"][1]["line"], 4);

    let out = custodia(&["keys", "rotate", "--config", &config, "--no-wait"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("customers: KEK version 2, 302 record keys re-wrapped"),
        "{stdout}"
    );

    let s = start(
        custodia(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]),
        Duration::from_secs(60),
    );
    let found = search(&s.url, "mobile", &first_mobile);
    assert_eq!(found["count"], 1);
    let found = search(&s.url, "mobile", "139 1234 5679");
    assert_eq!(found["count"], 1);
    assert_eq!(found["records"][0]["attributes"]["tier"], "high");
    // Tree heads are signed every second while events arrive.
    std::thread::sleep(Duration::from_millis(1500));
    drop(s);

    // The audit log holds both searches and the two service accounts' creation, and
    // verifies; one altered byte is found.
    let verify = || {
        custodia(&["audit", "verify", "--config", &config])
            .output()
            .unwrap()
    };
    let out = verify();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("OK: 4 events, tree head "), "{stdout}");
    // Exported, the log verifies offline with only the directory; an edited export fails.
    let export = dir.path().join("export");
    let out = custodia(&[
        "audit",
        "export",
        "--config",
        &config,
        "--out",
        export.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline = || {
        custodia(&["audit", "verify", "--offline", export.to_str().unwrap()])
            .env_remove("CUSTODIA_PASSPHRASE")
            .output()
            .unwrap()
    };
    let out = offline();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: 4 events"));
    let events = std::fs::read_to_string(export.join("events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    std::fs::write(
        export.join("events.jsonl"),
        format!("{}\n{}", lines[1], lines[0]),
    )
    .unwrap();
    let out = offline();
    assert_eq!(out.status.code(), Some(1), "swapped events are found");
    tamper_first_audit_event(&dir.path().join("data/custodia-audit.db"));
    let out = verify();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("FAILED: index 0: "), "{stdout}");

    // The wrong passphrase opens nothing.
    let out = custodia(&["serve", "--config", &config, "--listen", "127.0.0.1:0"])
        .env("CUSTODIA_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
}

#[test]
fn plain_http_only_on_loopback_and_tls_works() {
    let (dir, config) = init_dir("intl", None);
    let config = config.to_str().unwrap().to_string();
    let out = custodia(&["serve", "--config", &config, "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to serve plain HTTP"));
    // Environment overrides the config file too.
    let out = custodia(&["serve", "--config", &config])
        .env("CUSTODIA_LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let s = start(
        custodia(&[
            "serve",
            "--config",
            &config,
            "--listen",
            "0.0.0.0:0",
            "--insecure-http",
        ]),
        Duration::from_secs(60),
    );
    assert!(s.url.starts_with("http://0.0.0.0:"));
    drop(s);

    // TLS with a self-signed certificate made by openssl.
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed for the TLS test");
    assert!(st.success());
    let mut cmd = custodia(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]);
    cmd.env("CUSTODIA_TLS_CERT", &cert)
        .env("CUSTODIA_TLS_KEY", &key);
    let s = start(cmd, Duration::from_secs(60));
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let out = Command::new("curl")
        .args([
            "-s",
            "--cacert",
            cert.to_str().unwrap(),
            &format!("{}/healthz", s.url),
        ])
        .output()
        .expect("curl is needed for the TLS test");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"status\":\"ok\"}");
}

/// The same CLI flow with the database on PostgreSQL (`CUSTODIA_TEST_DATABASE_URL`).
#[test]
fn init_import_serve_on_postgres() {
    let Ok(admin) = std::env::var("CUSTODIA_TEST_DATABASE_URL") else {
        eprintln!("init_import_serve_on_postgres skipped: CUSTODIA_TEST_DATABASE_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg = rt.block_on(custodia_store::testing::TempPg::create(&admin));
    let (dir, config) = init_dir("intl", Some(&pg.url));
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("postgres://"));
    let config = config.to_str().unwrap().to_string();
    let csv = dir.path().join("c.csv");
    assert!(custodia(&[
        "bench",
        "gen-csv",
        "--rows",
        "50",
        "--out",
        csv.to_str().unwrap()
    ])
    .status()
    .unwrap()
    .success());
    let out = custodia(&[
        "records",
        "import",
        "--config",
        &config,
        "--collection",
        "customers",
        csv.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 50 records"));
    let out = custodia(&["keys", "rotate", "--config", &config, "--no-wait"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("KEK version 2, 50 record keys re-wrapped")
    );
    let mobile = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .to_string();
    let s = start(
        custodia(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]),
        Duration::from_secs(60),
    );
    assert_eq!(search(&s.url, "mobile", &mobile)["count"], 1);
    drop(s);
    rt.block_on(pg.drop_db());
    custodia_store::testing::mark_suite_passed("custodia cli_on_postgres");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Leaves of the stored events, for an attacker who rewrites history.
async fn rewrite_heads(pool: &sqlx::SqlitePool, signer: &custodia_audit::sth::TreeSigner) {
    use custodia_audit::merkle::{root, HashAlg};
    let events: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT event FROM audit_events ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap();
    let leaves: Vec<_> = events.iter().map(|(e,)| HashAlg::Sha256.leaf(e)).collect();
    let sizes: Vec<(i64, i64)> =
        sqlx::query_as("SELECT tree_size, timestamp_ms FROM audit_heads ORDER BY tree_size")
            .fetch_all(pool)
            .await
            .unwrap();
    for (size, ts) in sizes {
        let h = signer.sign(
            size as u64,
            root(HashAlg::Sha256, &leaves[..size as usize]),
            ts,
        );
        sqlx::query("UPDATE audit_heads SET root_hash = $1, signature = $2 WHERE tree_size = $3")
            .bind(custodia_crypto::hex_lower(&h.root_hash))
            .bind(custodia_crypto::hex_lower(&h.signature))
            .bind(size)
            .execute(pool)
            .await
            .unwrap();
    }
}

/// The tamper tests of the audit issue, each on its own copy of a real server's database:
/// `custodia audit verify` finds every one.
#[test]
fn audit_verify_finds_every_kind_of_tampering() {
    let (dir, config) = init_dir("intl", None);
    let config = config.to_str().unwrap().to_string();
    let s = start(
        custodia(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]),
        Duration::from_secs(60),
    );
    for round in 0..2 {
        for _ in 0..3 {
            search(&s.url, "mobile", "13912345678");
        }
        // A tree head is signed every second while events arrive.
        std::thread::sleep(Duration::from_millis(1500 + round * 100));
    }
    drop(s);
    let data = dir.path().join("data");
    let export = dir.path().join("export");
    let out = custodia(&[
        "audit",
        "export",
        "--config",
        &config,
        "--out",
        export.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    let heads = std::fs::read_to_string(export.join("heads.jsonl")).unwrap();
    assert!(heads.lines().count() >= 2, "two signed heads: {heads}");
    let known = export.join("heads.jsonl");
    let key_file = export.join("public_key.txt");

    let verify = |copy: &Path, extra: &[&str]| -> (Option<i32>, String) {
        let db = format!("sqlite://{}", copy.join("custodia.db").display());
        let mut args = vec!["audit", "verify", "--database", &db];
        args.extend_from_slice(extra);
        let out = custodia(&args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let case = |name: &str, sql: &[&str]| -> PathBuf {
        let copy = dir.path().join(name);
        copy_dir(&data, &copy);
        let db = copy.join("custodia-audit.db");
        block_on(async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            for q in sql {
                sqlx::query(q).execute(&pool).await.unwrap();
            }
            pool.close().await;
        });
        copy
    };
    let (code, stdout) = verify(&case("intact", &[]), &[]);
    assert_eq!(code, Some(0), "{stdout}");
    let (code, stdout) = verify(&dir.path().join("intact"), &["--index"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("\nindex OK: "), "{stdout}");
    // The investigation index is outside the tree: an entry deleted from it (an access
    // hidden from investigations) is found by `--index` only.
    let hidden = case("index-entry-deleted", &[]);
    block_on(async {
        let file = hidden.join("custodia-audit-index.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let n = sqlx::query("DELETE FROM audit_index_keys WHERE (key, word) = (SELECT key, word FROM audit_index_keys ORDER BY word DESC LIMIT 1)")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(n.rows_affected(), 1, "the server indexed its events");
        pool.close().await;
    });
    let (code, stdout) = verify(&hidden, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    let (code, stdout) = verify(&hidden, &["--index"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("\nFAILED: index: event "), "{stdout}");
    // `audit reindex` builds it again from the log.
    let db = format!("sqlite://{}", hidden.join("custodia.db").display());
    let out = custodia(&["audit", "reindex", "--database", &db])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.starts_with("reindexed: "),
        "{text}"
    );
    let (code, stdout) = verify(&hidden, &["--index"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("\nindex OK: "), "{stdout}");

    // `audit tail` prints every event as a JSON line and forwards it to syslog (RFC 5424
    // over TCP, octet counting).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let collector = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut conn, &mut all).unwrap();
        all
    });
    let db = format!(
        "sqlite://{}",
        dir.path().join("intact/custodia.db").display()
    );
    let addr = format!("127.0.0.1:{port}");
    let out = custodia(&["audit", "tail", "--database", &db, "--syslog", &addr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 12);
    assert_eq!(lines[0]["seq"], 0);
    assert_eq!(lines[1]["event"]["action"], "search");
    let received = String::from_utf8(collector.join().unwrap()).unwrap();
    // Each frame: "<length> <110>1 <time> <host> custodia <pid> audit [custodia@32473 seq=…] {json}"
    let mut rest = received.as_str();
    let mut frames = 0;
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        let (msg, after) = tail.split_at(len);
        assert!(msg.starts_with("<110>1 "), "{msg}");
        assert!(msg.contains(" custodia ") && msg.contains(&format!("seq=\"{frames}\"")));
        assert!(msg.ends_with('}'));
        rest = after;
        frames += 1;
    }
    assert_eq!(frames, lines.len());
    let change = r#"UPDATE audit_events SET event = CAST(REPLACE(CAST(event AS TEXT), '"outcome":"ok"', '"outcome":"oK"') AS BLOB) WHERE seq = 3"#;
    let shift_down = [
        "UPDATE audit_events SET seq = seq + 999 WHERE seq > 4",
        "UPDATE audit_events SET seq = seq - 1000 WHERE seq >= 1000",
    ];
    let tampered: Vec<(&str, Vec<&str>)> = vec![
        ("one_byte", vec![change]),
        ("deleted", vec!["DELETE FROM audit_events WHERE seq = 4"]),
        (
            "deleted_renumbered",
            [&["DELETE FROM audit_events WHERE seq = 4"][..], &shift_down[..]].concat(),
        ),
        (
            "swapped",
            vec![
                "UPDATE audit_events SET seq = -1 WHERE seq = 1",
                "UPDATE audit_events SET seq = 1 WHERE seq = 2",
                "UPDATE audit_events SET seq = 2 WHERE seq = -1",
            ],
        ),
        (
            "inserted",
            vec![
                "UPDATE audit_events SET seq = seq + 1001 WHERE seq >= 3",
                "UPDATE audit_events SET seq = seq - 1000 WHERE seq >= 1000",
                "INSERT INTO audit_events (seq, event) SELECT 3, event FROM audit_events WHERE seq = 0",
            ],
        ),
        (
            "truncated",
            vec!["DELETE FROM audit_events WHERE seq >= (SELECT MAX(tree_size) - 2 FROM audit_heads)"],
        ),
    ];
    for (name, sql) in &tampered {
        let (code, stdout) = verify(&case(name, sql), &[]);
        assert_eq!(code, Some(1), "{name}: {stdout}");
        assert!(stdout.starts_with("FAILED: index "), "{name}: {stdout}");
    }

    // The whole log recomputed and signed by another key (public key in the database
    // replaced too): only a verifier with its own copy of the key sees it.
    let copy = case("other_key", &[change]);
    block_on(async {
        let sqlite = |f: &str| format!("sqlite://{}", copy.join(f).display());
        let log = sqlx::SqlitePool::connect(&sqlite("custodia-audit.db"))
            .await
            .unwrap();
        let forger =
            custodia_audit::sth::TreeSigner::generate(custodia_audit::sth::SigAlg::Ed25519);
        rewrite_heads(&log, &forger).await;
        log.close().await;
        let pool = sqlx::SqlitePool::connect(&sqlite("custodia.db"))
            .await
            .unwrap();
        sqlx::query("UPDATE meta SET value = $1 WHERE key = 'audit_public_key'")
            .bind(forger.public_key().to_text())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let (code, stdout) = verify(&copy, &[]);
    assert_eq!(code, Some(0), "self-consistent forgery: {stdout}");
    let (code, stdout) = verify(&copy, &["--public-key", key_file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("not signed by the given public key"),
        "{stdout}"
    );

    // History forked and re-signed with the right key (someone holding the passphrase):
    // a tree head kept outside the database proves it.
    let copy = case("forked", &[change]);
    block_on(async {
        let url = format!("sqlite://{}", copy.join("custodia.db").display());
        let store = custodia_store::open(&url).await.unwrap();
        let vault = custodia_vault::Vault::open(store.clone(), PASS.as_bytes())
            .await
            .unwrap();
        let sealed = store.get_meta("audit_signing_key").await.unwrap().unwrap();
        let secret = vault.open_secret("audit/signing-key", &sealed).unwrap();
        let signer = custodia_audit::sth::TreeSigner::from_secret(
            custodia_audit::sth::SigAlg::Ed25519,
            &secret,
        )
        .unwrap();
        let log = format!("sqlite://{}", copy.join("custodia-audit.db").display());
        let pool = sqlx::SqlitePool::connect(&log).await.unwrap();
        rewrite_heads(&pool, &signer).await;
        pool.close().await;
    });
    let (code, stdout) = verify(&copy, &["--public-key", key_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "re-signed with the right key: {stdout}");
    let (code, stdout) = verify(&copy, &["--known-heads", known.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("do not hash to the signed tree head"),
        "{stdout}"
    );
}

/// kill -9 in a loop while clients read: every access acknowledged before the kill is in
/// the audit log after it, and the log verifies after every restart.
fn kill_loop(database: Option<&str>, rounds: usize) {
    let (dir, config) = init_dir("intl", database);
    let config = config.to_str().unwrap().to_string();
    let mut key = None;
    let mut acknowledged: Vec<String> = vec![];
    let mut indexed = 0u64;
    for round in 0..rounds {
        let s = start(
            custodia(&["serve", "--config", &config, "--listen", "127.0.0.1:0"]),
            Duration::from_secs(60),
        );
        let key = key.get_or_insert_with(|| app_key(&s.url)).clone();
        // Two clients read until the server dies under them.
        let clients: Vec<_> = (0..2)
            .map(|c| {
                let (url, key) = (s.url.clone(), key.clone());
                std::thread::spawn(move || {
                    let http = client();
                    let mut acked = vec![];
                    for n in 0.. {
                        let rid = format!("kill-{round}-{c}-{n}");
                        let r = http
                            .post(format!("{url}/v1/collections/customers/search"))
                            .bearer_auth(&key)
                            .header("X-Custodia-Purpose", "account_service")
                            .header("x-request-id", &rid)
                            .json(&serde_json::json!({"where": {"mobile": "13912345678"}}))
                            .send();
                        match r {
                            Ok(resp) if resp.status().is_success() => acked.push(rid),
                            Ok(resp) => panic!("unexpected status {}", resp.status()),
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + (round as u64 * 37) % 200));
        drop(s); // SIGKILL
        for c in clients {
            acknowledged.extend(c.join().unwrap());
        }
        // The investigation index, written behind the log, is whole after every kill too.
        let out = custodia(&["audit", "verify", "--config", &config, "--index"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "round {round}: {stdout}");
        assert!(stdout.contains("\nindex OK: "), "round {round}: {stdout}");
        indexed = stdout
            .split("\nindex OK: ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap();
    }
    // The servers' indexers got somewhere between the kills.
    assert!(indexed > 0, "nothing was indexed in {rounds} rounds");
    let out = custodia(&["audit", "tail", "--config", &config])
        .output()
        .unwrap();
    let logged: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["event"]["request_id"].as_str().map(str::to_string)
        })
        .collect();
    assert!(acknowledged.len() > rounds, "the clients got answers");
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|r| !logged.contains(*r))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged accesses missing from the audit log",
        lost.len()
    );
    drop(dir);
}

#[test]
fn kill_9_loses_no_acknowledged_access_sqlite() {
    kill_loop(None, 50);
}

#[test]
fn kill_9_loses_no_acknowledged_access_postgres() {
    let Ok(admin) = std::env::var("CUSTODIA_TEST_DATABASE_URL") else {
        eprintln!("kill_9 on postgres skipped: CUSTODIA_TEST_DATABASE_URL is not set");
        return;
    };
    let pg = block_on(custodia_store::testing::TempPg::create(&admin));
    kill_loop(Some(&pg.url), 50);
    block_on(pg.drop_db());
    custodia_store::testing::mark_suite_passed("custodia kill_9_on_postgres");
}

#[test]
fn scan_exit_codes_formats_and_schema_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("exports");
    std::fs::create_dir_all(&data).unwrap();
    let mut synth = custodia_detect::synth::Synth::new(9);
    let mut csv = String::from("客户姓名,证件号码,手机号码,邮箱,余额\n");
    let mut raws = vec![];
    for i in 0..30 {
        let (n, id, m, e) = (
            synth.person_name(),
            synth.resident_id(),
            synth.mobile(),
            synth.email(),
        );
        csv.push_str(&format!("{n},{id},{m},{e},{i}.50\n"));
        raws.extend([id, m, e]);
    }
    std::fs::write(data.join("customers.csv"), &csv).unwrap();
    std::fs::write(
        data.join("notes.md"),
        "nothing personal here, version 1.2.3.4\n",
    )
    .unwrap();
    let clean = dir.path().join("clean");
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::write(clean.join("readme.txt"), "build 20231105123045 ok\n").unwrap();

    // Personal data found: exit 1, one JSON line per finding, no raw value anywhere.
    let out = custodia(&["scan", data.to_str().unwrap(), "--format", "jsonl"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 120, "{} findings", lines.len());
    assert!(lines
        .iter()
        .all(|l| l["path"].as_str().unwrap().ends_with("customers.csv")));
    for raw in &raws {
        assert!(!stdout.contains(raw.as_str()), "a raw value in the output");
    }
    // --exit-zero; nothing found → 0; a missing target → 2.
    let out = custodia(&["scan", data.to_str().unwrap(), "--exit-zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("cn_resident_id") && table.contains("C2"),
        "{table}"
    );
    let out = custodia(&["scan", clean.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A reader that stops early (`| head -1`): exit 1 (findings were written), no
    // "Broken pipe" error.
    let mut big = String::from("姓名,手机\n");
    for _ in 0..20_000 {
        big.push_str(&format!("{},{}\n", synth.person_name(), synth.mobile()));
    }
    let many = dir.path().join("many");
    std::fs::create_dir_all(&many).unwrap();
    std::fs::write(many.join("big.csv"), &big).unwrap();
    let mut child = custodia(&["scan", many.to_str().unwrap(), "--format", "jsonl"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
        r.read_line(&mut first).unwrap();
    } // stdout closed here
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("\"type\":\"person_name\""), "first line");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = dir.path().join("nope");
    let out = custodia(&["scan", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let out = custodia(&["scan", "postgres://nobody@127.0.0.1:1/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // HTML report: self-contained, chart, worst source first, no raw values.
    let html = dir.path().join("report.html");
    let out = custodia(&[
        "scan",
        data.to_str().unwrap(),
        "--format",
        "html",
        "--out",
        html.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg"));
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    for raw in &raws {
        assert!(
            !page.contains(raw.as_str()),
            "a raw value in the HTML report"
        );
    }

    // A schema proposed from the CSV is accepted by `custodia init` as is.
    let schema = dir.path().join("customers_proposed.toml");
    let out = custodia(&[
        "scan",
        data.join("customers.csv").to_str().unwrap(),
        "--schema-out",
        schema.to_str().unwrap(),
        "--exit-zero",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&schema).unwrap();
    let vault_dir = dir.path().join("vault");
    let out = custodia(&[
        "init",
        "--data-dir",
        vault_dir.to_str().unwrap(),
        "--collection",
        schema.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = custodia_vault::CollectionSchema::from_toml(&text).unwrap();
    let field = |n: &str| parsed.field(n).unwrap_or_else(|| panic!("{n} in {text}"));
    assert_eq!(field("id_no").ty.id(), "cn_resident_id");
    assert!(field("id_no").searchable);
    assert_eq!(field("mobile").ty.id(), "cn_mobile");
    assert_eq!(field("full_name").ty.id(), "person_name");
    assert_eq!(field("email").ty.id(), "email");
    assert_eq!(field("balance").ty.id(), "decimal");
}

/// `bench audit --commit-delay-us` has the configuration key's bound (10000): above it the
/// command is refused, naming the flag, before it runs anything.
#[test]
fn bench_commit_delay_is_bounded() {
    let out = custodia(&["bench", "audit", "--commit-delay-us", "10001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--commit-delay-us") && err.contains("10000"),
        "{err}"
    );
}

/// `--bench-unaudited` (benchmarks of the read path without auditing) records no events, and
/// is refused on anything but a `--dev` vault; the same access on a normal dev server is
/// recorded.
#[test]
fn bench_unaudited_only_on_a_dev_vault() {
    let (dir, config) = init_dir("intl", None);
    let data = dir.path().join("data");
    assert!(data.join("custodia.db").exists());
    // `serve ARGS --listen 127.0.0.1:0 --bench-unaudited` exits 2 saying `why`.
    let refused = |args: &[&str], why: &str| {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--listen", "127.0.0.1:0", "--bench-unaudited"]);
        let out = custodia(&all).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{args:?}"
        );
    };
    refused(
        &["--config", config.to_str().unwrap()],
        "allowed only with --dev",
    );
    // A real vault's data dir under --dev: the dev passphrase does not open it.
    refused(
        &["--dev", "--data-dir", data.to_str().unwrap()],
        "wrong passphrase",
    );
    let mut appended = vec![];
    for unaudited in [false, true] {
        let mut args = vec![
            "serve",
            "--dev",
            "--dev-records",
            "5",
            "--listen",
            "127.0.0.1:0",
        ];
        if unaudited {
            args.push("--bench-unaudited");
        }
        let s = start(custodia(&args), Duration::from_secs(120));
        let events = || metric(&s.url, "custodia_audit_events_appended_total ").unwrap();
        let before = events();
        // The admin token may not read customers: a refused access, recorded as every one is.
        let st = client()
            .get(format!(
                "{}/v1/collections/customers/records/00000000-0000-0000-0000-000000000000",
                s.url
            ))
            .bearer_auth(TOKEN)
            .header("X-Custodia-Purpose", "account_service")
            .send()
            .unwrap()
            .status();
        assert_eq!(st.as_u16(), 403);
        appended.push(events() - before);
    }
    assert_eq!(appended, [1.0, 0.0]);
}
