//! `custodia records import`: streams a CSV or JSONL file into a collection in batches.
//! Rows that fail are reported by line and field — never with their values — and the
//! valid rows are imported. Exit code: 0 all imported, 1 some rows rejected, 2 error.

use crate::{open_vault, ConfigArgs};
use clap::Args;
use custodia_vault::{Attributes, RecordInput, Vault};
use serde_json::{Map, Value};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Collection to import into.
    #[arg(long)]
    collection: String,
    /// `.csv` or `.jsonl` file (by extension; `--input-format` to force).
    file: PathBuf,
    #[arg(long, value_parser = ["csv", "jsonl"])]
    input_format: Option<String>,
    /// Report format: text or json (one object with counts and rejected rows).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Records per transaction.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
}

#[derive(serde::Serialize)]
struct Rejected {
    line: u64,
    field: Option<String>,
    code: String,
    message: String,
}

pub async fn run(args: ImportArgs) -> Result<ExitCode, String> {
    let vault = std::sync::Arc::new(open_vault(&args.config.load()?).await?);
    import(vault, &args).await
}

async fn import(vault: std::sync::Arc<Vault>, args: &ImportArgs) -> Result<ExitCode, String> {
    vault
        .collection(&args.collection)
        .await
        .map_err(|e| e.to_string())?;
    let jsonl = match args.input_format.as_deref() {
        Some(f) => f == "jsonl",
        None => args
            .file
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "ndjson"),
    };
    let file = std::fs::File::open(&args.file)
        .map_err(|e| format!("cannot open {}: {e}", args.file.display()))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if crate::is_terminal_stderr() {
        let b = indicatif::ProgressBar::new(total_bytes);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                .expect("template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let reader = std::io::BufReader::with_capacity(1 << 20, bar.wrap_read(file));
    let start = std::time::Instant::now();
    let mut sink = Sink {
        vault,
        in_flight: None,
        collection: &args.collection,
        batch_size: args.batch.max(1),
        batch: Vec::with_capacity(args.batch),
        rejected: Vec::new(),
        imported: 0,
        bar: &bar,
    };
    if jsonl {
        for (i, line) in reader.lines().enumerate() {
            let line_no = i as u64 + 1;
            let line = line.map_err(|e| format!("read error at line {line_no}: {e}"))?;
            if !line.trim().is_empty() {
                sink.row(line_no, parse_jsonl(&line)).await?;
            }
        }
    } else {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        let headers = csv
            .headers()
            .map_err(|e| format!("CSV header: {e}"))?
            .clone();
        let mut row = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut row) {
                Ok(false) => break,
                Ok(true) => {
                    let line_no = row.position().map(|p| p.line()).unwrap_or(0);
                    sink.row(line_no, csv_row(&headers, &row)).await?;
                }
                Err(e) => {
                    let line_no = e.position().map(|p| p.line()).unwrap_or(0);
                    let why = "malformed CSV row (wrong number of columns or bad quoting)";
                    sink.row(line_no, Err((None, why.into()))).await?;
                }
            }
        }
    }
    sink.flush().await?;
    sink.settle().await?;
    bar.finish_and_clear();
    let Sink {
        mut rejected,
        imported,
        ..
    } = sink;
    let secs = start.elapsed().as_secs_f64();
    rejected.sort_by_key(|r| r.line);
    if args.format == "json" {
        println!(
            "{}",
            serde_json::json!({
                "collection": args.collection,
                "imported": imported,
                "rejected": rejected.len(),
                "rows": rejected,
                "seconds": secs,
            })
        );
    } else {
        for r in &rejected {
            match &r.field {
                Some(f) => eprintln!("line {}: field {f}: {} ({})", r.line, r.message, r.code),
                None => eprintln!("line {}: {} ({})", r.line, r.message, r.code),
            }
        }
        println!(
            "imported {imported} records into {} in {secs:.2}s ({:.0} records/s); {} rows rejected",
            args.collection,
            imported as f64 / secs.max(1e-9),
            rejected.len()
        );
    }
    Ok(if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

type BatchOutcome = Result<Vec<custodia_vault::Result<custodia_vault::Written>>, String>;

/// Collects parsed rows into batches and stores each full batch. One batch is stored in a
/// task while the next is parsed and encrypted, so the two cores overlap the database's
/// work with ours.
struct Sink<'a> {
    vault: std::sync::Arc<Vault>,
    in_flight: Option<(Vec<u64>, tokio::task::JoinHandle<BatchOutcome>)>,
    collection: &'a str,
    batch_size: usize,
    batch: Vec<(u64, RecordInput)>,
    rejected: Vec<Rejected>,
    imported: u64,
    bar: &'a indicatif::ProgressBar,
}

