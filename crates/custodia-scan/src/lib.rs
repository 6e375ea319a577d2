//! Discovery: where has customers' personal data spread?
//!
//! `custodia scan` walks files (text, logs, CSV/TSV, JSON/JSONL, `.xlsx`, `.parquet`, and
//! gzip-compressed versions of these) and databases (PostgreSQL, MySQL/MariaDB, SQLite),
//! runs the detectors of `custodia-detect` over them and reports what it found, how
//! sensitive it is and where — never the value itself: every finding carries only its
//! position, its type and the value under the display mask.
//!
//! Files are read as streams (a block at a time, a CSV record at a time, a JSON line at a
//! time, a spreadsheet row at a time), scanned in parallel (rayon), and findings flow
//! through a bounded channel to one consumer, so memory stays flat however large a file is
//! or however much it contains.
#![forbid(unsafe_code)]

use custodia_core::{Level, PiiType};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

pub mod db;
mod encoding;
mod files;
pub mod report;
pub mod schema;
mod structured;

pub use files::{scan_files, FileKind};

/// One place where personal data was found. The value itself is never kept: `masked` is
/// its display mask.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// The file (as given or found while walking), or the table for database findings.
    /// Shared by all findings of a source (one allocation per source, not per finding).
    pub path: Arc<str>,
    /// 1-based line of a text file; the record number of a CSV/JSONL/spreadsheet/parquet
    /// row (header excluded), or the sampled row of a table.
    pub line: u64,
    /// 1-based character column in the line (text files), or of the value inside the cell
    /// or string for structured sources.
    pub column: u64,
    /// Byte offsets of the value in the file, end exclusive (in the decompressed stream of
    /// a `.gz`; inside the cell for `.xlsx`, `.parquet` and database values).
    pub start: u64,
    pub end: u64,
    #[serde(rename = "type", serialize_with = "ser_type")]
    pub ty: PiiType,
    #[serde(serialize_with = "ser_confidence")]
    pub confidence: f32,
    pub masked: String,
    /// Column header, JSON key path or database column, for structured sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Arc<str>>,
}

impl Finding {
    /// Detection `d`, whose value is `text[d.start..d.end]`, found at `(line, column)` and
    /// bytes `start..end` of its source. The value is kept only under its mask.
    pub(crate) fn new(
        path: &Arc<str>,
        (line, column): (u64, u64),
        (start, end): (u64, u64),
        d: &custodia_detect::find::Finding,
        text: &str,
        field: Option<Arc<str>>,
    ) -> Finding {
        Finding {
            path: path.clone(),
            line,
            column,
            start,
            end,
            ty: d.ty,
            confidence: d.confidence,
            masked: masked(d.ty, &text[d.start..d.end]),
            field,
        }
    }
}

fn ser_type<S: serde::Serializer>(t: &PiiType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.id())
}

fn ser_confidence<S: serde::Serializer>(c: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((*c as f64 * 100.0).round() / 100.0)
}

/// The display-masked form of a detected value: the type's mask on its canonical form,
/// or the generic mask when the value does not normalize (context-gated detections).
pub fn masked(ty: PiiType, raw: &str) -> String {
    // Already canonical (the common case): mask directly, without validating again.
    let b = raw.as_bytes();
    let plain = match ty {
        PiiType::CnMobile => b.len() == 11 && b.iter().all(u8::is_ascii_digit),
        PiiType::BankCard => (13..=19).contains(&b.len()) && b.iter().all(u8::is_ascii_digit),
        PiiType::CnResidentId => {
            b.len() == 18
                && b[..17].iter().all(u8::is_ascii_digit)
                && (b[17].is_ascii_digit() || b[17] == b'X')
        }
        // The detector found it with `email_ok` on the (width-folded) bytes, which are
        // these when they are ASCII.
        PiiType::Email => {
            b.is_ascii()
                && !b
                    .iter()
                    .any(|c| c.is_ascii_uppercase() || c.is_ascii_whitespace())
        }
        PiiType::PersonName => canonical_text(raw, 1, 40, true),
        PiiType::Address => canonical_text(raw, 2, 200, false),
        _ => false,
    };
    if plain {
        return custodia_detect::mask(ty, raw);
    }
    match custodia_detect::normalize(ty, raw) {
        Ok(canonical) => custodia_detect::mask(ty, &canonical),
        Err(_) => custodia_detect::mask::generic(raw),
    }
}

