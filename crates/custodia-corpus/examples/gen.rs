//! Writes a corpus for benchmarks and manual runs.
//!
//! `cargo run --release -p custodia-corpus --example gen -- OUT_DIR [MEGABYTES] [SEED]`
//! (defaults: 200 MB, seed 1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use custodia_corpus::{generate, CorpusConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("usage: gen OUT_DIR [MEGABYTES] [SEED]");
        return ExitCode::from(2);
    };
    let mb: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let started = Instant::now();
    match generate(&CorpusConfig::new(seed, mb << 20), &out) {
        Ok(summary) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} files, {:.1} MB in {secs:.1} s ({:.0} MB/s)",
                summary.files.len(),
                summary.total_bytes as f64 / 1e6,
                summary.total_bytes as f64 / 1e6 / secs
            );
            for (ty, n) in &summary.planted {
                println!("  planted {ty:<18} {n:>9}");
            }
            for (kind, n) in &summary.hard_negatives {
                println!("  negative {kind:<24} {n:>9}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen: {e}");
            ExitCode::FAILURE
        }
    }
}
