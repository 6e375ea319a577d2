//! Files: walking, format detection, and the streaming text scanner.

use crate::structured;
use crate::{display_path, Event, Options, ScanError, Sender};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Text,
    Csv(u8),
    Json,
    Jsonl,
    Xlsx,
    Parquet,
}

/// Text blocks are scanned this many bytes at a time (cut at a line end).
const BLOCK: usize = 1 << 20;

/// Bytes of the previous block that a block is scanned with (context words on the line
/// before a value count, and the block cut falls between such lines too): more than the
/// detectors look back (32 bytes for context words).
const LOOK_BEHIND: usize = 64;

/// The kind of a file from its name; `.gz` is looked through. `None`: not a listed format
/// (it may still be scanned as text if it looks like text).
pub fn kind_of(name: &str) -> (Option<FileKind>, bool) {
    let lower = name.to_ascii_lowercase();
    let (stem, gz) = match lower.strip_suffix(".gz") {
        Some(s) => (s.to_string(), true),
        None => (lower, false),
    };
    let ext = stem.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let kind = match ext {
        "txt" | "log" | "md" | "text" | "markdown" => Some(FileKind::Text),
        "csv" => Some(FileKind::Csv(b',')),
        "tsv" | "tab" => Some(FileKind::Csv(b'\t')),
        "json" => Some(FileKind::Json),
        "jsonl" | "ndjson" => Some(FileKind::Jsonl),
        "xlsx" | "xlsm" => Some(FileKind::Xlsx),
        "parquet" => Some(FileKind::Parquet),
        _ => None,
    };
    (kind, gz)
}

/// Every file under `paths` (files named directly are taken whatever their name), minus
/// the excludes. `.gitignore` files are NOT honoured: leaked exports are exactly what
/// people tell git to ignore.
fn walk(paths: &[PathBuf], opts: &Options, tx: &Sender) -> Result<Vec<(PathBuf, bool)>, ScanError> {
    let mut out = vec![];
    for root in paths {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Event::Skipped {
                    path: display_path(root),
                    reason: io_reason(&e),
                });
                continue;
            }
        };
        if meta.is_file() {
            out.push((root.clone(), true));
            continue;
        }
        if !meta.is_dir() {
            let _ = tx.send(Event::Skipped {
                path: display_path(root),
                reason: "not a regular file or directory".into(),
            });
            continue;
        }
        let mut ov = ignore::overrides::OverrideBuilder::new(root);
        for ex in &opts.excludes {
            ov.add(&format!("!{ex}"))
                .map_err(|e| ScanError(format!("--exclude {ex:?}: {e}")))?;
        }
        let ov = ov
            .build()
            .map_err(|e| ScanError(format!("--exclude: {e}")))?;
        let walker = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .overrides(ov)
            .follow_links(false)
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                    out.push((e.into_path(), false))
                }
                Ok(_) => {}
                Err(e) => {
                    let path = match &e {
                        ignore::Error::WithPath { path, .. } => display_path(path),
                        _ => display_path(root),
                    };
                    let _ = tx.send(Event::Skipped {
                        path,
                        reason: "cannot be read (walking the directory)".into(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "not found".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::InvalidData => {
            "not readable as its format (corrupt or not that format)".into()
        }
        io::ErrorKind::FileTooLarge => "more than 4 GiB once inflated: not inflated".into(),
        _ => format!("cannot be read ({})", e.kind()),
    }
}

/// Scans files and directories, in parallel; events go to `tx`.
pub fn scan_files(paths: &[PathBuf], opts: &Options, tx: &Sender) -> Result<(), ScanError> {
    let files = walk(paths, opts, tx)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| ScanError(e.to_string()))?;
    // When the output is gone (`custodia scan … | head`), stop instead of scanning on.
    let _ = pool.install(|| {
        files
            .par_iter()
            .with_max_len(1)
            .try_for_each_with(tx.clone(), |tx, (path, named)| {
                let shown = display_path(path);
                // A bug in a parser or a detector costs this file, not the scan.
                let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    scan_file(path, &shown, *named, opts, tx)
                }));
                let event = match scanned {
                    Ok(Ok(Some(bytes))) => Event::Done { path: shown, bytes },
                    Ok(Ok(None)) if *named => Event::Skipped {
                        path: shown,
                        reason: "not a text file of a listed format".into(),
                    },
                    Ok(Ok(None)) => return Ok(()),
                    Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => return Err(()),
                    Ok(Err(e)) => Event::Skipped {
                        path: shown,
                        reason: io_reason(&e),
                    },
                    Err(_) => Event::Skipped {
                        path: shown,
                        reason: "internal error: not scanned".into(),
                    },
                };
                tx.send(event).map_err(|_| ())
            })
    });
    Ok(())
}

