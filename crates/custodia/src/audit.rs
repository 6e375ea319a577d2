//! `custodia audit verify|export`: whole-log verification from a database or from an
//! export directory, and the export a third party verifies on its own machine.

use crate::config::Config;
use custodia_audit::merkle::HashAlg;
use custodia_audit::sth::{PublicKey, SigAlg, SignedTreeHead};
use custodia_audit::verify::{Failure, LogVerifier};
use custodia_server::audit::stored_heads;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

const EVENTS: &str = "events.jsonl";
const HEADS: &str = "heads.jsonl";
const KEY: &str = "public_key.txt";
const BATCH: i64 = 10_000;

/// Calls `f` on every stored event from `from` on, in order; `f` returns false to stop.
async fn each_event(
    store: &dyn custodia_store::Store,
    from: i64,
    mut f: impl FnMut(i64, Vec<u8>) -> Result<bool, String>,
) -> Result<(), String> {
    let mut next = from;
    loop {
        let batch = store
            .audit_events(next, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            return Ok(());
        }
        for (seq, bytes) in batch {
            next = seq + 1;
            if !f(seq, bytes)? {
                return Ok(());
            }
        }
    }
}

fn hash_of(key: &PublicKey) -> HashAlg {
    match key.alg {
        SigAlg::Ed25519 => HashAlg::Sha256,
        SigAlg::Sm2 => HashAlg::Sm3,
    }
}

fn read_key(file: &Path) -> Result<PublicKey, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    PublicKey::from_text(&text)
        .ok_or_else(|| format!("{}: not ed25519:<hex> or sm2:<hex>", file.display()))
}

async fn open(cfg: &Config) -> Result<std::sync::Arc<dyn custodia_store::Store>, String> {
    custodia_store::open(crate::database_url(cfg)?)
        .await
        .map_err(|e| e.to_string())
}

fn failed(f: Failure) -> Result<ExitCode, String> {
    println!("FAILED: {f}");
    Ok(ExitCode::from(1))
}

