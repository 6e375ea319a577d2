//! `custodia scan`: files and databases → findings (masked), reports, schema proposals.
//! Exit code 0: nothing found; 1: personal data found; 2: error (or `--exit-zero`: 0).

use custodia_scan::report::{Format, Writer};
use custodia_scan::{Event, Options};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ScanArgs {
    /// Files, directories, or database URLs (postgres://…, mysql://…, sqlite://…).
    #[arg(required = true)]
    targets: Vec<String>,
    /// Output: table (a summary), jsonl (one finding per line), html (a report).
    #[arg(long, default_value = "table")]
    format: Format,
    /// Write the output here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Leave out paths matching this gitignore-style pattern (repeatable).
    #[arg(long)]
    exclude: Vec<String>,
    /// Rows sampled per table (and per CSV file for column classification).
    #[arg(long, default_value_t = 1000)]
    sample: u64,
    /// Only this table (repeatable).
    #[arg(long)]
    table: Vec<String>,
    /// Findings below this confidence (0–1) are not reported.
    #[arg(long, default_value_t = 0.5)]
    min_confidence: f32,
    /// Worker threads for files (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Write a vault collection schema proposed from the (single) CSV file or table.
    #[arg(long)]
    schema_out: Option<PathBuf>,
    /// Exit 0 even when personal data was found.
    #[arg(long)]
    exit_zero: bool,
}

pub async fn run(args: ScanArgs) -> Result<ExitCode, String> {
    if !(0.0..=1.0).contains(&args.min_confidence) {
        return Err("--min-confidence must be between 0 and 1".into());
    }
    let opts = Options {
        excludes: args.exclude.clone(),
        min_confidence: args.min_confidence,
        threads: args.threads,
        sample: args.sample.max(1),
        tables: args.table.clone(),
        jsonl: args.format == Format::Jsonl,
    };
    let (dbs, files) = custodia_scan::split_targets(&args.targets);
    let out: Box<dyn Write + Send> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("--out {}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let title = args
        .targets
        .iter()
        .map(|t| custodia_scan::db::redact_url(t))
        .collect::<Vec<_>>()
        .join(", ");
    // Fail before a long scan, not after it.
    if let Some(p) = &args.schema_out {
        std::fs::File::create(p).map_err(|e| format!("--schema-out {}: {e}", p.display()))?;
    }
    let (tx, rx) = custodia_scan::channel();
    let format = args.format;
    let progress = std::io::stderr().is_terminal();
    // One consumer writes output and keeps the totals; scanners only send.
    // Returns the totals and whether the reader went away (`custodia scan … | head`).
    let consumer =
        std::thread::spawn(move || -> std::io::Result<(custodia_scan::Summary, bool)> {
            let mut w = Writer::new(out, format);
            let bar = progress.then(|| {
                let b = indicatif::ProgressBar::new_spinner();
                b.enable_steady_tick(Duration::from_millis(200));
                b
            });
            let start = Instant::now();
            for e in rx {
                let show = matches!(e, Event::Done { .. });
                match w.event(e) {
                    // The reader has what it wanted: stop (dropping the channel stops the
                    // scanners) and leave quietly.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        if let Some(b) = &bar {
                            b.finish_and_clear();
                        }
                        return Ok((w.summary, true));
                    }
                    r => r?,
                }
                if let (Some(b), true) = (&bar, show) {
                    let s = &w.summary;
                    let secs = start.elapsed().as_secs_f64().max(1e-3);
                    b.set_message(format!(
                        "{} sources, {:.1} MB, {} findings, {:.0} MB/s",
                        s.sources,
                        s.bytes as f64 / 1e6,
                        s.findings,
                        s.bytes as f64 / 1e6 / secs
                    ));
                }
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let so_far = w.summary.clone();
            match w.finish(&title) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok((so_far, true)),
                r => r.map(|s| (s, false)),
            }
        });
    let mut failure = None;
    if !files.is_empty() {
        let (files, opts, tx) = (files.clone(), opts.clone(), tx.clone());
        let r = tokio::task::spawn_blocking(move || custodia_scan::scan_files(&files, &opts, &tx))
            .await
            .map_err(|e| e.to_string())?;
        if let Err(e) = r {
            failure = Some(e.0);
        }
    }
    for url in &dbs {
        if failure.is_some() {
            break;
        }
        if let Err(e) = custodia_scan::db::scan_database(url, &opts, &tx).await {
            failure = Some(e.0);
        }
    }
    drop(tx);
    let (summary, closed) = consumer
        .join()
        .map_err(|_| "the output writer failed".to_string())?
        .map_err(|e| format!("writing the output: {e}"))?;
    if closed {
        // What was written had findings in it, or nothing was found yet.
        return Ok(if summary.findings > 0 && !args.exit_zero {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if args.format != Format::Table && args.out.is_some() && progress {
        eprint!("{}", custodia_scan::report::table(&summary));
    }
    if let Some(path) = &args.schema_out {
        let sources: std::collections::BTreeSet<&str> =
            summary.columns.iter().map(|c| c.table.as_str()).collect();
        if sources.len() != 1 {
            return Err(format!(
                "--schema-out needs exactly one CSV file or table with columns; this scan has {}",
                sources.len()
            ));
        }
        let source = *sources.iter().next().expect("one source");
        // A file: its name without extensions; a table: its name without the schema.
        let stem = if std::path::Path::new(source).is_file() {
            let name = std::path::Path::new(source)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.split('.').next().unwrap_or("proposed").to_string()
        } else {
            source.rsplit('.').next().unwrap_or("proposed").to_string()
        };
        let text = custodia_scan::schema::propose(&stem, source, &summary.columns);
        std::fs::write(path, text).map_err(|e| format!("--schema-out {}: {e}", path.display()))?;
    }
    for (path, why) in &summary.skipped {
        eprintln!("skipped {path}: {why}");
    }
    // Something named on the command line that could not be scanned (missing, unreadable,
    // corrupt, not a file) or a table that could not be read is an error even with
    // --exit-zero, which covers findings only: a typo must not let a pipeline gate pass.
    let incomplete = summary.skipped.iter().any(|(p, _)| {
        let named = files.iter().any(|f| f.to_string_lossy() == *p);
        let inside_a_dir = files.iter().any(|f| p.starts_with(&*f.to_string_lossy()));
        named || !inside_a_dir // a named target, or a table
    });
    Ok(if incomplete {
        ExitCode::from(2)
    } else if summary.findings > 0 && !args.exit_zero {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
