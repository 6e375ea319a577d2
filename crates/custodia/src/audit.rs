//! `custodia audit verify|export`: whole-log verification from a database or from an
//! export directory, and the export a third party verifies on its own machine.

use crate::config::Config;
use custodia_audit::merkle::HashAlg;
use custodia_audit::sth::{PublicKey, SigAlg, SignedTreeHead};
use custodia_audit::verify::{Failure, LogVerifier};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

const EVENTS: &str = "events.jsonl";
const HEADS: &str = "heads.jsonl";
const KEY: &str = "public_key.txt";
const BATCH: i64 = 10_000;

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

async fn stored_heads(store: &dyn custodia_store::Store) -> Result<Vec<SignedTreeHead>, String> {
    let rows = store.audit_heads().await.map_err(|e| e.to_string())?;
    rows.iter()
        .map(|r| {
            custodia_server::audit::head_of(r)
                .ok_or_else(|| format!("a stored tree head (size {}) is malformed", r.tree_size))
        })
        .collect()
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
    let mut next = 0i64;
    loop {
        let batch = store
            .audit_events(next, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            break;
        }
        for (seq, bytes) in batch {
            if seq != next {
                return failed(Failure {
                    index: next as u64,
                    what: format!("event {next} is missing (the next stored is {seq})"),
                });
            }
            if let Err(f) = v.push(&bytes) {
                return failed(f);
            }
            next += 1;
        }
    }
    finish(v)
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
    let (mut next, mut first) = (0i64, true);
    loop {
        let batch = store
            .audit_events(next, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            break;
        }
        for (_, bytes) in batch {
            if !first {
                w.write_all(b"\n").map_err(|e| e.to_string())?;
            }
            first = false;
            w.write_all(&bytes).map_err(|e| e.to_string())?;
            next += 1;
        }
    }
    w.flush().map_err(|e| e.to_string())?;
    println!(
        "exported {next} events and {} tree heads to {}",
        rows.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
