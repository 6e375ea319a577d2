//! Structured files: CSV/TSV (a record at a time), JSON and JSONL (a line at a time, keys
//! tracked across lines), `.xlsx` (a cell at a time) and `.parquet` (a row at a time).
//! Findings name the column header or key path in `field`.

use crate::files::{valid_pieces, LineCursor};
use crate::{Event, Fields, Options, Out, Sender};
use custodia_detect::find::FieldContext;
use std::fs::File;
use std::io::{self, BufRead};
use std::rc::Rc;
use std::sync::Arc;

/// CSV columns classified per file.
const MAX_COLUMNS: usize = 4096;

/// A record or line longer than this is scanned as it is, not grown further.
const MAX_RECORD: usize = 16 << 20;

/// Reads up to and including the next newline, at most `limit` bytes; 0 at the end.
fn read_line_limited(r: &mut impl BufRead, out: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
    let mut n = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        let room = limit.saturating_sub(out.len()).max(1);
        let (take, done) = match memchr::memchr(b'\n', &buf[..buf.len().min(room)]) {
            Some(i) => (i + 1, true),
            None => {
                let t = buf.len().min(room);
                (t, out.len() + t >= limit)
            }
        };
        out.extend_from_slice(&buf[..take]);
        r.consume(take);
        n += take;
        if done {
            return Ok(n);
        }
    }
}

/// A value as found in the file, and how to map offsets in its decoded form back to raw
/// bytes (escapes make the two differ).
struct Value<'a> {
    decoded: std::borrow::Cow<'a, [u8]>,
    /// decoded byte index → raw byte index (relative to the value's raw start); `None`
    /// when decoded == raw.
    map: Option<Vec<usize>>,
}

impl Value<'_> {
    fn raw(&self, i: usize) -> usize {
        match &self.map {
            Some(m) => m[i],
            None => i,
        }
    }
}

/// Runs the field detectors over a value at `raw_start` in `block` and sends its findings.
/// `name` makes the field's name, once, if there is a finding.
#[allow(clippy::too_many_arguments)]
fn emit(
    name: &mut dyn FnMut() -> Arc<str>,
    ctx: &FieldContext,
    value: &Value<'_>,
    known_text: Option<&str>,
    raw_start: usize,
    block: &[u8],
    base: u64,
    cursor: &mut LineCursor,
    shown: &Arc<str>,
    opts: &Options,
    out: &mut Out<'_>,
) -> Vec<custodia_core::PiiType> {
    let mut types = vec![];
    let mut field: Option<Arc<str>> = None;
    crate::with_found(|found| {
        let mut each = |text: &str, off: usize| {
            custodia_detect::find::find_in_into(ctx, text, found);
            for d in found.iter() {
                if d.confidence < opts.min_confidence {
                    continue;
                }
                types.push(d.ty);
                let at = raw_start + value.raw(off + d.start);
                let end = raw_start + value.raw(off + d.end);
                let (line, column) = cursor.locate(block, at);
                let field = field.get_or_insert_with(&mut *name);
                let span = (base + at as u64, base + end as u64);
                out.add(shown, (line, column), span, d, text, Some(field));
            }
        };
        match known_text {
            Some(text) => each(text, 0),
            None => valid_pieces(&value.decoded, each),
        }
    });
    types
}

/// The last component of a dotted key path: what the detectors take as context.
fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

// ---------------------------------------------------------------- CSV / TSV

/// One field of a CSV record: its content's byte range in the record (inside the quotes
/// for a quoted field), and whether it was quoted.
struct CsvField {
    start: usize,
    end: usize,
    quoted: bool,
    /// Bytes between a closing quote and the delimiter (`"张伟"13812345678,`): not CSV,
    /// but data all the same, scanned as a value of the same column.
    tail: (usize, usize),
}

