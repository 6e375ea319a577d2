//! Context words that gate or qualify a value (`邮编` before a postal code, `订单` before an
//! order number), looked up in one pass over the few bytes before a candidate.

use super::lexicon::{decode, CharSet};

/// What a context word says about the value after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctx {
    Id,
    Phone,
    Mobile,
    NotPersonal,
    Card,
    Postal,
    Passport,
    Permit,
    HkId,
    TwId,
    Uscc,
    Version,
}

const COUNT: usize = 12;

/// Context words, ASCII ones in lowercase (text is compared case-insensitively).
const WORDS: &[(&str, Ctx)] = {
    use Ctx::*;
    &[
        ("身份证", Id),
        ("身份號", Id),
        ("身份号", Id),
        ("证件", Id),
        ("公民身份", Id),
        ("id card", Id),
        ("idcard", Id),
        ("id no", Id),
        ("id number", Id),
        ("电话", Phone),
        ("座机", Phone),
        ("固话", Phone),
        ("传真", Phone),
        ("联系方式", Phone),
        ("办公", Phone),
        ("总机", Phone),
        ("分机", Phone),
        ("致电", Phone),
        ("来电", Phone),
        ("tel", Phone),
        ("phone", Phone),
        ("fax", Phone),
        ("call", Phone),
        ("手机", Mobile),
        ("电话", Mobile),
        ("联系", Mobile),
        ("mobile", Mobile),
        ("phone", Mobile),
        ("tel", Mobile),
        ("cell", Mobile),
        ("订单", NotPersonal),
        ("单号", NotPersonal),
        ("流水", NotPersonal),
        ("交易号", NotPersonal),
        ("交易编号", NotPersonal),
        ("编号", NotPersonal),
        ("序列号", NotPersonal),
        ("批次", NotPersonal),
        ("工单", NotPersonal),
        ("order", NotPersonal),
        ("txn", NotPersonal),
        ("serial", NotPersonal),
        ("trace", NotPersonal),
        ("ticket", NotPersonal),
        ("invoice", NotPersonal),
        ("卡号", Card),
        ("银行卡", Card),
        ("账号", Card),
        ("帐号", Card),
        ("信用卡", Card),
        ("借记卡", Card),
        ("储蓄卡", Card),
        ("卡", Card),
        ("card", Card),
        ("acct", Card),
        ("account", Card),
        ("pan", Card),
        ("邮编", Postal),
        ("邮政编码", Postal),
        ("邮码", Postal),
        ("postcode", Postal),
        ("post code", Postal),
        ("postal", Postal),
        ("zip", Postal),
        ("护照", Passport),
        ("passport", Passport),
        ("通行证", Permit),
        ("回乡证", Permit),
        ("港澳", Permit),
        ("permit", Permit),
        ("香港", HkId),
        ("身份证", HkId),
        ("身份證", HkId),
        ("hkid", HkId),
        ("hk id", HkId),
        ("台湾", TwId),
        ("臺灣", TwId),
        ("身分證", TwId),
        ("身份证", TwId),
        ("taiwan", TwId),
        ("信用代码", Uscc),
        ("社会信用", Uscc),
        ("税号", Uscc),
        ("uscc", Uscc),
        ("credit code", Uscc),
        ("version", Version),
        ("版本", Version),
        ("release", Version),
    ]
};

/// `(first character, index into [`WORDS`])`, sorted by character: the words that can
/// start at a character are found by a binary search instead of a pass over all of them.
const _: () = assert!(WORDS.len() <= 256, "BY_FIRST holds u8 indexes");
static BY_FIRST: [(u32, u8); WORDS.len()] = {
    let mut out = [(0u32, 0u8); WORDS.len()];
    let mut k = 0;
    while k < WORDS.len() {
        // Insertion sort (a const context has no `sort`).
        let first = decode(WORDS[k].0.as_bytes(), 0).0;
        let mut i = k;
        while i > 0 && out[i - 1].0 > first {
            out[i] = out[i - 1];
            i -= 1;
        }
        out[i] = (first, k as u8);
        k += 1;
    }
    out
};

static FIRSTS: CharSet = {
    let mut set = CharSet::empty();
    let mut k = 0;
    while k < WORDS.len() {
        set = set.with_firsts(&[WORDS[k].0]);
        k += 1;
    }
    set
};

/// For each kind of context, the distance in bytes from the nearest such word to `start`
/// (`u16::MAX` when none is in the `window` bytes before it). The window does not reach
/// back past a digit: context belongs to the nearest value.
pub(crate) fn distances(s: &[u8], start: usize, window: usize) -> [u16; COUNT] {
    let mut out = [u16::MAX; COUNT];
    let mut from = start.saturating_sub(window);
    while from < start && (s[from] & 0xC0) == 0x80 {
        from += 1;
    }
    if let Some(d) = s[from..start].iter().rposition(u8::is_ascii_digit) {
        from += d + 1;
    }
    let mut p = from;
    while p < start {
        let (c, w) = decode(s, p);
        let lower = if c < 0x80 {
            u32::from((c as u8).to_ascii_lowercase())
        } else {
            c
        };
        // ASCII words match only at a word start.
        let word_start = c >= 0x80 || p == 0 || !s[p - 1].is_ascii_alphabetic();
        if word_start && FIRSTS.contains(lower) {
            let at = BY_FIRST.partition_point(|&(first, _)| first < lower);
            for &(first, k) in &BY_FIRST[at..] {
                if first != lower {
                    break;
                }
                let (word, ctx) = WORDS[k as usize];
                let word = word.as_bytes();
                if p + word.len() <= start && s[p..p + word.len()].eq_ignore_ascii_case(word) {
                    let slot = &mut out[ctx as usize];
                    *slot = (*slot).min((start - p) as u16);
                }
            }
        }
        p += w.max(1);
    }
    out
}

/// The kinds of context a header names, as a bit set.
pub(crate) fn in_field(field: &str) -> u16 {
    if field.is_empty() {
        return 0;
    }
    let lower = field.to_ascii_lowercase();
    WORDS
        .iter()
        .filter(|(w, _)| lower.contains(w))
        .fold(0, |set, (_, ctx)| set | 1 << *ctx as u16)
}