/// `Ok(None)`: a binary file of no listed format, passed over.
fn scan_file(
    path: &Path,
    shown: &str,
    named: bool,
    opts: &Options,
    tx: &Sender,
) -> io::Result<Option<u64>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let (kind, gz) = kind_of(&name);
    let file = File::open(path)?;
    let mut reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let kind = match kind {
        Some(k) => k,
        None => {
            // Unlisted extension: scan it as text if its start looks like text.
            let head = reader.fill_buf()?;
            let text = looks_like_text(head) || (named && head.is_empty());
            if !text {
                return Ok(None);
            }
            FileKind::Text
        }
    };
    let shown: &Arc<str> = &Arc::from(shown);
    let gb18030 = matches!(kind, FileKind::Text | FileKind::Csv(_))
        && crate::encoding::sniff_gb18030(reader.fill_buf()?);
    let mut counted = Counting {
        inner: reader,
        n: 0,
    };
    match kind {
        FileKind::Text => scan_text(&mut counted, shown, opts, tx, gb18030)?,
        FileKind::Csv(delim) => {
            structured::scan_csv(&mut counted, delim, shown, opts, tx, gb18030)?
        }
        FileKind::Json | FileKind::Jsonl => {
            structured::scan_json(&mut counted, kind == FileKind::Jsonl, shown, opts, tx)?
        }
        FileKind::Xlsx | FileKind::Parquet => {
            // Both need random access: a compressed one is inflated to a temporary file.
            let (file, size) = if gz {
                let mut tmp = tempfile::tempfile()?;
                // A gzip bomb must not fill the disk: spreadsheets and parquet files beyond
                // this are not inflated.
                const MAX_INFLATED: u64 = 4 << 30;
                let n = io::copy(&mut (&mut counted).take(MAX_INFLATED + 1), &mut tmp)?;
                if n > MAX_INFLATED {
                    return Err(io::Error::new(
                        io::ErrorKind::FileTooLarge,
                        "more than 4 GiB once inflated",
                    ));
                }
                (tmp, n)
            } else {
                let n = std::fs::metadata(path)?.len();
                (File::open(path)?, n)
            };
            if kind == FileKind::Xlsx {
                structured::scan_xlsx(file, shown, opts, tx)?;
            } else {
                structured::scan_parquet(file, shown, opts, tx)?;
            }
            return Ok(Some(size));
        }
    }
    Ok(Some(counted.n))
}

/// No NUL byte and mostly printable in the first block: text.
fn looks_like_text(head: &[u8]) -> bool {
    let head = &head[..head.len().min(8192)];
    if head.is_empty() || memchr::memchr(0, head).is_some() {
        return false;
    }
    let ctrl = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
        .count();
    ctrl * 100 < head.len()
}

/// A reader that counts the bytes it has given.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.n += amt as u64;
        self.inner.consume(amt)
    }
}

/// Where a finding is: line and column of a byte position, tracked forward through a text.
pub(crate) struct LineCursor {
    /// Position (relative to the current block) up to which newlines are counted.
    pos: usize,
    line: u64,
    line_start: usize,
    /// Characters of the current line before `pos` (counted once, not again per finding).
    chars: usize,
    /// The block is raw GB18030: count its characters, not UTF-8 lead bytes.
    gb18030: bool,
}

impl LineCursor {
    pub fn new(line: u64) -> Self {
        LineCursor {
            pos: 0,
            line,
            line_start: 0,
            chars: 0,
            gb18030: false,
        }
    }