/// Splits one record (RFC 4180: quotes, doubled quotes, newlines inside quotes).
fn split_record(rec: &[u8], delim: u8) -> Vec<CsvField> {
    let mut end_of_rec = rec.len();
    while end_of_rec > 0 && matches!(rec[end_of_rec - 1], b'\n' | b'\r') {
        end_of_rec -= 1;
    }
    let mut fields = vec![];
    let mut i = 0;
    loop {
        if i < end_of_rec && rec[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < end_of_rec {
                if rec[j] == b'"' {
                    if j + 1 < end_of_rec && rec[j + 1] == b'"' {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            let next = memchr::memchr(delim, &rec[j.min(end_of_rec)..end_of_rec]).map(|k| j + k);
            let after_quote = (j + 1).min(end_of_rec);
            fields.push(CsvField {
                start,
                end: j.min(end_of_rec),
                quoted: true,
                tail: (after_quote, next.unwrap_or(end_of_rec).max(after_quote)),
            });
            // Go on after the delimiter that follows the closing quote.
            i = match next {
                Some(d) => d + 1,
                None => break,
            };
        } else {
            let end = memchr::memchr(delim, &rec[i.min(end_of_rec)..end_of_rec])
                .map_or(end_of_rec, |k| i + k);
            fields.push(CsvField {
                start: i,
                end,
                quoted: false,
                tail: (end, end),
            });
            if end >= end_of_rec {
                break;
            }
            i = end + 1;
        }
    }
    fields
}

fn csv_value<'a>(rec: &'a [u8], f: &CsvField) -> Value<'a> {
    let raw = &rec[f.start..f.end];
    if !f.quoted || memchr::memmem::find(raw, b"\"\"").is_none() {
        return Value {
            decoded: raw.into(),
            map: None,
        };
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut map = Vec::with_capacity(raw.len() + 1);
    let mut i = 0;
    while i < raw.len() {
        map.push(i);
        decoded.push(raw[i]);
        i += if raw[i] == b'"' && raw.get(i + 1) == Some(&b'"') {
            2
        } else {
            1
        };
    }
    map.push(raw.len());
    Value {
        decoded: decoded.into(),
        map: Some(map),
    }
}

/// A CSV cell for the detectors: as is, or decoded from GB18030 with offsets mapped back
/// through both maps.
fn csv_cell<'a>(rec: &'a [u8], f: &CsvField, gb18030: bool) -> Value<'a> {
    let v = csv_value(rec, f);
    if !gb18030 {
        return v;
    }
    let d = crate::encoding::decode(&v.decoded);
    let map = d.map.iter().map(|&i| v.raw(i as usize)).collect();
    Value {
        decoded: d.text.into_bytes().into(),
        map: Some(map),
    }
}

/// [`emit`] for a CSV field: its value, then any bytes after its closing quote. `at` is
/// the record, its offset in the file and the record's line cursor.
#[allow(clippy::too_many_arguments)]
fn emit_field(
    name: &mut dyn FnMut() -> Arc<str>,
    ctx: &FieldContext,
    value: &Value<'_>,
    f: &CsvField,
    gb18030: bool,
    (rec, rec_text, base, cursor): (&[u8], Option<&str>, u64, &mut LineCursor),
    shown: &Arc<str>,
    opts: &Options,
    out: &mut Out<'_>,
) -> Vec<custodia_core::PiiType> {
    // A value that is its bytes in the record, in a record already checked as UTF-8: a
    // slice of that string (no second check per cell).
    let known = match (&value.map, &value.decoded) {
        (None, std::borrow::Cow::Borrowed(_)) if !gb18030 => {
            rec_text.and_then(|t| t.get(f.start..f.end))
        }
        _ => None,
    };
    let mut types = emit(
        name, ctx, value, known, f.start, rec, base, cursor, shown, opts, out,
    );
    if let Some((tail, at)) = tail_value(rec, f, gb18030) {
        types.extend(emit(
            name, ctx, &tail, None, at, rec, base, cursor, shown, opts, out,
        ));
    }
    types
}

/// The bytes after a field's closing quote, if any, as a value and where it starts.
fn tail_value<'a>(rec: &'a [u8], f: &CsvField, gb18030: bool) -> Option<(Value<'a>, usize)> {
    let (start, end) = f.tail;
    let tail = CsvField {
        start,
        end,
        quoted: false,
        tail: (end, end),
    };
    (start < end).then(|| (csv_cell(rec, &tail, gb18030), start))
}