/// [`masked`] as a JSON string, appended to `out`. The canonical digit forms — most
/// findings — are masked in place (what `keep_ends` makes of them: head, one star per
/// hidden digit, tail), without a `String` per finding; the rest go through [`masked`].
fn push_masked(out: &mut Vec<u8>, ty: PiiType, raw: &str) {
    let b = raw.as_bytes();
    let digits = |b: &[u8]| b.iter().all(u8::is_ascii_digit);
    let keep = match ty {
        PiiType::CnMobile if b.len() == 11 && digits(b) => Some((3, 4)),
        PiiType::BankCard if (13..=19).contains(&b.len()) && digits(b) => Some((6, 4)),
        PiiType::CnResidentId
            if b.len() == 18 && digits(&b[..17]) && (b[17].is_ascii_digit() || b[17] == b'X') =>
        {
            Some((6, 4))
        }
        _ => None,
    };
    match keep {
        Some((head, tail)) => {
            out.push(b'"');
            out.extend_from_slice(&b[..head]);
            out.extend(std::iter::repeat_n(b'*', b.len() - head - tail));
            out.extend_from_slice(&b[b.len() - tail..]);
            out.push(b'"');
        }
        None => json_str(out, &masked(ty, raw)),
    }
}

/// Whether free text is already what the validators' cleaning makes of it and valid
/// (`min..=max` characters; for a name no digit or `@`): nothing to fold to half width,
/// no surrounding whitespace, single ASCII spaces inside, nothing invisible. One pass;
/// `false` only sends the value the long way, through `normalize`.
fn canonical_text(raw: &str, min: usize, max: usize, name: bool) -> bool {
    let b = raw.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let mut prev_space = false;
    let mut count = 0;
    for c in raw.chars() {
        // CJK ideographs, most of a name or an address, pass every test below.
        if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
            prev_space = false;
            count += 1;
            continue;
        }
        let space = c == ' ';
        if (space && prev_space)
            || (!space && c.is_whitespace())
            || c.is_control()
            || matches!(c, '\u{FF01}'..='\u{FF5E}')
            || custodia_detect::validate::is_invisible_format(c)
            || (name && (c.is_ascii_digit() || c == '@'))
        {
            return false;
        }
        prev_space = space;
        count += 1;
    }
    (min..=max).contains(&count)
}

/// Sensitivity the vault would give data of this type (JR/T 0171-2020): identifying data
/// is C2; network addresses and postal codes alone are internal (C1).
pub fn level_of(ty: PiiType) -> Level {
    match ty {
        PiiType::Ipv4 | PiiType::Ipv6 | PiiType::PostalCode => Level::C1,
        _ => Level::C2,
    }
}

/// What the scanner reports while it runs.
#[derive(Debug)]
pub enum Event {
    /// Findings, in order within a source (sent in batches: one channel message per
    /// finding would cost more than finding it).
    Findings(Vec<Finding>),
    /// Findings as JSON lines already written (by the scanning thread, when
    /// [`Options::jsonl`] is set: the single output writer then only copies bytes), and
    /// their number per source and type.
    Rendered {
        counts: Vec<(Arc<str>, TypeCounts)>,
        jsonl: Vec<u8>,
    },
    /// A file (or table) was scanned completely; `bytes` read from it.
    Done { path: String, bytes: u64 },
    /// A file (or table) could not be read; it was skipped. The message names no value.
    Skipped { path: String, reason: String },
    /// A database column classified from its sample.
    Column(ColumnReport),
}

/// A column's classification (database table or CSV) from its sampled rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnReport {
    pub table: String,
    pub column: String,
    /// Non-null values sampled.
    pub sampled: u64,
    /// The PII type most rows matched, if any.
    #[serde(rename = "type", serialize_with = "ser_opt_type")]
    pub ty: Option<PiiType>,
    /// Share of sampled non-null values in which that type was found.
    pub share: f64,
    /// Suggested JR/T 0171 level.
    pub level: Level,
    /// The plain type every sampled value fits (`integer`, `decimal`, `date`, `boolean`,
    /// else `string`), for schema proposals.
    pub plain: &'static str,
    /// Every sampled row had a non-empty value.
    pub always_present: bool,
}

