//! Finding personal data in free text (a note, a log line) and in structured cells.
//!
//! The scanner must keep up with reading files from disk, so it makes one pass over the
//! bytes instead of running a regular expression per type. A byte-class table skips
//! everything that cannot start a value; it stops only at ASCII letters and digits (a
//! candidate word: numbers, document ids, English name titles, IPv6 groups), at `@`
//! (email), at `::` (compressed IPv6), and at CJK characters that begin a context word or
//! place name (one bit test per character, see [`lexicon::TRIGGERS`]). A candidate is
//! confirmed with the same validators the vault uses on writes, so "a valid mobile number"
//! means the same thing here as there.
//!
//! Rules that hold for every detector:
//! - a number is reported only as a whole token: digits glued to letters, to `_`, or by
//!   `-`/`.` to other digits (`ORD13812345678`, a 25-digit transaction id, `1.2.3.4.5`)
//!   are part of something else; a number next to Chinese characters
//!   (`手机13812345678联系`) is a token of its own;
//! - types whose shape is weak (landline, postal code, passport, permit, legacy 15-digit
//!   id) need a context word just before them, or a column header that says so;
//! - offsets are byte offsets into the caller's string, on character boundaries, even when
//!   the text was width-folded for matching.

mod address;
mod context;
mod fold;
mod lexicon;
mod names;
mod net;
mod numbers;
#[cfg(test)]
mod tests;

use crate::PiiType;
use context::Ctx;
use lexicon::{Kind, Lexicon, TRIGGERS};
use std::cell::Cell;

/// One value found: where (byte offsets into the scanned string, end exclusive), what,
/// and how sure the detector is (0 to 1; checksummed values ≥ 0.9, context-gated ones
/// 0.7–0.85, weak guesses below 0.5, which callers may drop).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finding {
    pub start: usize,
    pub end: usize,
    pub ty: PiiType,
    pub confidence: f32,
}

/// Personal data in free text, sorted by start and non-overlapping.
pub fn find(text: &str) -> Vec<Finding> {
    scan(text, 0, None)
}

/// [`find`] into `found` (cleared first), reusing its allocation.
pub fn find_into(text: &str, found: &mut Vec<Finding>) {
    scan_into(text, 0, None, found);
}

/// Personal data in one structured value (a CSV cell, a JSON string). `field` is the
/// column header or JSON key: it gates the weakly shaped types (`邮编` makes a 6-digit
/// value a postal code, `电话` a landline) and lets a whole cell be a name or an address.
/// Offsets are relative to `value`.
pub fn find_in_field(field: &str, value: &str) -> Vec<Finding> {
    find_in(&FieldContext::new(field), value)
}

/// A column header or key prepared once for all the values under it (what
/// [`find_in_field`] would otherwise work out again for every cell).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldContext {
    hint: Option<PiiType>,
    context: u16,
}

impl FieldContext {
    pub fn new(field: &str) -> FieldContext {
        FieldContext {
            hint: column_hint(field),
            context: context::in_field(&crate::fold_width(field)),
        }
    }

    /// The PII type the header suggests ([`column_hint`]).
    pub fn hint(&self) -> Option<PiiType> {
        self.hint
    }
}

/// [`find_in_field`] with the header prepared beforehand.
pub fn find_in(field: &FieldContext, value: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    find_in_into(field, value, &mut found);
    found
}

/// [`find_in`] into `found` (cleared first), reusing its allocation: a scanner calls
/// this for every cell.
pub fn find_in_into(field: &FieldContext, value: &str, found: &mut Vec<Finding>) {
    let hint = field.hint;
    scan_into(value, field.context, hint, found);
    let whole = match hint {
        Some(PiiType::PersonName) => names::whole_cell(value),
        Some(PiiType::Address) if found.iter().all(|f| f.ty == PiiType::Address) => {
            address::whole_cell(value)
        }
        Some(PiiType::DateOfBirth) => {
            let t = trimmed(value);
            crate::validate::date_of_birth(&value[t.0..t.1])
                .ok()
                .map(|_| (t.0, t.1, 0.85))
        }
        _ => None,
    };
    if let (Some((start, end, confidence)), Some(ty)) = (whole, hint) {
        found.retain(|f| f.end <= start || f.start >= end);
        found.push(Finding {
            start,
            end,
            ty,
            confidence,
        });
        found.sort_by_key(|f| f.start);
    }
}