/// Reads one CSV record (several lines when a quoted field holds newlines).
fn read_record(r: &mut impl BufRead, rec: &mut Vec<u8>) -> io::Result<usize> {
    let mut n = 0;
    let mut quotes = 0usize;
    loop {
        let before = rec.len();
        let got = read_line_limited(r, rec, MAX_RECORD)?;
        n += got;
        // Only the new line's quotes: a stray quote must not make this quadratic.
        quotes += memchr::memchr_iter(b'"', &rec[before..]).count();
        if got == 0 || rec.len() >= MAX_RECORD || quotes.is_multiple_of(2) {
            return Ok(n);
        }
    }
}

pub(crate) fn scan_csv(
    r: &mut impl BufRead,
    delim: u8,
    shown: &Arc<str>,
    opts: &Options,
    tx: &Sender,
    gb18030: bool,
) -> io::Result<()> {
    let mut rec = Vec::with_capacity(4096);
    let mut header: Option<Vec<String>> = None;
    let mut base: u64 = 0;
    let mut line: u64 = 1;
    // Column classification from the first `sample` records.
    let mut tallies: Vec<crate::ColumnTally> = vec![];
    let mut sampled = 0u64;
    let mut out = Out::sending(tx, opts);
    let mut contexts: Vec<FieldContext> = vec![];
    let mut shared_names: Vec<Arc<str>> = vec![];
    let mut fields_ctx = Fields::default();
    loop {
        rec.clear();
        if read_record(r, &mut rec)? == 0 {
            out.flush();
            if let Some(names) = &header {
                for (name, t) in names.iter().zip(&tallies) {
                    let _ = tx.send(Event::Column(t.report(shown, name)));
                }
            }
            return Ok(());
        }
        let fields = split_record(&rec, delim);
        let rec_text = if gb18030 {
            None
        } else {
            simdutf8::basic::from_utf8(&rec).ok()
        };
        match &header {
            None => {
                let mut names: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        let v = csv_cell(&rec, f, gb18030);
                        String::from_utf8_lossy(&v.decoded)
                            .trim()
                            .trim_start_matches('\u{feff}')
                            .to_string()
                    })
                    .collect();
                for (i, n) in names.iter_mut().enumerate() {
                    if n.is_empty() {
                        *n = format!("column_{}", i + 1);
                    }
                }
                // A header row is scanned too: a file without one has data here.
                let mut cursor = LineCursor::for_gb18030(line, gb18030);
                for (i, f) in fields.iter().enumerate() {
                    let v = csv_cell(&rec, f, gb18030);
                    let name = format!("column_{}", i + 1);
                    let ctx = fields_ctx.get(&name);
                    let mut name = || Arc::from(name.as_str());
                    let at = (&rec[..], rec_text, base, &mut cursor);
                    emit_field(&mut name, &ctx, &v, f, gb18030, at, shown, opts, &mut out);
                }
                // A "header" holding personal data is a first data row (a file without a
                // header): never use a value as a field name.
                if names.iter().any(|n| !crate::safe_name(n)) {
                    for (i, n) in names.iter_mut().enumerate() {
                        *n = format!("column_{}", i + 1);
                    }
                }
                contexts = names.iter().map(|n| FieldContext::new(n)).collect();
                shared_names = names.iter().map(|n| Arc::from(n.as_str())).collect();
                header = Some(names);
            }
            Some(names) => {
                let mut cursor = LineCursor::for_gb18030(line, gb18030);
                let sampling = sampled < opts.sample;
                if sampling {
                    sampled += 1;
                    // Columns classified: at most MAX_COLUMNS (more are scanned, not tallied).
                    tallies.resize(names.len().min(MAX_COLUMNS), crate::ColumnTally::default());
                }
                for (i, f) in fields.iter().enumerate() {
                    let v = csv_cell(&rec, f, gb18030);
                    let (name, ctx): (Arc<str>, FieldContext) =
                        match (shared_names.get(i), contexts.get(i)) {
                            (Some(n), Some(c)) => (n.clone(), *c),
                            _ => {
                                let extra = format!("column_{}", i + 1);
                                let c = fields_ctx.get(&extra);
                                (Arc::from(extra), c)
                            }
                        };
                    let at = (&rec[..], rec_text, base, &mut cursor);
                    let types = emit_field(
                        &mut || name.clone(),
                        &ctx,
                        &v,
                        f,
                        gb18030,
                        at,
                        shown,
                        opts,
                        &mut out,
                    );
                    if let Some(t) = tallies.get_mut(i).filter(|_| sampling) {
                        t.observe(std::str::from_utf8(&v.decoded).ok(), &types);
                    }
                }
                if sampling {
                    // Columns missing from a short record count as empty.
                    for t in tallies.iter_mut().skip(fields.len()) {
                        t.observe(None, &[]);
                    }
                }
            }
        }
        line += memchr::memchr_iter(b'\n', &rec).count() as u64;
        base += rec.len() as u64;
    }
}