    /// Counting from `pos`, the start of line `line`.
    pub fn starting_at(line: u64, pos: usize) -> Self {
        LineCursor {
            pos,
            line_start: pos,
            ..LineCursor::new(line)
        }
    }

    pub fn for_gb18030(line: u64, gb18030: bool) -> Self {
        LineCursor {
            gb18030,
            ..LineCursor::new(line)
        }
    }

    /// Line and 1-based character column of `at` in `block` (`at` never goes backwards).
    pub fn locate(&mut self, block: &[u8], at: usize) -> (u64, u64) {
        let mut from = self.pos;
        if let Some(nl) = memchr::memrchr(b'\n', &block[self.pos..at]) {
            self.line += memchr::memchr_iter(b'\n', &block[self.pos..at]).count() as u64;
            self.line_start = self.pos + nl + 1;
            self.chars = 0;
            from = self.line_start;
        }
        let seg = &block[from..at];
        self.chars += if self.gb18030 {
            crate::encoding::count_chars(seg)
        } else {
            seg.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
        };
        self.pos = at;
        (self.line, self.chars as u64 + 1)
    }
}

/// Calls `f(text, offset)` for every valid UTF-8 stretch of `bytes` (invalid bytes —
/// another encoding, binary noise — are passed over; ASCII digits around them still scan).
pub(crate) fn valid_pieces(bytes: &[u8], mut f: impl FnMut(&str, usize)) {
    // The common case in one (vectorized) check.
    if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
        if !text.is_empty() {
            f(text, 0);
        }
        return;
    }
    let mut off = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if !valid.is_empty() {
            f(valid, off);
        }
        off += valid.len() + chunk.invalid().len();
    }
}

/// Free text, a block at a time; several blocks of one file are scanned in parallel (a
/// single large file would otherwise keep one core busy), and their findings are sent in
/// file order.
fn scan_text(
    r: &mut impl BufRead,
    shown: &Arc<str>,
    opts: &Options,
    tx: &Sender,
    gb18030: bool,
) -> io::Result<()> {
    // Every block buffer holds the look-behind, a block and the read that passes it: no
    // buffer ever grows (a grown one is fresh memory, page faults and all).
    const CAPACITY: usize = LOOK_BEHIND + BLOCK + (1 << 16);
    let mut buf: Vec<u8> = Vec::with_capacity(CAPACITY);
    let mut base: u64 = 0;
    let mut line: u64 = 1;
    let mut eof = false;
    let parallel = rayon::current_num_threads().max(1) * 2;
    let mut batch = crate::Out::sending(tx, opts);
    let mut spare: Vec<Vec<u8>> = Vec::new();
    // `buf` starts with the end of the block before (`behind` bytes), then new text.
    let mut behind = 0;
    while !eof || buf.len() > behind {
        // Up to `parallel` blocks, each cut at a line end, with how much of the previous
        // block it starts with and where its own text starts in the file.
        let mut blocks: Vec<(Vec<u8>, usize, u64, u64)> = Vec::with_capacity(parallel);
        while blocks.len() < parallel && (!eof || buf.len() > behind) {
            while !eof && buf.len() < behind + BLOCK {
                let chunk = r.fill_buf()?;
                if chunk.is_empty() {
                    eof = true;
                    break;
                }
                let n = chunk.len().min(CAPACITY - buf.len());
                buf.extend_from_slice(&chunk[..n]);
                r.consume(n);
            }
            if buf.len() == behind {
                break; // the file ended exactly at the last cut
            }
            let end = if eof {
                buf.len()
            } else {
                behind + cut_point(&buf[behind..])
            };
            // The block keeps the buffer's allocation; only its last bytes and the rest
            // (part of a line) move.
            let mut next_behind = end.saturating_sub(LOOK_BEHIND);
            while next_behind < end && (buf[next_behind] & 0xC0) == 0x80 {
                next_behind += 1;
            }
            let mut rest = spare.pop().unwrap_or_else(|| Vec::with_capacity(CAPACITY));
            rest.extend_from_slice(&buf[next_behind..]);
            buf.truncate(end);
            let block = std::mem::replace(&mut buf, rest);
            let lines = memchr::memchr_iter(b'\n', &block[behind..]).count() as u64;
            blocks.push((block, behind, base, line));
            base += (end - behind) as u64;
            line += lines;
            behind = end - next_behind;
        }
        let found: Vec<crate::Out> = blocks
            .par_iter()
            .map(|(block, behind, base, line)| {
                let own = &block[*behind..];
                if gb18030 {
                    gb18030_block(own, *base, *line, shown, opts)
                } else if let Ok(text) = simdutf8::basic::from_utf8(block) {
                    text_block(block, Some(text), *behind, *base, *line, shown, opts)
                } else if let Ok(text) = simdutf8::basic::from_utf8(own) {
                    text_block(own, Some(text), 0, *base, *line, shown, opts)
                } else {
                    mixed_block(own, *base, *line, shown, opts)
                }
            })
            .collect();
        for out in found {
            batch.append(out);
        }
        // Scanned blocks' buffers take the next blocks (fresh ones would cost page faults).
        for (mut block, _, _, _) in blocks {
            block.clear();
            spare.push(block);
        }
        if batch.gone() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "output closed"));
        }
    }
    Ok(())
}