/// The byte range of `s` without surrounding whitespace.
fn trimmed(s: &str) -> (usize, usize) {
    let start = s.len() - s.trim_start().len();
    (start, start + s[start..].trim_end().len())
}

/// The PII type a column header or JSON key suggests, for schema proposals.
pub fn column_hint(field: &str) -> Option<PiiType> {
    use PiiType as T;
    let folded = crate::fold_width(field);
    let lower = folded.trim().to_lowercase();
    // English headers: split `customerName`, `id_no`, `E-mail` into lowercase tokens.
    let mut tokens: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in folded.trim().chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            cur.push(c.to_ascii_lowercase());
        } else {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let joined: String = tokens.concat();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let tok = |words: &[&str]| {
        words
            .iter()
            .any(|w| tokens.iter().any(|t| t == w) || joined == *w)
    };
    // Most specific first: `联系人电话` is a phone, `香港身份证` is not a mainland id.
    let rules: [(bool, T); 17] = [
        (
            has(&["香港身份证", "香港居民身份证"]) || tok(&["hkid"]),
            T::HkId,
        ),
        (
            has(&["台湾身份证", "臺灣身分證"]) || tok(&["twid"]),
            T::TwId,
        ),
        (
            has(&["身份证", "证件号", "身份號", "公民身份"])
                || tok(&[
                    "idcard",
                    "idno",
                    "idnumber",
                    "sfz",
                    "sfzh",
                    "identity",
                    "citizenid",
                ])
                || joined.contains("idcard")
                || joined == "id_no",
            T::CnResidentId,
        ),
        (has(&["护照"]) || tok(&["passport"]), T::CnPassport),
        (
            has(&["通行证", "回乡证"]) || tok(&["permit"]),
            T::HkMacauPermit,
        ),
        (
            has(&["邮编", "邮政编码"]) || tok(&["zip", "zipcode", "postcode", "postal"]),
            T::PostalCode,
        ),
        (
            has(&["邮箱", "电子邮件", "邮件"]) || tok(&["email", "mail"]),
            T::Email,
        ),
        (
            has(&["座机", "固话", "固定电话", "传真", "办公电话"])
                || tok(&["landline", "tel", "telephone", "fax"]),
            T::CnLandline,
        ),
        (
            has(&["手机", "电话", "联系方式"])
                || tok(&["mobile", "cellphone", "cell", "phone", "msisdn"]),
            T::CnMobile,
        ),
        (
            has(&["卡号", "银行卡", "账号", "帐号", "信用卡", "借记卡"])
                || tok(&["card", "cardno", "pan", "account", "acct", "bankcard"]),
            T::BankCard,
        ),
        (
            has(&["统一社会信用代码", "信用代码", "税号"]) || tok(&["uscc", "creditcode"]),
            T::Uscc,
        ),
        (
            has(&["出生日期", "生日", "出生年月"])
                || tok(&["dob", "birthday", "birthdate", "birth"]),
            T::DateOfBirth,
        ),
        (
            has(&["车牌"]) || tok(&["plate", "licenseplate", "plateno"]),
            T::CnLicensePlate,
        ),
        (tok(&["ipv6"]), T::Ipv6),
        (
            has(&["ip地址"]) || tok(&["ip", "ipv4", "ipaddr", "ipaddress", "clientip", "remoteip"]),
            T::Ipv4,
        ),
        (
            has(&["地址", "住址", "住所", "居住地", "户籍地"])
                || tok(&["address", "addr", "street", "residence"]),
            T::Address,
        ),
        (
            has(&[
                "姓名",
                "名字",
                "户名",
                "联系人",
                "持卡人",
                "收件人",
                "收货人",
                "客户名称",
                "开户人",
                "申请人",
                "投保人",
                "被保险人",
                "法定代表人",
                "受益人",
            ]) || tok(&[
                "name",
                "fullname",
                "customername",
                "custname",
                "clientname",
                "holdername",
                "cardholder",
                "contactname",
                "firstname",
                "lastname",
                "givenname",
                "surname",
                "xm",
                "realname",
                "recipient",
                "receiver",
                "consignee",
                "payee",
                "payer",
                "beneficiary",
                "borrower",
                "guarantor",
            ]),
            T::PersonName,
        ),
    ];
    rules.into_iter().find(|r| r.0).map(|r| r.1)
}

/// Byte classes for the main loop.
const SKIP: u8 = 0;
const DIGIT: u8 = 1;
const ALPHA: u8 = 2;
const AT: u8 = 3;
const COLON: u8 = 4;
const LEAD3: u8 = 5;

