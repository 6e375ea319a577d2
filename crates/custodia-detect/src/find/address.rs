//! Postal addresses: from a province or city name (or after `地址：`) through the
//! suffix grammar of Chinese addresses, to the last component that ends one.
//!
//! The reader walks forward over ideographs, digits and the letters and dashes of
//! building numbers (`A座`, `3-501`), stopping at punctuation or at the label of another
//! value (`电话`, `客户`), then backs up to the last component suffix (`号`, `室`, `路`,
//! `单元` …): whatever follows it (`…88号客户说`) is not part of the address. Without a
//! context word, an address needs a street-level component and either a district or a
//! house number, so a place name in a sentence (`我在深圳工作`) is not one.

use super::lexicon::{ideograph_at, ideograph_before};
use super::Scan;
use crate::PiiType as T;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Suffix {
    District,
    Street,
    Unit,
}

/// The component a character ends, given the character before it.
fn suffix(c: char, prev: Option<char>) -> Option<Suffix> {
    use Suffix::*;
    Some(match c {
        '省' | '市' | '区' | '县' | '镇' | '乡' | '旗' | '盟' => District,
        '路' if !matches!(prev, Some('思' | '线' | '网' | '一' | '套' | '出')) => Street,
        '道' if !matches!(
            prev,
            Some('知' | '频' | '渠' | '味' | '报' | '难' | '一' | '轨' | '管' | '车')
        ) =>
        {
            Street
        }
        '街' | '巷' | '弄' | '村' | '组' => Street,
        '同' if prev == Some('胡') => Street,
        '号' if !matches!(
            prev,
            Some('账' | '帐' | '卡' | '编' | '信' | '型' | '挂' | '单' | '称' | '字')
        ) =>
        {
            Unit
        }
        '元' if prev == Some('单') => Unit,
        '室' | '栋' | '幢' | '楼' | '层' | '座' | '苑' | '园' | '院' | '厦' | '舍' => {
            Unit
        }
        _ => return None,
    })
}

fn char_at(s: &[u8], i: usize) -> Option<char> {
    ideograph_at(s, i).and_then(char::from_u32)
}

/// Reads an address starting at `start`; reports it and returns its end.
fn walk(sc: &mut Scan, start: usize, context: bool) -> Option<usize> {
    let s = sc.s;
    let n = s.len();
    let limit = (start + 240).min(n);
    let mut k = start;
    let mut spaces = 0;
    let mut digits = false;
    let (mut street, mut district, mut number) = (false, false, false);
    // (end, street, district, number, last suffix) at the last component suffix.
    let mut last: Option<(usize, bool, bool, bool, char)> = None;
    while k < limit {
        let b = s[k];
        if b.is_ascii_digit() {
            digits = true;
            k += 1;
            continue;
        }
        if b.is_ascii_alphabetic() || b == b'-' || b == b'#' {
            k += 1;
            continue;
        }
        if b == b' ' {
            let next_ok = s.get(k + 1).is_some_and(u8::is_ascii_digit)
                || (ideograph_at(s, k + 1).is_some() && !sc.lex.stops_at(s, k + 1));
            if spaces < 2 && next_ok {
                spaces += 1;
                k += 1;
                continue;
            }
            break;
        }
        let Some(c) = char_at(s, k) else { break };
        if c == '的' || (k > start && sc.lex.stops_at(s, k)) {
            break;
        }
        let prev = ideograph_before(s, k).and_then(char::from_u32);
        k += 3;
        if let Some(kind) = suffix(c, prev) {
            match kind {
                Suffix::District => district = true,
                Suffix::Street => street = true,
                Suffix::Unit => {}
            }
            number |= digits;
            last = Some((k, street, district, number, c));
        }
    }
    let (mut end, street, district, number, last_char) = last?;
    // A flat number after the last building component: `12栋1503`, `2单元501室`.
    if matches!(last_char, '栋' | '幢' | '楼' | '元' | '座' | '号' | '层') {
        let mut m = end;
        while m < n && m - end < 6 && s[m].is_ascii_digit() {
            m += 1;
        }
        if (1..=5).contains(&(m - end)) && !s.get(m).is_some_and(u8::is_ascii_alphanumeric) {
            end = m;
            if let Some('室' | '号') = char_at(s, m) {
                end += 3;
            }
        }
    }
    let confidence = match (context, street, district, number) {
        (true, true, _, _) | (true, _, true, _) => 0.9,
        (false, true, _, true) => 0.85,
        (false, true, true, false) => 0.7,
        _ => return None,
    };
    if end - start < 9 {
        return None;
    }
    sc.push(start, end, T::Address, confidence);
    Some(end)
}

/// A province or city name at `i` may start an address.
pub(super) fn from_place(sc: &mut Scan, i: usize) -> Option<usize> {
    walk(sc, i, false)
}

/// After `地址`, `住址`, `家住` … ending at `p`: separators, then an address.
pub(super) fn after_context(sc: &mut Scan, p: usize) -> Option<usize> {
    let s = sc.s;
    let mut q = p;
    for _ in 0..3 {
        if matches!(s.get(q), Some(b' ' | b':' | b'\t')) {
            q += 1;
        } else if ["：", "为", "是", "在", "于", "　"]
            .iter()
            .any(|w| s[q..].starts_with(w.as_bytes()))
        {
            q += 3;
        } else {
            break;
        }
    }
    ideograph_at(s, q)?;
    walk(sc, q, true)
}

/// A whole cell under an address header: its trimmed span and confidence.
pub(super) fn whole_cell(value: &str) -> Option<(usize, usize, f32)> {
    let (a, b) = super::trimmed(value);
    let v = &value[a..b];
    crate::validate::address_ok(v).then_some(())?;
    let mut has_cjk = false;
    let mut has_suffix = false;
    let mut prev = None;
    for c in v.chars() {
        has_cjk |= super::lexicon::is_ideograph(c as u32);
        has_suffix |= suffix(c, prev).is_some();
        prev = Some(c);
    }
    match (has_cjk, has_suffix) {
        (true, true) => Some((a, b, 0.85)),
        (true, false) => Some((a, b, 0.6)),
        _ => None,
    }
}