/// Whether lines of a file that began as UTF-8 (or plain ASCII, in its first 64 KB) are
/// GB18030 — a log that an old Windows tool appends to, files concatenated from two
/// sources. GBK Chinese is mostly invalid as UTF-8, so the lines need a tenth of their
/// non-ASCII bytes invalid as UTF-8 as well as decoding as GB18030 with Chinese in it: a
/// UTF-8 line with a few stray bytes stays UTF-8 (its pieces around them are scanned).
fn turned_gb18030(lines: &[u8]) -> bool {
    let invalid: usize = lines.utf8_chunks().map(|c| c.invalid().len()).sum();
    let high = lines.iter().filter(|&&b| b >= 0x80).count();
    invalid > 0 && invalid * 10 >= high && crate::encoding::sniff_gb18030(lines)
}

/// A block that is not all UTF-8: runs of UTF-8 lines are scanned as such, runs of
/// other lines as GB18030 when they are that ([`turned_gb18030`]), else as UTF-8 pieces.
fn mixed_block(
    block: &[u8],
    base: u64,
    line: u64,
    shown: &Arc<str>,
    opts: &Options,
) -> crate::Out<'static> {
    let mut out = crate::Out::new(opts);
    let mut run_start = 0;
    let mut run_line = line;
    let mut run_utf8 = None;
    let mut at = 0;
    let mut lines_in_run = 0;
    let mut flush = |from: usize, to: usize, first_line: u64, utf8: bool| {
        let piece = &block[from..to];
        let found = if !utf8 && turned_gb18030(piece) {
            gb18030_block(piece, base + from as u64, first_line, shown, opts)
        } else {
            text_block(piece, None, 0, base + from as u64, first_line, shown, opts)
        };
        out.append(found);
    };
    while at < block.len() {
        let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |e| at + e + 1);
        let utf8 = simdutf8::basic::from_utf8(&block[at..end]).is_ok();
        if run_utf8.is_some_and(|u| u != utf8) {
            flush(run_start, at, run_line, run_utf8 == Some(true));
            run_start = at;
            run_line += lines_in_run;
            lines_in_run = 0;
        }
        run_utf8 = Some(utf8);
        lines_in_run += 1;
        at = end;
    }
    if run_start < block.len() {
        flush(run_start, block.len(), run_line, run_utf8 != Some(false));
    }
    out
}