/// Tallies a column's sampled values: which PII types were found in how many values, and
/// which plain type they all fit. Values are looked at, never kept.
#[derive(Clone, Debug)]
pub struct ColumnTally {
    pub rows: u64,
    pub non_null: u64,
    by_type: BTreeMap<PiiType, u64>,
    int: bool,
    dec: bool,
    date: bool,
    boolean: bool,
}

impl Default for ColumnTally {
    fn default() -> Self {
        ColumnTally {
            rows: 0,
            non_null: 0,
            by_type: BTreeMap::new(),
            int: true,
            dec: true,
            date: true,
            boolean: true,
        }
    }
}

impl ColumnTally {
    /// One sampled value (`None`: SQL NULL) and the types detected in it.
    pub fn observe(&mut self, value: Option<&str>, types: &[PiiType]) {
        self.rows += 1;
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return;
        };
        self.non_null += 1;
        let mut seen: Vec<PiiType> = vec![];
        for t in types {
            if !seen.contains(t) {
                seen.push(*t);
                *self.by_type.entry(*t).or_default() += 1;
            }
        }
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let unsigned = v.strip_prefix('-').unwrap_or(v);
        self.int &= digits(unsigned) && unsigned.len() <= 18;
        self.dec &= match unsigned.split_once('.') {
            Some((a, b)) => digits(a) && digits(b),
            None => digits(unsigned),
        };
        self.date &= custodia_detect::validate::calendar_date(v).is_ok();
        self.boolean &= matches!(v.to_ascii_lowercase().as_str(), "true" | "false");
    }

    /// The column's classification.
    pub fn report(&self, table: &str, column: &str) -> ColumnReport {
        let best = self
            .by_type
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(ty, n)| (*ty, *n));
        let share = match best {
            Some((_, n)) if self.non_null > 0 => n as f64 / self.non_null as f64,
            _ => 0.0,
        };
        let level = if db::is_secret_name(column) {
            Level::C3
        } else if let Some((ty, _)) = best {
            level_of(ty)
        } else {
            Level::C1
        };
        let plain = if self.non_null == 0 {
            "string"
        } else if self.boolean {
            "boolean"
        } else if self.int {
            "integer"
        } else if self.dec {
            "decimal"
        } else if self.date {
            "date"
        } else {
            "string"
        };
        ColumnReport {
            table: table.to_string(),
            column: column.to_string(),
            sampled: self.non_null,
            ty: best.map(|b| b.0),
            share: (share * 1000.0).round() / 1000.0,
            level,
            plain,
            always_present: self.rows > 0 && self.non_null == self.rows,
        }
    }
}

fn ser_opt_type<S: serde::Serializer>(t: &Option<PiiType>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(t.id()),
        None => s.serialize_none(),
    }
}

/// Options common to file and database scans.
#[derive(Clone, Debug)]
pub struct Options {
    /// gitignore-style patterns of paths to leave out.
    pub excludes: Vec<String>,
    /// Findings below this confidence are not reported.
    pub min_confidence: f32,
    /// Worker threads for file scans (0: one per core).
    pub threads: usize,
    /// Rows sampled per table.
    pub sample: u64,
    /// Only these tables (all when empty).
    pub tables: Vec<String>,
    /// Scanning threads also write each finding's JSON line ([`Event::Rendered`]).
    pub jsonl: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            excludes: vec![],
            min_confidence: 0.5,
            threads: 0,
            sample: 1000,
            tables: vec![],
            jsonl: false,
        }
    }
}

/// A scan error that stops the whole scan (bad arguments, unreachable database). Errors
/// reading single files are `Event::Skipped`, not this.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScanError(pub String);

/// Totals of a scan, accumulated from its events; what reports are made of.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub sources: u64,
    pub bytes: u64,
    pub findings: u64,
    pub by_type: BTreeMap<&'static str, u64>,
    /// Per file or table: findings by type.
    pub by_source: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub skipped: Vec<(String, String)>,
    pub columns: Vec<ColumnReport>,
}

impl Summary {
    pub fn add(&mut self, e: &Event) {
        match e {
            Event::Rendered { counts, .. } => {
                for (path, counts) in counts {
                    self.count(path, counts);
                }
            }
            Event::Findings(fs) => {
                // A batch is one source's findings, or a few sources' in runs: one map
                // lookup per run and type, not per finding.
                for run in fs.chunk_by(|a, b| a.path == b.path) {
                    let mut counts = [0u64; PiiType::ALL.len()];
                    for f in run {
                        counts[type_index(f.ty)] += 1;
                    }
                    self.count(&run[0].path, &counts);
                }
            }
            Event::Done { bytes, .. } => {
                self.sources += 1;
                self.bytes += bytes;
            }
            Event::Skipped { path, reason } => self.skipped.push((path.clone(), reason.clone())),
            Event::Column(c) => self.columns.push(c.clone()),
        }
    }