impl Sink<'_> {
    async fn row(
        &mut self,
        line: u64,
        parsed: Result<RecordInput, RowError>,
    ) -> Result<(), String> {
        match parsed {
            Ok(r) => self.batch.push((line, r)),
            Err((field, message)) => self.rejected.push(Rejected {
                line,
                field,
                code: "invalid_row".into(),
                message,
            }),
        }
        if self.batch.len() >= self.batch_size {
            self.flush().await?;
            self.bar.set_message(format!("{} imported", self.imported));
        }
        Ok(())
    }

    /// Starts storing the current batch, after collecting the outcome of the previous one.
    async fn flush(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let (lines, inputs): (Vec<u64>, Vec<RecordInput>) =
            std::mem::take(&mut self.batch).into_iter().unzip();
        let vault = self.vault.clone();
        let collection = self.collection.to_string();
        let task = tokio::spawn(async move {
            vault
                .create_many(&collection, &inputs)
                .await
                .map_err(|e| e.to_string())
        });
        self.settle().await?;
        self.in_flight = Some((lines, task));
        Ok(())
    }

    /// Waits for the batch being stored and records its outcome.
    async fn settle(&mut self) -> Result<(), String> {
        let Some((lines, task)) = self.in_flight.take() else {
            return Ok(());
        };
        let results = task.await.map_err(|e| e.to_string())??;
        for (line, r) in lines.into_iter().zip(results) {
            match r {
                Ok(_) => self.imported += 1,
                Err(e) => self.rejected.push(Rejected {
                    line,
                    field: e.field().map(str::to_string),
                    code: e.code().to_string(),
                    message: e.to_string(),
                }),
            }
        }
        Ok(())
    }
}

type RowError = (Option<String>, String);

fn attributes(tier: Option<&str>, branch: Option<&str>) -> Result<Attributes, RowError> {
    let mut a = Attributes::default();
    if let Some(t) = tier.filter(|t| !t.is_empty()) {
        a.tier = t.parse().map_err(|_| {
            (
                Some("tier".to_string()),
                "tier must be standard, high or vip".to_string(),
            )
        })?;
    }
    if let Some(b) = branch {
        a.branch = b.to_string();
    }
    Ok(a)
}

fn csv_row(headers: &csv::StringRecord, row: &csv::StringRecord) -> Result<RecordInput, RowError> {
    let mut fields = Map::new();
    let mut tier = None;
    let mut branch = None;
    for (h, v) in headers.iter().zip(row.iter()) {
        match h {
            "tier" => tier = Some(v),
            "branch" => branch = Some(v),
            _ if v.is_empty() => {}
            _ => {
                fields.insert(h.to_string(), Value::from(v));
            }
        }
    }
    Ok(RecordInput {
        fields,
        attributes: attributes(tier, branch)?,
    })
}

/// A JSONL line is either `{"fields":{…},"attributes":{…}}` or a flat object of fields
/// (with optional `tier` and `branch`).
fn parse_jsonl(line: &str) -> Result<RecordInput, RowError> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| (None, format!("not a JSON object (column {})", e.column())))?;
    let Value::Object(mut obj) = v else {
        return Err((None, "not a JSON object".into()));
    };
    if let Some(Value::Object(fields)) = obj.remove("fields") {
        let attrs = match obj.remove("attributes") {
            Some(a) => serde_json::from_value(a).map_err(|_| {
                (
                    Some("attributes".to_string()),
                    "attributes must be {\"tier\":…,\"branch\":…}".to_string(),
                )
            })?,
            None => Attributes::default(),
        };
        return Ok(RecordInput {
            fields,
            attributes: attrs,
        });
    }
    let tier = obj.remove("tier");
    let branch = obj.remove("branch");
    let attrs = attributes(
        tier.as_ref().and_then(Value::as_str),
        branch.as_ref().and_then(Value::as_str),
    )?;
    Ok(RecordInput {
        fields: obj,
        attributes: attrs,
    })
}