// ---------------------------------------------------------------- JSON / JSONL

/// Tokenizer state carried across lines (a pretty-printed `.json` spans many; strings
/// never do in valid JSON).
#[derive(Default)]
struct JsonState {
    /// Open containers: object (with its current key) or array.
    stack: Vec<(bool, Option<Rc<Key>>)>,
    /// Containers opened beyond [`MAX_DEPTH`] (counted, not kept).
    deeper: usize,
    expect_key: bool,
    keys: Keys,
}

/// An object key as the scan uses it: the name it may be shown as and the detectors'
/// context for the values under it.
struct Key {
    /// The key, or `*` when it is data (see [`crate::safe_name`]).
    shown: String,
    ctx: custodia_detect::find::FieldContext,
}

impl Key {
    fn new(shown: String) -> Rc<Key> {
        let ctx = custodia_detect::find::FieldContext::new(&shown);
        Rc::new(Key { shown, ctx })
    }
}

/// Keys worked out once per distinct key (keys repeat on every line), looked up by their
/// decoded bytes; plus the key that values outside any object stand under.
struct Keys {
    known: std::collections::HashMap<Box<[u8]>, Rc<Key>, foldhash::fast::RandomState>,
    value: Rc<Key>,
}

impl Default for Keys {
    fn default() -> Self {
        Keys {
            known: Default::default(),
            value: Key::new("value".into()),
        }
    }
}

impl Keys {
    fn get(&mut self, raw: &[u8]) -> Rc<Key> {
        if let Some(k) = self.known.get(raw) {
            return k.clone();
        }
        let name = String::from_utf8_lossy(raw).into_owned();
        // Objects keyed by a phone number or a customer's name: the key is data, not a
        // name, and must not be printed as one.
        let key = Key::new(if crate::safe_name(&name) {
            name
        } else {
            "*".into()
        });
        if self.known.len() < 10_000 {
            self.known.insert(raw.into(), key.clone());
        }
        key
    }
}

/// Nesting kept for key paths; deeper values are reported under the path at this depth.
const MAX_DEPTH: usize = 64;

impl JsonState {
    fn open(&mut self, object: bool) {
        if self.stack.len() < MAX_DEPTH {
            self.stack.push((object, None));
        } else {
            self.deeper += 1;
        }
        self.expect_key = object;
    }

    fn close(&mut self) {
        if self.deeper > 0 {
            self.deeper -= 1;
        } else {
            self.stack.pop();
        }
        self.expect_key = false;
    }
}

impl JsonState {
    /// The innermost key: what the detectors take as context.
    fn leaf(&self) -> &Key {
        self.stack
            .iter()
            .rev()
            .find_map(|(_, k)| k.as_deref())
            .unwrap_or(&self.keys.value)
    }

    fn path(&self) -> String {
        let mut p = String::new();
        for (_, k) in &self.stack {
            if let Some(k) = k {
                if !p.is_empty() {
                    p.push('.');
                }
                p.push_str(&k.shown);
            }
        }
        if p.is_empty() {
            p.push_str("value");
        }
        p
    }
}