fn finish(v: LogVerifier) -> Result<ExitCode, String> {
    let done = match v.finish() {
        Ok(d) => d,
        Err(f) => return failed(f),
    };
    match &done.last_head {
        Some(h) => println!(
            "OK: {} events, tree head {} signed {}",
            done.events,
            custodia_crypto::hex_lower(&h.root_hash),
            custodia_detect::format_timestamp(h.timestamp_ms / 1000)
        ),
        None => println!("OK: {} events, no signed tree head yet", done.events),
    }
    let covered = done.last_head.as_ref().map_or(0, |h| h.tree_size);
    if covered < done.events {
        println!(
            "note: the last {} events are not yet covered by a signed tree head",
            done.events - covered
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Heads from a file of JSON lines (`heads.jsonl`, or tree-head bodies).
fn read_heads(file: &Path) -> Result<Vec<SignedTreeHead>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut heads = vec![];
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row = head_row(line)
            .ok_or_else(|| format!("{} line {}: not a tree head", file.display(), i + 1))?;
        heads
            .push(custodia_server::audit::head_of(&row).ok_or_else(|| {
                format!("{} line {}: malformed tree head", file.display(), i + 1)
            })?);
    }
    Ok(heads)
}

pub async fn verify_db(
    cfg: &Config,
    key_file: Option<&Path>,
    known: Option<&Path>,
    index: bool,
) -> Result<ExitCode, String> {
    let store = open(cfg).await?;
    let key = match key_file {
        Some(f) => read_key(f)?,
        None => custodia_server::audit::stored_public_key(store.as_ref())
            .await
            .ok_or("no audit public key stored with this log; pass --public-key")?,
    };
    let mut heads = stored_heads(store.as_ref()).await?;
    if let Some(k) = known {
        heads.extend(read_heads(k)?);
    }
    let mut v = match LogVerifier::new(hash_of(&key), &heads, &key) {
        Ok(v) => v,
        Err(f) => return failed(f),
    };
    let mut expected = 0i64;
    let mut failure = None;
    each_event(store.as_ref(), 0, |seq, bytes| {
        if seq != expected {
            failure = Some(Failure {
                index: expected as u64,
                what: format!("event {expected} is missing (the next stored is {seq})"),
            });
            return Ok(false);
        }
        if let Err(f) = v.push(&bytes) {
            failure = Some(f);
            return Ok(false);
        }
        expected += 1;
        Ok(true)
    })
    .await?;
    if let Some(f) = failure {
        return failed(f);
    }
    let code = finish(v)?;
    if !index || code != ExitCode::SUCCESS {
        return Ok(code);
    }
    match custodia_server::audit::check_index(store.as_ref()).await {
        Ok(c) => {
            println!(
                "index OK: {} events indexed, {} entries",
                c.indexed, c.entries
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: index: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

pub fn verify_offline(
    dir: &Path,
    key_file: Option<&Path>,
    known: Option<&Path>,
) -> Result<ExitCode, String> {
    let key = read_key(&key_file.map_or_else(|| dir.join(KEY), Path::to_path_buf))?;
    let mut heads = read_heads(&dir.join(HEADS))?;
    if let Some(k) = known {
        heads.extend(read_heads(k)?);
    }
    let mut v = match LogVerifier::new(hash_of(&key), &heads, &key) {
        Ok(v) => v,
        Err(f) => return failed(f),
    };
    let file = std::fs::File::open(dir.join(EVENTS))
        .map_err(|e| format!("{}: {e}", dir.join(EVENTS).display()))?;
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| e.to_string())?;
        if let Err(f) = v.push(&line) {
            return failed(f);
        }
    }
    finish(v)
}

fn head_row(line: &str) -> Option<custodia_store::AuditHeadRow> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(custodia_store::AuditHeadRow {
        tree_size: v["tree_size"].as_i64()?,
        root_hash: v["root_hash"].as_str()?.to_string(),
        timestamp_ms: v["timestamp_ms"].as_i64()?,
        signature: v["signature"].as_str()?.to_string(),
    })
}

/// `custodia audit reindex`: empties the investigation index and indexes the whole log again.
pub async fn reindex(cfg: &Config) -> Result<ExitCode, String> {
    let store = open(cfg).await?;
    store.reset_audit_index().await.map_err(|e| e.to_string())?;
    let n = custodia_server::audit::index_log(&store, i64::MAX)
        .await
        .map_err(|e| e.to_string())?;
    println!("reindexed: {n} events");
    Ok(ExitCode::SUCCESS)
}

pub async fn export(cfg: &Config, out: &Path) -> Result<ExitCode, String> {
    let store = open(cfg).await?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let key = custodia_server::audit::stored_public_key(store.as_ref())
        .await
        .ok_or("no audit public key stored with this log")?;
    std::fs::write(out.join(KEY), format!("{}\n", key.to_text())).map_err(|e| e.to_string())?;
    let rows = store.audit_heads().await.map_err(|e| e.to_string())?;
    let mut heads = String::new();
    for r in &rows {
        heads.push_str(
            &serde_json::json!({"tree_size": r.tree_size, "root_hash": r.root_hash,
                "timestamp_ms": r.timestamp_ms, "signature": r.signature})
            .to_string(),
        );
        heads.push('\n');
    }
    std::fs::write(out.join(HEADS), heads).map_err(|e| e.to_string())?;
    // Canonical events hold no raw newline (JSON escapes it), so one per line is exact.
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out.join(EVENTS)).map_err(|e| e.to_string())?,
    );
    let mut count = 0i64;
    each_event(store.as_ref(), 0, |_, bytes| {
        if count > 0 {
            w.write_all(b"\n").map_err(|e| e.to_string())?;
        }
        w.write_all(&bytes).map_err(|e| e.to_string())?;
        count += 1;
        Ok(true)
    })
    .await?;
    w.flush().map_err(|e| e.to_string())?;
    println!(
        "exported {count} events and {} tree heads to {}",
        rows.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One RFC 5424 message (facility 13 "log audit", severity 6 "informational"), framed by
/// octet counting (RFC 6587 §3.4.1): `<len> <PRI>1 TIMESTAMP HOST custodia PID audit - JSON`.
pub fn syslog_frame(host: &str, seq: i64, event: &[u8]) -> Vec<u8> {
    let time = serde_json::from_slice::<serde_json::Value>(event)
        .ok()
        .and_then(|v| v["time_ms"].as_i64())
        .unwrap_or(0);
    let ts = custodia_detect::format_timestamp(time / 1000);
    let ts = format!("{}.{:03}Z", ts.trim_end_matches('Z'), time.rem_euclid(1000));
    let mut msg = format!(
        "<110>1 {ts} {host} custodia {} audit [custodia@32473 seq=\"{seq}\"] ",
        std::process::id()
    )
    .into_bytes();
    msg.extend_from_slice(event);
    let mut frame = format!("{} ", msg.len()).into_bytes();
    frame.extend_from_slice(&msg);
    frame
}

pub async fn tail(
    cfg: &Config,
    follow: bool,
    from: Option<i64>,
    syslog: Option<&str>,
) -> Result<ExitCode, String> {
    use tokio::io::AsyncWriteExt;
    let store = open(cfg).await?;
    let mut next = match (from, follow) {
        (Some(f), _) => f.max(0),
        (None, true) => store.audit_count().await.map_err(|e| e.to_string())?,
        (None, false) => 0,
    };
    let mut sink = match syslog {
        Some(addr) => Some(
            tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("syslog {addr}: {e}"))?,
        ),
        None => None,
    };
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
        .unwrap_or_else(|| "-".into());
    let stdout = std::io::stdout();
    loop {
        let batch = store
            .audit_events(next, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        let mut out = stdout.lock();
        for (seq, bytes) in batch {
            if seq != next {
                // Not yet visible (another node's transaction): wait for it, keep order.
                break;
            }
            out.write_all(format!("{{\"seq\":{seq},\"event\":").as_bytes())
                .and_then(|_| out.write_all(&bytes))
                .and_then(|_| out.write_all(b"}\n"))
                .map_err(|e| e.to_string())?;
            if let Some(s) = sink.as_mut() {
                s.write_all(&syslog_frame(&host, seq, &bytes))
                    .await
                    .map_err(|e| format!("syslog: {e}"))?;
            }
            next += 1;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
}