static CLASS: [u8; 256] = {
    let mut t = [SKIP; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'0'..=b'9' => DIGIT,
            b'A'..=b'Z' | b'a'..=b'z' => ALPHA,
            b'@' => AT,
            b':' => COLON,
            0xE0..=0xEF => LEAD3,
            _ => SKIP,
        };
        b += 1;
    }
    t
};

/// One scan: the folded text, the cell's header (empty in free text) and the findings
/// so far, in folded offsets.
pub(crate) struct Scan<'a> {
    pub s: &'a [u8],
    /// `s` as a string.
    pub t: &'a str,
    /// The kinds of context the header names (bit per [`Ctx`]).
    pub field_context: u16,
    /// Context distances for the last candidate start asked about.
    near: Cell<Option<(usize, [u16; 12])>>,
    pub hint: Option<PiiType>,
    pub lex: &'static Lexicon,
    pub out: Vec<Finding>,
    /// A word ending before this offset is not an email's local part: the look for an `@`
    /// from an earlier word of the same run (`a.b-c.d …`) ended here without one.
    no_at_before: usize,
}

impl Scan<'_> {
    pub fn push(&mut self, start: usize, end: usize, ty: PiiType, confidence: f32) {
        self.out.push(Finding {
            start,
            end,
            ty,
            confidence,
        });
    }

    /// Whether a context word of kind `ctx` is in the `window` bytes before `start` (not
    /// reaching back past another number), or in the header.
    pub fn context(&self, start: usize, window: usize, ctx: Ctx) -> bool {
        if self.field_context & (1 << ctx as u16) != 0 {
            return true;
        }
        let (at, distances) = match self.near.get() {
            Some(cached) if cached.0 == start => cached,
            _ => {
                let d = context::distances(self.s, start, 32);
                self.near.set(Some((start, d)));
                (start, d)
            }
        };
        debug_assert_eq!(at, start);
        usize::from(distances[ctx as usize]) <= window
    }

    /// Whether the header's hint is `ty` or a context word of kind `ctx` is near.
    pub fn gated(&self, start: usize, ty: PiiType, window: usize, ctx: Ctx) -> bool {
        self.hint == Some(ty) || self.context(start, window, ctx)
    }

    fn run(&mut self) {
        let s = self.s;
        let n = s.len();
        let mut i = 0;
        while i < n {
            match CLASS[s[i] as usize] {
                SKIP => i += 1,
                DIGIT | ALPHA => i = self.word(i),
                AT => i = net::email(self, i),
                COLON => i = net::colon(self, i),
                _ => i = self.cjk(i),
            }
        }
    }

    /// A CJK (3-byte) character at `i`: a context word or place name, or nothing.
    fn cjk(&mut self, i: usize) -> usize {
        let s = self.s;
        if i + 3 > s.len() {
            return s.len();
        }
        // `s[i]` is a 3-byte lead (E0..EF) of valid UTF-8: decoded here, not by a call per
        // character.
        let c = ((u32::from(s[i]) & 0x0F) << 12)
            | ((u32::from(s[i + 1]) & 0x3F) << 6)
            | (u32::from(s[i + 2]) & 0x3F);
        if !TRIGGERS.contains(c) {
            return i + 3;
        }
        let Some((word, kind)) = self.lex.at(s, i, c) else {
            return i + 3;
        };
        let after = i + word.len();
        let next = match kind {
            Kind::NameBefore => names::after_context(self, after),
            Kind::Title => {
                names::before_title(self, i, after).or_else(|| names::after_role(self, after))
            }
            Kind::AddressBefore => address::after_context(self, after),
            Kind::Place => address::from_place(self, i),
            Kind::BirthBefore => birth_date_after(self, after),
            Kind::NameVerb => names::before_verb(self, i, after),
        };
        next.unwrap_or(i + 3)
    }

    /// An ASCII word (letters and digits) at `i`; returns where scanning continues.
    fn word(&mut self, i: usize) -> usize {
        let s = self.s;
        let n = s.len();
        let mut j = i;
        let (mut digits, mut letters) = (0, 0);
        while j < n {
            match CLASS[s[j] as usize] {
                DIGIT => digits += 1,
                ALPHA => letters += 1,
                _ => break,
            }
            j += 1;
        }
        // Part of an email's local part: let the `@` handler take the whole address.
        if j < n
            && j >= self.no_at_before
            && matches!(s[j], b'@' | b'.' | b'_' | b'%' | b'+' | b'-')
        {
            let mut k = j;
            while k < n && k - j < 64 && net::is_local(s[k]) {
                k += 1;
            }
            if k < n && s[k] == b'@' {
                // Found here, checked once: the `@` handler would check it again.
                if let Some((a, b)) = net::email_span(s, k) {
                    self.push(a, b, PiiType::Email, 0.95);
                    return b;
                }
            } else if k - j < 64 {
                // Stopped by a byte that is neither `@` nor part of a local part: so would
                // the look from any later word before `k`.
                self.no_at_before = k;
            }
        }
        // An identifier with underscores is one token.
        if (j < n && s[j] == b'_') || (i > 0 && s[i - 1] == b'_') {
            while j < n && (s[j].is_ascii_alphanumeric() || s[j] == b'_') {
                j += 1;
            }
            // `customer_name=张伟`
            return names::keyed(self, i, j).unwrap_or(j);
        }
        if j < n && s[j] == b':' && j - i <= 4 && s[i..j].iter().all(u8::is_ascii_hexdigit) {
            if let Some(end) = net::ipv6(self, i) {
                return end;
            }
        }
        let dotted = j + 1 < n && s[j] == b'.' && s[j + 1].is_ascii_alphanumeric();
        if dotted && digits > 0 {
            return net::dotted(self, i);
        }
        let digits_x = letters == 1 && matches!(s[j - 1], b'X' | b'x') && digits > 0;
        let found = if letters == 0 || digits_x {
            return numbers::digits(self, i, j);
        } else if digits > 0 {
            numbers::alnum(self, i, j)
        } else if j - i == 1 {
            numbers::plate(self, i, j)
        } else if j - i <= 10 && b"MDNnCcAHh".contains(&s[i]) {
            // Only title words (`Mr`, `Dear`, `Name`, `Customer` …) start a name.
            names::english(self, i, j).or_else(|| names::keyed(self, i, j))
        } else if matches!(s.get(j), Some(b'"' | b':' | b'=')) {
            names::keyed(self, i, j)
        } else {
            None
        };
        found.unwrap_or(j)
    }

    /// Keeps the best of overlapping findings (higher confidence, then longer), in order.
    fn resolve(mut self) -> Vec<Finding> {
        let mut found = std::mem::take(&mut self.out);
        // Almost always already in order: the pass pushes left to right.
        if !found.windows(2).all(|w| {
            (w[0].start, std::cmp::Reverse(w[0].end)) <= (w[1].start, std::cmp::Reverse(w[1].end))
        }) {
            found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        }
        // In place: `kept` findings are `found[..kept]`.
        let mut kept: usize = 0;
        for i in 0..found.len() {
            let f = found[i];
            match kept.checked_sub(1).map(|k| &mut found[k]) {
                Some(last) if f.start < last.end => {
                    let better = f.confidence > last.confidence
                        || (f.confidence == last.confidence
                            && f.end - f.start > last.end - last.start);
                    if better {
                        *last = f;
                    }
                }
                _ => {
                    found[kept] = f;
                    kept += 1;
                }
            }
        }
        found.truncate(kept);
        found
    }
}