/// Decodes a JSON string body (between the quotes) with its offset map.
fn json_string(raw: &[u8]) -> Value<'_> {
    if memchr::memchr(b'\\', raw).is_none() {
        return Value {
            decoded: raw.into(),
            map: None,
        };
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut map = Vec::with_capacity(raw.len() + 1);
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 >= raw.len() {
            map.push(i);
            decoded.push(raw[i]);
            i += 1;
            continue;
        }
        let esc = raw[i + 1];
        let simple = match esc {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            map.push(i);
            decoded.push(c);
            i += 2;
            continue;
        }
        if esc == b'u' && i + 6 <= raw.len() {
            let hex = std::str::from_utf8(&raw[i + 2..i + 6]).ok();
            let mut cp = hex.and_then(|h| u32::from_str_radix(h, 16).ok());
            let mut len = 6;
            if let Some(hi @ 0xD800..=0xDBFF) = cp {
                let lo = (i + 12 <= raw.len() && raw[i + 6] == b'\\' && raw[i + 7] == b'u')
                    .then(|| std::str::from_utf8(&raw[i + 8..i + 12]).ok())
                    .flatten()
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                cp = lo
                    .filter(|lo| (0xDC00..=0xDFFF).contains(lo))
                    .map(|lo| 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                len = 12;
            }
            if let Some(ch) = cp.and_then(char::from_u32) {
                let mut b = [0u8; 4];
                for &byte in ch.encode_utf8(&mut b).as_bytes() {
                    map.push(i);
                    decoded.push(byte);
                }
                i += len;
                continue;
            }
        }
        map.push(i);
        decoded.push(raw[i]);
        i += 1;
    }
    map.push(raw.len());
    Value {
        decoded: decoded.into(),
        map: Some(map),
    }
}

pub(crate) fn scan_json(
    r: &mut impl BufRead,
    lines: bool,
    shown: &Arc<str>,
    opts: &Options,
    tx: &Sender,
) -> io::Result<()> {
    let mut line_buf = Vec::with_capacity(4096);
    let mut st = JsonState::default();
    let mut base: u64 = 0;
    let mut line: u64 = 1;
    let mut out = Out::sending(tx, opts);
    loop {
        line_buf.clear();
        if read_line_limited(r, &mut line_buf, MAX_RECORD)? == 0 {
            return Ok(());
        }
        if lines {
            // JSON lines: each line is a document; a truncated one must not nest the next.
            st.stack.clear();
            st.deeper = 0;
            st.expect_key = false;
        }
        let mut cursor = LineCursor::new(line);
        // Checked once per line: a value without escapes is then a slice of it.
        let line_text = simdutf8::basic::from_utf8(&line_buf).ok();
        json_line(&line_buf, &mut st, |st, v, raw_start| {
            let known_text = match (&v.decoded, line_text) {
                (std::borrow::Cow::Borrowed(b), Some(l)) => l.get(raw_start..raw_start + b.len()),
                _ => None,
            };
            emit(
                &mut || Arc::from(st.path()),
                &st.leaf().ctx,
                &v,
                known_text,
                raw_start,
                &line_buf,
                base,
                &mut cursor,
                shown,
                opts,
                &mut out,
            );
        });
        // A line read holds one newline, at its end (or none: the file's last line, or
        // the first part of one longer than MAX_RECORD).
        line += u64::from(line_buf.last() == Some(&b'\n'));
        base += line_buf.len() as u64;
    }
}

/// Tokenizes one line, calling `value(key path, value, raw start)` for every string and
/// number value.
fn json_line(b: &[u8], st: &mut JsonState, mut value: impl FnMut(&JsonState, Value<'_>, usize)) {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                st.open(true);
                i += 1;
            }
            b'[' => {
                st.open(false);
                i += 1;
            }
            b'}' | b']' => {
                st.close();
                i += 1;
            }
            b',' => {
                st.expect_key = st.deeper == 0 && matches!(st.stack.last(), Some((true, _)));
                i += 1;
            }
            b':' => {
                st.expect_key = false;
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                // The closing quote: the next `"` not escaped by a `\\`.
                let mut j = start;
                while j < b.len() {
                    match memchr::memchr2(b'"', b'\\', &b[j..]) {
                        Some(k) if b[j + k] == b'\\' => j += k + 2,
                        Some(k) => {
                            j += k;
                            break;
                        }
                        None => j = b.len(),
                    }
                }
                let end = j.min(b.len());
                let v = json_string(&b[start..end]);
                if st.expect_key {
                    let key = st.keys.get(&v.decoded);
                    if let Some(top) = st.stack.last_mut() {
                        top.1 = Some(key);
                    }
                    st.expect_key = false;
                } else {
                    value(st, v, start);
                }
                i = end + 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                value(
                    st,
                    Value {
                        decoded: b[start..i].into(),
                        map: None,
                    },
                    start,
                );
            }
            _ => i += 1,
        }
    }
}