    /// Adds one source's findings by type.
    fn count(&mut self, path: &str, counts: &TypeCounts) {
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return;
        }
        let per = match self.by_source.get_mut(path) {
            Some(m) => m,
            None => self.by_source.entry(path.to_string()).or_default(),
        };
        self.findings += n;
        for (ty, &n) in PiiType::ALL.iter().zip(counts) {
            if n > 0 {
                *self.by_type.entry(ty.id()).or_default() += n;
                *per.entry(ty.id()).or_default() += n;
            }
        }
    }

    /// Sources with findings, worst first (most findings of the most sensitive types).
    pub fn worst_sources(&self) -> Vec<(&String, u64)> {
        let mut v: Vec<(&String, u64)> = self
            .by_source
            .iter()
            .map(|(p, m)| (p, m.values().sum()))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v
    }
}

/// The sending half given to scanners; bounded so a flood of findings cannot pile up in
/// memory faster than the output is written.
pub type Sender = mpsc::SyncSender<Event>;

/// Findings by type (in [`PiiType::ALL`] order) of one source.
pub type TypeCounts = [u64; PiiType::ALL.len()];

fn type_index(ty: PiiType) -> usize {
    PiiType::ALL.iter().position(|&t| t == ty).unwrap_or(0)
}

/// Where a scanning thread puts its findings: [`Finding`]s, or (when the output is JSON
/// lines) the lines themselves and counts per source and type, so that no per-finding
/// struct is built, sent and freed only to be written out. Findings are sealed into
/// events of about [`BATCH`] findings each: a bounded channel of these bounds the memory
/// a slow output can hold up, and buffers of that size are reused by the allocator.
/// With a sender, events are sent as they fill and the rest when dropped; without one
/// (a block scanned on another thread), they are kept for [`Out::append`].
pub(crate) struct Out<'a> {
    tx: Option<&'a Sender>,
    /// The receiving end is gone (the output failed): scanning on is pointless.
    gone: bool,
    render: bool,
    findings: Vec<Finding>,
    jsonl: Vec<u8>,
    counts: Vec<(Arc<str>, TypeCounts)>,
    /// The path of `counts.last()`, escaped for JSON.
    path: Vec<u8>,
    /// Findings in the open event.
    n: usize,
    /// Full events, in order.
    sealed: Vec<Event>,
}

/// Findings per event: one channel message per finding would cost more than finding it.
const BATCH: usize = 512;

/// Bytes of JSON lines per event (~512 lines).
const BATCH_BYTES: usize = 80 << 10;