/// A date of birth after its label (`出生日期：1990-05-12`, `生日 1985年3月7日`).
fn birth_date_after(sc: &mut Scan, p: usize) -> Option<usize> {
    let s = sc.s;
    let mut q = p;
    for _ in 0..3 {
        if matches!(s.get(q), Some(b' ' | b':' | b'\t')) {
            q += 1;
        } else if ["：", "为", "是", "　"]
            .iter()
            .any(|w| s[q..].starts_with(w.as_bytes()))
        {
            q += 3;
        } else {
            break;
        }
    }
    // Digits and the separators of a date, `年` and `月` included, then an optional `日`.
    let mut end = q;
    while end < s.len() && end - q < 24 {
        if s[end].is_ascii_digit() || matches!(s[end], b'-' | b'/' | b'.') {
            end += 1;
        } else if s[end..].starts_with("年".as_bytes()) || s[end..].starts_with("月".as_bytes()) {
            end += 3;
        } else {
            break;
        }
    }
    while end > q && matches!(s[end - 1], b'-' | b'/' | b'.') {
        end -= 1;
    }
    if s[end..].starts_with("日".as_bytes()) {
        end += 3;
    }
    if end == q || s.get(end).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    let text = std::str::from_utf8(&s[q..end]).ok()?;
    crate::validate::date_of_birth(text).ok()?;
    sc.push(q, end, PiiType::DateOfBirth, 0.85);
    Some(end)
}