/// The findings of one block of UTF-8 text whose own part starts at byte `base`, line
/// `line` of the file, after `behind` bytes of the block before it (scanned for context
/// only: findings that start there were the previous block's). `text` is the block as a
/// string when the caller already checked that it is all UTF-8 (not checked twice).
fn text_block(
    block: &[u8],
    text: Option<&str>,
    behind: usize,
    base: u64,
    line: u64,
    shown: &Arc<str>,
    opts: &Options,
) -> crate::Out<'static> {
    let mut cursor = LineCursor::starting_at(line, behind);
    let mut out = crate::Out::new(opts);
    crate::with_found(|found| {
        let mut piece = |text: &str, off: usize| {
            custodia_detect::find::find_into(text, found);
            for d in found.iter() {
                let at = off + d.start;
                if d.confidence < opts.min_confidence || at < behind {
                    continue;
                }
                let (line, column) = cursor.locate(block, at);
                let span = (
                    base + (at - behind) as u64,
                    base + (off + d.end - behind) as u64,
                );
                out.add(shown, (line, column), span, d, text, None);
            }
        };
        match text {
            Some(text) if !text.is_empty() => piece(text, 0),
            Some(_) => {}
            None => valid_pieces(block, piece),
        }
    });
    out
}

/// [`text_block`] for GB18030 text: decoded for the detectors, offsets mapped back.
fn gb18030_block(
    raw: &[u8],
    base: u64,
    line: u64,
    shown: &Arc<str>,
    opts: &Options,
) -> crate::Out<'static> {
    let d = crate::encoding::decode(raw);
    let mut cursor = LineCursor::new(line);
    let block = d.text.as_bytes();
    let mut out = crate::Out::new(opts);
    for f in custodia_detect::find::find(&d.text) {
        if f.confidence < opts.min_confidence {
            continue;
        }
        let at = cursor.locate(block, f.start);
        let span = (
            base + u64::from(d.map[f.start]),
            base + u64::from(d.map[f.end]),
        );
        out.add(shown, at, span, &f, &d.text, None);
    }
    out
}

/// Where to cut a block: after its last newline; in a line longer than a block, after the
/// last space or punctuation, so that a value is not split (unless there is none).
fn cut_point(buf: &[u8]) -> usize {
    if let Some(i) = memchr::memrchr(b'\n', buf) {
        return i + 1;
    }
    if let Some(i) = buf
        .iter()
        .rposition(|&b| b == b' ' || b == b'\t' || b == b',' || b == b';')
    {
        return i + 1;
    }
    // Not inside a UTF-8 sequence (at most 3 continuation bytes back: anything else is not
    // UTF-8, and is cut where it is).
    let mut i = buf.len();
    let mut back = 0;
    while i > 0 && back < 3 && (buf[i - 1] & 0xC0) == 0x80 {
        i -= 1;
        back += 1;
    }
    if i > 0 && buf[i - 1] >= 0xC0 {
        i -= 1;
    }
    if i == 0 {
        buf.len()
    } else {
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names() {
        assert_eq!(kind_of("a.CSV"), (Some(FileKind::Csv(b',')), false));
        assert_eq!(kind_of("a.tsv.gz"), (Some(FileKind::Csv(b'\t')), true));
        assert_eq!(kind_of("x.jsonl"), (Some(FileKind::Jsonl), false));
        assert_eq!(kind_of("x.log.gz"), (Some(FileKind::Text), true));
        assert_eq!(kind_of("x.parquet"), (Some(FileKind::Parquet), false));
        assert_eq!(kind_of("x.bin"), (None, false));
    }

    #[test]
    fn line_cursor_counts_lines_and_chars() {
        let block = "ab\n客户x\nzz".as_bytes();
        let mut c = LineCursor::new(1);
        assert_eq!(c.locate(block, 1), (1, 2));
        let x = "ab\n客户".len();
        assert_eq!(c.locate(block, x), (2, 3));
        assert_eq!(c.locate(block, block.len()), (3, 3));
    }

    #[test]
    fn cut_points_keep_values_whole() {
        assert_eq!(cut_point(b"abc\ndef"), 4);
        assert_eq!(cut_point(b"abc def"), 4);
        let s = "客户".as_bytes();
        assert_eq!(cut_point(&s[..4]), 3);
        // Bytes that are not UTF-8 at all: cut where the buffer ends, in one step.
        assert!(cut_point(&[0x80; 100]) >= 97);
    }

    #[test]
    fn text_sniffing() {
        assert!(looks_like_text(b"hello\nworld"));
        assert!(!looks_like_text(b"\x7fELF\x00\x01"));
        assert!(!looks_like_text(b""));
    }
}