// ---------------------------------------------------------------- spreadsheets, parquet

#[allow(clippy::too_many_arguments)]
fn cell_findings(
    shown: &Arc<str>,
    field: &str,
    (row, col): (u64, u64),
    text: &str,
    opts: &Options,
    contexts: &mut Fields,
    out: &mut Out<'_>,
) -> usize {
    let ctx = contexts.get(leaf(field));
    let mut n = 0;
    let mut name: Option<Arc<str>> = None;
    for d in custodia_detect::find::find_in(&ctx, text) {
        if d.confidence < opts.min_confidence {
            continue;
        }
        n += 1;
        let field = name.get_or_insert_with(|| Arc::from(field));
        let span = (d.start as u64, d.end as u64);
        out.add(shown, (row, col), span, &d, text, Some(field));
    }
    n
}

fn invalid(_: impl std::fmt::Display) -> io::Error {
    // The library's message may quote cell content: do not pass it on.
    io::Error::new(io::ErrorKind::InvalidData, "unreadable")
}

/// Every sheet, a cell at a time; row 1 gives the field names. `line` is the spreadsheet
/// row, `column` the spreadsheet column (1-based), offsets are inside the cell.
pub(crate) fn scan_xlsx(
    file: File,
    shown: &Arc<str>,
    opts: &Options,
    tx: &Sender,
) -> io::Result<()> {
    use calamine::{Reader, Xlsx};
    let mut wb: Xlsx<_> = Xlsx::new(io::BufReader::new(file)).map_err(invalid)?;
    let sheets = wb.sheet_names();
    let mut out = Out::sending(tx, opts);
    let mut contexts = Fields::default();
    for (sheet_no, sheet) in sheets.into_iter().enumerate() {
        let mut cells = wb.worksheet_cells_reader(&sheet).map_err(invalid)?;
        // A sheet per customer is named after them: such a name is not shown.
        let shown_sheet = if crate::safe_name(&sheet) {
            sheet.clone()
        } else {
            format!("sheet_{}", sheet_no + 1)
        };
        let mut header: std::collections::BTreeMap<u32, String> = Default::default();
        let mut headerless = false;
        while let Some(cell) = cells.next_cell().map_err(invalid)? {
            let (row, col) = cell.get_position();
            // Excel has 16,384 columns; a larger reference is a malformed file.
            if col >= 16_384 {
                continue;
            }
            let text = match cell.get_value() {
                calamine::DataRef::String(s) => s.clone(),
                calamine::DataRef::SharedString(s) => s.to_string(),
                calamine::DataRef::Int(n) => n.to_string(),
                calamine::DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e16 => {
                    format!("{}", *f as i64)
                }
                _ => continue,
            };
            let name = match header.get(&col) {
                Some(h) if !h.is_empty() && row > 0 && !headerless => format!("{shown_sheet}.{h}"),
                _ => format!("{shown_sheet}.column_{}", col + 1),
            };
            let at = (row as u64 + 1, col as u64 + 1);
            cell_findings(shown, &name, at, &text, opts, &mut contexts, &mut out);
            // Row 1 names the columns, unless it holds personal data (a sheet without a
            // header): a value never becomes a field name.
            if row == 0 {
                let h = text.trim().to_string();
                headerless |= !crate::safe_name(&h);
                header.insert(col, h);
            }
        }
    }
    Ok(())
}

/// Row by row; `line` is the row (1-based), `column` the column's position.
pub(crate) fn scan_parquet(
    file: File,
    shown: &Arc<str>,
    opts: &Options,
    tx: &Sender,
) -> io::Result<()> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(file).map_err(invalid)?;
    let rows = reader.get_row_iter(None).map_err(invalid)?;
    let mut out = Out::sending(tx, opts);
    let mut contexts = Fields::default();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(invalid)?;
        for (c, (name, field)) in row.get_column_iter().enumerate() {
            let at = (i as u64 + 1, c as u64 + 1);
            parquet_field(shown, name, field, at, opts, &mut contexts, &mut out);
        }
    }
    Ok(())
}