/// Tables written as text (markdown: `| 姓名 | 手机 |`, then `|---|---|`, then rows):
/// a cell under a name or birth-date header is read whole, as the same cell in a CSV
/// export would be. The other types are found by the main pass either way.
fn tables(sc: &mut Scan) {
    let s = sc.s;
    let first = (s.first() == Some(&b'|')).then_some(0);
    let rows = first
        .into_iter()
        .chain(memchr::memmem::find_iter(s, b"\n|").map(|p| p + 1));
    // The cells of the row `s[start..end]`, as byte ranges.
    let cells = |start: usize, end: usize| {
        s[start..end]
            .split(|&b| b == b'|')
            .scan(start, |at, cell| {
                let range = (*at, *at + cell.len());
                *at += cell.len() + 1;
                Some(range)
            })
            .skip(1)
    };
    // The last row that may be a header; its hints are worked out only when a separator
    // line follows it (rows of a table with no name or birth-date column, or `|`-separated
    // log lines, would otherwise each cost a header lookup per cell).
    let mut candidate: Option<(usize, usize)> = None;
    // Header cells already looked up (the tables of one document repeat their headers).
    let mut seen: Vec<(&[u8], Option<PiiType>)> = Vec::new();
    let mut header: Vec<Option<PiiType>> = Vec::new();
    let mut body = false;
    let mut prev_end = usize::MAX;
    for start in rows {
        let end = memchr::memchr(b'\n', &s[start..]).map_or(s.len(), |e| start + e);
        let contiguous = prev_end.checked_add(1) == Some(start);
        prev_end = end;
        let line = &s[start..end];
        let separator = line
            .iter()
            .all(|b| matches!(b, b'|' | b'-' | b':' | b' ' | b'\r'));
        if contiguous && !body && separator {
            if let Some((a, b)) = candidate.take() {
                header.clear();
                header.extend(cells(a, b).map(|(a, b)| {
                    let cell = &s[a..b];
                    if let Some(&(_, hint)) = seen.iter().find(|(c, _)| *c == cell) {
                        return hint;
                    }
                    let hint = std::str::from_utf8(cell)
                        .ok()
                        .and_then(column_hint)
                        .filter(|h| matches!(h, PiiType::PersonName | PiiType::DateOfBirth));
                    if seen.len() < 64 {
                        seen.push((cell, hint));
                    }
                    hint
                }));
                if header.iter().any(Option::is_some) {
                    body = true;
                    continue;
                }
            }
        }
        if !(contiguous && body) {
            // A new table, maybe: this line is its header.
            body = false;
            candidate = Some((start, end));
            continue;
        }
        for ((a, b), hint) in cells(start, end).zip(header.iter()) {
            let Some(hint) = *hint else { continue };
            let Ok(cell) = std::str::from_utf8(&s[a..b]) else {
                continue;
            };
            let found = match hint {
                PiiType::PersonName => names::whole_cell(cell),
                _ => {
                    let t = trimmed(cell);
                    crate::validate::date_of_birth(&cell[t.0..t.1])
                        .ok()
                        .map(|_| (t.0, t.1, 0.85))
                }
            };
            if let Some((x, y, confidence)) = found {
                sc.push(a + x, a + y, hint, confidence);
            }
        }
    }
}

fn scan(text: &str, field_context: u16, hint: Option<PiiType>) -> Vec<Finding> {
    let mut found = Vec::new();
    scan_into(text, field_context, hint, &mut found);
    found
}

fn scan_into(text: &str, field_context: u16, hint: Option<PiiType>, found: &mut Vec<Finding>) {
    found.clear();
    let folded = fold::Folded::new(text);
    let scan = Scan {
        s: folded.text.as_bytes(),
        t: &folded.text,
        field_context,
        near: Cell::new(None),
        hint,
        lex: Lexicon::get(),
        out: std::mem::take(found),
        no_at_before: 0,
    };
    let mut scan = scan;
    scan.run();
    if field_context == 0 && hint.is_none() && memchr::memchr(b'|', scan.s).is_some() {
        tables(&mut scan);
    }
    *found = scan.resolve();
    for f in found.iter_mut() {
        f.start = folded.original(f.start);
        f.end = folded.original(f.end);
    }
}
