//! Seeded synthetic corpora with ground truth, for measuring PII detectors, and their
//! scoring.
//!
//! A detector's quality can only be stated against data whose every personal value is
//! known, and real customer files can never be that data. [`generate`] writes a directory
//! of realistic files (call-centre notes, application logs, CSV exports, JSON event logs,
//! markdown notes) with values planted in the surface forms people and systems write
//! (`+86 138 1234 5678`, full-width digits, cards in groups of four, ids with a lowercase
//! `x`, values glued to Chinese text) next to hard negatives (ids with a wrong check
//! character, numbers failing Luhn, order numbers, timestamps, serials with a valid id
//! inside, versions, masked values). Every planted value passes its validator in
//! [`custodia_detect::validate`]; every hard negative fails all of the strict ones.
//!
//! The ground truth is `truth.jsonl` in the corpus directory, one planted value a line:
//! `{"path","start","end","type"}` with byte offsets in the file as written (end
//! exclusive). `hard_negatives.jsonl` lists the negatives the same way, with a `kind`
//! instead of a `type`, to explain false positives. Neither holds a value, so scanning
//! the directory they are in finds nothing in them.
//!
//! The same seed gives the same bytes, whatever the size: a 1 MB corpus for tests and a
//! 200 MB one for benchmarks come from one code path. [`score`] compares findings with
//! the truth and prints per-type precision and recall against the detector's targets.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

mod doc;
mod kinds;
mod score;
mod values;

pub use kinds::FileKind;
pub use score::{read_findings_jsonl, read_truth, score, target, Score, Span, TypeScore};

/// The name of the ground-truth file in a corpus directory.
pub const TRUTH_FILE: &str = "truth.jsonl";
/// The name of the hard-negative list in a corpus directory.
pub const NEGATIVES_FILE: &str = "hard_negatives.jsonl";
/// The files in a corpus directory that are not corpus. They hold no values, but a
/// benchmark should skip them: the truth is about as large as the corpus.
pub const METADATA_FILES: [&str; 2] = [TRUTH_FILE, NEGATIVES_FILE];

/// What corpus to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusConfig {
    /// Everything is determined by the seed.
    pub seed: u64,
    /// Approximate total size of the corpus files (each file stops at the first record
    /// boundary past its share, so the total is slightly above this).
    pub total_bytes: u64,
    /// Approximate size of one file; the corpus has `total_bytes / file_bytes` files, and
    /// at least one of each [`FileKind`].
    pub file_bytes: u64,
}

impl CorpusConfig {
    /// A corpus of about `total_bytes` in files of about 4 MiB.
    pub fn new(seed: u64, total_bytes: u64) -> CorpusConfig {
        CorpusConfig {
            seed,
            total_bytes,
            file_bytes: 4 << 20,
        }
    }
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    /// Relative to the corpus directory, `/`-separated.
    pub path: String,
    pub kind: FileKind,
    pub bytes: u64,
    /// Planted values in the file.
    pub planted: u64,
    /// Hard negatives in the file.
    pub hard_negatives: u64,
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorpusSummary {
    pub files: Vec<FileSummary>,
    /// Sum of the corpus files' sizes (not counting the truth files).
    pub total_bytes: u64,
    /// Planted values per PII type id.
    pub planted: BTreeMap<String, u64>,
    /// Hard negatives per kind.
    pub hard_negatives: BTreeMap<String, u64>,
}

/// The kinds of the files after the first of each, in proportion: notes 30%, logs 25%,
/// CSV 20%, JSON lines 15%, markdown 10%.
const KIND_CYCLE: [FileKind; 20] = {
    use FileKind::*;
    [
        Notes, Log, Csv, JsonLines, Notes, Log, Markdown, Csv, Notes, Log, JsonLines, Notes, Csv,
        Log, Notes, Markdown, Csv, Log, JsonLines, Notes,
    ]
};

/// A well-mixed 64-bit value from `x` (SplitMix64's finalizer), so that per-file seeds
/// of neighbouring files are unrelated.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Writes a corpus into `out_dir`, which must not exist or be empty (a stale file from
/// an earlier corpus would be scanned but missing from the truth).
pub fn generate(cfg: &CorpusConfig, out_dir: &Path) -> io::Result<CorpusSummary> {
    if cfg.file_bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file_bytes must be positive",
        ));
    }
    if out_dir.exists() && fs::read_dir(out_dir)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is not empty", out_dir.display()),
        ));
    }
    fs::create_dir_all(out_dir)?;
    let count = cfg
        .total_bytes
        .div_ceil(cfg.file_bytes)
        .max(FileKind::ALL.len() as u64);
    let per_file = (cfg.total_bytes / count).max(1) as usize;
    let mut truth = BufWriter::new(fs::File::create(out_dir.join(TRUTH_FILE))?);
    let mut negatives = BufWriter::new(fs::File::create(out_dir.join(NEGATIVES_FILE))?);
    let mut summary = CorpusSummary::default();
    let mut nth_of_kind: BTreeMap<FileKind, u64> = BTreeMap::new();
    for i in 0..count {
        let kind = match FileKind::ALL.get(i as usize) {
            Some(&k) => k,
            None => KIND_CYCLE[(i as usize - FileKind::ALL.len()) % KIND_CYCLE.len()],
        };
        let file_seed = mix(cfg.seed ^ mix(i));
        let mut v = values::Values::new(StdRng::seed_from_u64(file_seed), mix(file_seed));
        let nth = nth_of_kind.entry(kind).or_default();
        let doc = kinds::write_file(kind, *nth, &mut v, per_file);
        *nth += 1;
        let folder = kind.folder();
        let path = format!("{folder}/{folder}-{i:04}.{}", kind.extension());
        fs::create_dir_all(out_dir.join(folder))?;
        fs::write(out_dir.join(&path), doc.buf.as_bytes())?;
        let json_path = serde_json::to_string(&path)?;
        for &(start, end, ty) in &doc.truth {
            writeln!(
                truth,
                "{{\"path\":{json_path},\"start\":{start},\"end\":{end},\"type\":\"{ty}\"}}"
            )?;
            *summary.planted.entry(ty.id().to_owned()).or_default() += 1;
        }
        for &(start, end, kind) in &doc.negatives {
            writeln!(
                negatives,
                "{{\"path\":{json_path},\"start\":{start},\"end\":{end},\"kind\":\"{kind}\"}}"
            )?;
            *summary.hard_negatives.entry(kind.to_owned()).or_default() += 1;
        }
        summary.total_bytes += doc.buf.len() as u64;
        summary.files.push(FileSummary {
            path,
            kind,
            bytes: doc.buf.len() as u64,
            planted: doc.truth.len() as u64,
            hard_negatives: doc.negatives.len() as u64,
        });
    }
    truth.flush()?;
    negatives.flush()?;
    Ok(summary)
}
