//! Scores a scanner's jsonl findings against a corpus's truth and prints the table.
//!
//! `cargo run --release -p custodia-corpus --example score -- CORPUS_DIR FINDINGS.jsonl [TRUTH]`
//! TRUTH defaults to CORPUS_DIR/truth.jsonl; give a subset of it when only part of the
//! corpus was scanned. Exits 1 if a type misses its target.

use std::path::PathBuf;
use std::process::ExitCode;

use custodia_corpus::{read_findings_jsonl, read_truth, score, TRUTH_FILE};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let (corpus, findings, truth_path) = match args.as_slice() {
        [c, f] => (c, f, c.join(TRUTH_FILE)),
        [c, f, t] => (c, f, t.clone()),
        _ => {
            eprintln!("usage: score CORPUS_DIR FINDINGS.jsonl [TRUTH.jsonl]");
            return ExitCode::from(2);
        }
    };
    let run = || -> std::io::Result<custodia_corpus::Score> {
        let truth = read_truth(&truth_path)?;
        let found = read_findings_jsonl(findings, corpus)?;
        Ok(score(&truth, &found))
    };
    match run() {
        Ok(s) => {
            print!("{s}");
            if s.missed_targets().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("score: {e}");
            ExitCode::from(2)
        }
    }
}