fn parquet_field(
    shown: &Arc<str>,
    name: &str,
    field: &parquet::record::Field,
    (row, col): (u64, u64),
    opts: &Options,
    contexts: &mut Fields,
    out: &mut Out<'_>,
) {
    use parquet::record::Field;
    let text = match field {
        Field::Str(s) => s.clone(),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => s.to_string(),
            Err(_) => return,
        },
        Field::Int(n) => n.to_string(),
        Field::Long(n) => n.to_string(),
        Field::UInt(n) => n.to_string(),
        Field::ULong(n) => n.to_string(),
        Field::Group(g) => {
            for (sub, f) in g.get_column_iter() {
                parquet_field(
                    shown,
                    &format!("{name}.{sub}"),
                    f,
                    (row, col),
                    opts,
                    contexts,
                    out,
                );
            }
            return;
        }
        Field::ListInternal(l) => {
            for f in l.elements() {
                parquet_field(shown, name, f, (row, col), opts, contexts, out);
            }
            return;
        }
        _ => return,
    };
    cell_findings(shown, name, (row, col), &text, opts, contexts, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(rec: &str) -> Vec<String> {
        split_record(rec.as_bytes(), b',')
            .iter()
            .map(|f| String::from_utf8(csv_value(rec.as_bytes(), f).decoded.into_owned()).unwrap())
            .collect()
    }

    #[test]
    fn csv_records_split_with_quotes() {
        assert_eq!(fields("a,b,c\r\n"), ["a", "b", "c"]);
        assert_eq!(
            fields("\"x,y\",\"say \"\"hi\"\"\",\n"),
            ["x,y", "say \"hi\"", ""]
        );
        assert_eq!(fields("\"multi\nline\",z\n"), ["multi\nline", "z"]);
        assert_eq!(fields("one\n"), ["one"]);
    }

    #[test]
    fn bytes_after_a_closing_quote_are_kept_as_the_fields_tail() {
        let rec = b"\"zhang\"13812345678,b,\"c\"\n";
        let f = split_record(rec, b',');
        assert_eq!(f.len(), 3);
        assert_eq!(&rec[f[0].tail.0..f[0].tail.1], b"13812345678");
        assert_eq!(f[1].tail.0, f[1].tail.1);
        assert_eq!(f[2].tail.0, f[2].tail.1, "nothing after the last quote");
        let unterminated = b"\"abc";
        let f = split_record(unterminated, b',');
        assert_eq!(f[0].tail.0, f[0].tail.1);
    }

    #[test]
    fn csv_unescaping_maps_offsets_back() {
        let rec = b"\"a\"\"bc\"";
        let f = &split_record(rec, b',')[0];
        let v = csv_value(rec, f);
        assert_eq!(&*v.decoded, b"a\"bc");
        // decoded 'b' (index 2) is raw index 3 within the field content.
        assert_eq!(v.raw(2), 3);
        assert_eq!(v.raw(4), 5);
    }

    #[test]
    fn json_keys_and_escapes() {
        let mut st = JsonState::default();
        let mut seen = vec![];
        let line = br#"{"customer": {"name": "A\u00e9B", "ids": [1, 2]}, "n": 7}"#;
        json_line(line, &mut st, |k, v, start| {
            seen.push((
                k.path(),
                String::from_utf8(v.decoded.to_vec()).unwrap(),
                start,
            ))
        });
        assert_eq!(seen[0].0, "customer.name");
        assert_eq!(seen[0].1, "AéB");
        assert_eq!(seen[1].0, "customer.ids");
        assert_eq!(seen[3].0, "n");
        assert!(st.stack.is_empty());
        let v = json_string(br"A\u00e9B");
        assert_eq!(v.raw(3), 7); // 'B' after the 6-byte escape
    }

    #[test]
    fn json_state_spans_lines() {
        let mut st = JsonState::default();
        let mut keys = vec![];
        for l in [
            "{\n",
            "  \"a\": {\n",
            "    \"mobile\": \"x\"\n",
            "  }\n",
            "}\n",
        ] {
            json_line(l.as_bytes(), &mut st, |k, _, _| keys.push(k.path()));
        }
        assert_eq!(keys, ["a.mobile"]);
    }
}