impl<'a> Out<'a> {
    /// Keeps what it finds (for [`Out::append`]).
    pub fn new(opts: &Options) -> Out<'static> {
        Out::with(None, opts)
    }

    /// Sends what it finds on `tx`.
    pub fn sending(tx: &'a Sender, opts: &Options) -> Out<'a> {
        Out::with(Some(tx), opts)
    }

    fn with(tx: Option<&'a Sender>, opts: &Options) -> Out<'a> {
        Out {
            tx,
            gone: false,
            render: opts.jsonl,
            findings: vec![],
            jsonl: vec![],
            counts: vec![],
            path: vec![],
            n: 0,
            sealed: vec![],
        }
    }

    /// Detection `d`, whose value is `text[d.start..d.end]`, found at `(line, column)` and
    /// bytes `start..end` of source `path`. The value is kept only under its mask.
    pub fn add(
        &mut self,
        path: &Arc<str>,
        at: (u64, u64),
        span: (u64, u64),
        d: &custodia_detect::find::Finding,
        text: &str,
        field: Option<&Arc<str>>,
    ) {
        self.n += 1;
        if !self.render {
            let f = Finding::new(path, at, span, d, text, field.cloned());
            self.findings.push(f);
            if self.n >= BATCH {
                self.seal();
            }
            return;
        }
        match self.counts.last_mut() {
            Some((p, c)) if Arc::ptr_eq(p, path) || **p == **path => c[type_index(d.ty)] += 1,
            _ => {
                let mut c = [0; PiiType::ALL.len()];
                c[type_index(d.ty)] = 1;
                self.counts.push((path.clone(), c));
                self.path.clear();
                json_str(&mut self.path, path);
            }
        }
        if self.jsonl.capacity() == 0 {
            self.jsonl = spare_buffer();
        }
        let line = Line {
            line: at.0,
            column: at.1,
            start: span.0,
            end: span.1,
            ty: d.ty,
            confidence: d.confidence,
            masked: Mask::Of(&text[d.start..d.end]),
            field: field.map(|f| &**f),
        };
        line.write(&mut self.jsonl, &self.path);
        if self.jsonl.len() >= BATCH_BYTES {
            self.seal();
        }
    }

    /// Takes what `other` found after what this holds.
    pub fn append(&mut self, mut other: Out) {
        self.seal();
        other.seal();
        for event in std::mem::take(&mut other.sealed) {
            self.put(event);
        }
    }

    /// Sends or keeps one full event.
    fn put(&mut self, event: Event) {
        match self.tx {
            Some(tx) => self.gone |= tx.send(event).is_err(),
            None => self.sealed.push(event),
        }
    }

    /// Sends (or keeps) what is held.
    pub fn flush(&mut self) {
        self.seal();
    }

    pub fn gone(&self) -> bool {
        self.gone
    }

    /// Closes the open event (if it holds anything).
    fn seal(&mut self) {
        if self.n == 0 {
            return;
        }
        self.n = 0;
        let event = if self.render {
            // The escaped path stays valid for the run that continues.
            let next = match self.counts.last() {
                Some((p, _)) => vec![(p.clone(), [0; PiiType::ALL.len()])],
                None => vec![],
            };
            Event::Rendered {
                counts: std::mem::replace(&mut self.counts, next),
                jsonl: std::mem::take(&mut self.jsonl),
            }
        } else {
            Event::Findings(std::mem::take(&mut self.findings))
        };
        self.put(event);
    }
}

impl Drop for Out<'_> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.seal();
        }
    }
}

thread_local! {
    /// Detections of one value or block, the allocation reused from one to the next
    /// (a block of dense text has tens of thousands: growing a fresh vector for each
    /// costs page faults).
    static FOUND: std::cell::Cell<Vec<custodia_detect::find::Finding>> =
        const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's reusable detections vector.
pub(crate) fn with_found<R>(f: impl FnOnce(&mut Vec<custodia_detect::find::Finding>) -> R) -> R {
    let mut found = FOUND.take();
    let r = f(&mut found);
    FOUND.set(found);
    r
}

/// Buffers of written-out events, back from the output writer: reused, they save the
/// scanning threads a fresh allocation (and its page faults) per event.
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

fn spare_buffer() -> Vec<u8> {
    let spare = SPARE.lock().ok().and_then(|mut s| s.pop());
    spare.unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES + (8 << 10)))
}

/// Gives the buffer of a written [`Event::Rendered`] back for reuse.
pub fn recycle(mut jsonl: Vec<u8>) {
    jsonl.clear();
    if jsonl.capacity() >= BATCH_BYTES {
        if let Ok(mut spare) = SPARE.lock() {
            // As many as the channel holds, and the ones being filled.
            if spare.len() < 128 {
                spare.push(jsonl);
            }
        }
    }
}

/// A JSON string as serde_json writes it (quotes, backslash, the short escapes, other
/// control characters as `\u00XX`; everything else as is).
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    // Almost every string needs no escape: one branch-free pass, then one copy.
    if !b
        .iter()
        .fold(false, |e, &c| e | (c < 0x20) | (c == b'"') | (c == b'\\'))
    {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[from..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
    out.push(b'"');
}

/// One finding's JSON line, byte for byte what serde_json writes for [`Finding`] (tested).
pub(crate) struct Line<'a> {
    line: u64,
    column: u64,
    start: u64,
    end: u64,
    ty: PiiType,
    confidence: f32,
    masked: Mask<'a>,
    field: Option<&'a str>,
}

/// A finding's mask: made already, or made as the line is written from the raw value.
pub(crate) enum Mask<'a> {
    Made(&'a str),
    Of(&'a str),
}

impl Line<'_> {
    pub fn of(f: &Finding) -> Line<'_> {
        Line {
            line: f.line,
            column: f.column,
            start: f.start,
            end: f.end,
            ty: f.ty,
            confidence: f.confidence,
            masked: Mask::Made(&f.masked),
            field: f.field.as_deref(),
        }
    }

    /// Appends the line, with its path already escaped.
    pub fn write(&self, out: &mut Vec<u8>, path: &[u8]) {
        let masked_len = match self.masked {
            Mask::Made(m) | Mask::Of(m) => m.len(),
        };
        out.reserve(160 + path.len() + masked_len + self.field.map_or(0, str::len));
        out.extend_from_slice(b"{\"path\":");
        out.extend_from_slice(path);
        out.extend_from_slice(b",\"line\":");
        push_u64(out, self.line);
        out.extend_from_slice(b",\"column\":");
        push_u64(out, self.column);
        out.extend_from_slice(b",\"start\":");
        push_u64(out, self.start);
        out.extend_from_slice(b",\"end\":");
        push_u64(out, self.end);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(self.ty.id().as_bytes());
        out.extend_from_slice(b"\",\"confidence\":");
        // serde writes the rounded f64: 1.0, 0.9, 0.85.
        let c = ((self.confidence as f64 * 100.0).round() as i64).clamp(0, 100) as u8;
        match c {
            100 => out.extend_from_slice(b"1.0"),
            c => {
                out.extend_from_slice(b"0.");
                out.push(b'0' + c / 10);
                if c % 10 != 0 {
                    out.push(b'0' + c % 10);
                }
            }
        }
        out.extend_from_slice(b",\"masked\":");
        match self.masked {
            Mask::Made(m) => json_str(out, m),
            Mask::Of(raw) => push_masked(out, self.ty, raw),
        }
        if let Some(field) = self.field {
            out.extend_from_slice(b",\"field\":");
            json_str(out, field);
        }
        out.extend_from_slice(b"}\n");
    }
}

/// A number in decimal, as `Display` writes it.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Field names to what was worked out for them, looked up for every cell.
type NameMap<V> = std::collections::HashMap<String, V, foldhash::fast::RandomState>;

/// Header contexts prepared once per distinct field name.
#[derive(Default)]
pub(crate) struct Fields(NameMap<custodia_detect::find::FieldContext>);

impl Fields {
    pub fn get(&mut self, field: &str) -> custodia_detect::find::FieldContext {
        if let Some(c) = self.0.get(field) {
            return *c;
        }
        let c = custodia_detect::find::FieldContext::new(field);
        if self.0.len() < 10_000 {
            self.0.insert(field.to_string(), c);
        }
        c
    }
}

/// Whether a header, key or sheet name may be shown as a field name. A file without a
/// header row has data where the header would be, and JSON objects may be keyed by a phone
/// number or a customer's name: such a "name" is data and is never printed. Short names
/// the detectors know as headers pass; otherwise no run of 6 digits, and nothing found in
/// it as free text or as a whole-cell name, at any confidence.
pub(crate) fn safe_name(s: &str) -> bool {
    use custodia_detect::find;
    if s.chars().count() > 64 {
        return false;
    }
    let folded = custodia_detect::fold_width(s);
    let mut run = 0;
    for b in folded.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 6 {
            return false;
        }
    }
    if find::column_hint(&folded).is_some() {
        return true;
    }
    if !find::find(&folded).is_empty() {
        return false;
    }
    // As a cell under a name header: a known surname and two more characters. Two-character
    // words are left alone: too many header words start with a surname (余额, 金额, 高度).
    if folded.chars().count() < 3 {
        return true;
    }
    let as_name = find::FieldContext::new("name");
    !find::find_in(&as_name, &folded)
        .iter()
        .any(|f| f.confidence >= 0.85)
}

/// A channel for scan events.
pub fn channel() -> (Sender, mpsc::Receiver<Event>) {
    mpsc::sync_channel(64)
}

/// Converts `/`-separated display paths for a file found under a root.
pub(crate) fn display_path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The paths given on the command line, split into databases (by URL scheme) and files.
pub fn split_targets(targets: &[String]) -> (Vec<String>, Vec<PathBuf>) {
    let mut dbs = vec![];
    let mut files = vec![];
    for t in targets {
        if db::is_database_url(t) {
            dbs.push(t.clone());
        } else {
            files.push(PathBuf::from(t));
        }
    }
    (dbs, files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_written_in_place_equal_the_masks() {
        use custodia_core::PiiType as T;
        let cases = [
            (T::CnMobile, "13812345678"),
            (T::CnMobile, "138 1234 5678"),
            (T::CnMobile, "１３８１２３４５６７８"),
            (T::BankCard, "6222021234567890"),
            (T::BankCard, "6212345678901234567"),
            (T::BankCard, "4111111111111"),
            (T::BankCard, "6222 0212 3456 7890"),
            (T::CnResidentId, "11010519491231002X"),
            (T::CnResidentId, "11010519491231002x"),
            (T::CnResidentId, "110105194912310021"),
            (T::Email, "li.na@example.com"),
            (T::PersonName, "欧阳娜娜"),
            (T::Ipv4, "10.1.2.3"),
        ];
        for (ty, raw) in cases {
            let (mut fast, mut slow) = (vec![], vec![]);
            super::push_masked(&mut fast, ty, raw);
            super::json_str(&mut slow, &super::masked(ty, raw));
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap(),
                "{ty:?}"
            );
        }
    }

    #[test]
    fn hand_written_json_lines_equal_serde() {
        let mut fs = vec![];
        for (i, c) in [0.4f32, 0.5, 0.6, 0.7, 0.75, 0.85, 0.9, 0.95, 1.0, 0.05, 0.0]
            .iter()
            .enumerate()
        {
            fs.push(super::Finding {
                path: format!("dir/\"odd\\name\t{i}\u{1}.csv").into(),
                line: i as u64 + 1,
                column: [0, 3, 9, 10, 99, 100, 12345][i % 7],
                start: if i == 9 { u64::MAX } else { 1234567890123 },
                end: 1234567890135,
                ty: custodia_core::PiiType::ALL[i],
                confidence: *c,
                masked: "张*\n\r\u{7f}\u{8}\u{c}".into(),
                field: (i % 2 == 0).then(|| "客户.\"mobile\"".into()),
            });
        }
        for f in &fs {
            let mut want = serde_json::to_vec(f).unwrap();
            want.push(b'\n');
            let mut path = vec![];
            super::json_str(&mut path, &f.path);
            let mut got = vec![];
            super::Line::of(f).write(&mut got, &path);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    /// The fast path of `masked` (value already canonical) gives what the long way does.
    #[test]
    fn masks_of_canonical_values_equal_masks_of_normalized_ones() {
        use custodia_core::PiiType as T;
        let cases: &[(T, &str)] = &[
            (T::PersonName, "张伟"),
            (T::PersonName, "欧阳娜娜"),
            (T::PersonName, "Zhang Wei"),
            (T::PersonName, "Zhang  Wei"),
            (T::PersonName, " 张伟"),
            (T::PersonName, "张\u{200B}伟"),
            (T::PersonName, "张伟2"),
            (T::PersonName, "Ｚhang"),
            (T::PersonName, "张"),
            (T::Address, "北京市朝阳区建国路88号"),
            (T::Address, "北京市 朝阳区"),
            (T::Address, "北京市\t朝阳区"),
            (T::Address, "北京市朝阳区８８号"),
            (T::Address, "京"),
            (T::Email, "zhang.wei@example.com"),
            (T::Email, "Zhang.Wei@Example.com"),
        ];
        for (i, &(ty, raw)) in cases.iter().enumerate() {
            let long = match custodia_detect::normalize(ty, raw) {
                Ok(c) => custodia_detect::mask(ty, &c),
                Err(_) => custodia_detect::mask::generic(raw),
            };
            // Masks only in the failure message, and the case's number, not its value.
            assert_eq!(super::masked(ty, raw), long, "{ty:?} case {i}");
        }
    }

    #[test]
    fn header_words_are_safe_names_and_values_are_not() {
        for h in [
            "姓名",
            "身份证号",
            "手机",
            "手机号码",
            "备注",
            "余额",
            "邮箱",
            "地址",
            "name",
            "phone",
            "customer.mobile",
            "idNo",
            "客户",
            "sheet1",
            "客户名单",
            "column_3",
            "amount_2024",
        ] {
            assert!(super::safe_name(h), "{h}");
        }
        for v in [
            "张晓伟",
            "欧阳娜娜",
            "13812345678",
            "user_13812345678",
            "11010519491231002X",
            "zhang.wei@example.com",
            "6222020200112233446",
        ] {
            assert!(!super::safe_name(v), "a value passed as a name");
        }
    }
}
