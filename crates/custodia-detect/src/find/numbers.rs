//! Digit runs and letter-digit words: resident ids, mobile and landline numbers, bank
//! cards, USCCs, postal codes, travel documents, Hong Kong and Taiwan ids, licence plates.
//!
//! A run of digit groups separated by single spaces or dashes (`138 1234 5678`,
//! `6222-0212-3456-7890-123`, `110105 19491231 002X`) is read as a whole first, then as
//! smaller space-delimited pieces; a dash joins its neighbours into one token, so only a
//! whole dash-joined run may match. Each type accepts only the groupings people actually
//! write for it, which keeps two numbers written side by side from matching as one.

use super::context::Ctx;
use super::lexicon::{ideograph_before, CharSet};
use super::Scan;
use crate::validate::{self, is_mobile_prefix, luhn_check_digit};
use crate::PiiType as T;

/// Province abbreviations that begin a licence plate.
static PLATE_PROVINCES: CharSet = CharSet::empty().with_chars(validate::PLATE_PROVINCES);

#[derive(Clone, Copy, Default)]
struct Group {
    start: usize,
    end: usize,
    /// The separator before this group (`b' '` or `b'-'`; 0 for the first).
    gap: u8,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the token ending at `end` continues (`_`, or `-`/`.` and more of a token).
fn glued_after(s: &[u8], end: usize) -> bool {
    match s.get(end) {
        Some(b'_') => true,
        Some(b'-') => s.get(end + 1).is_some_and(|b| b.is_ascii_alphanumeric()),
        Some(b'.') => s.get(end + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// Whether the token starting at `start` continues something before it.
fn glued_before(s: &[u8], start: usize) -> bool {
    match start.checked_sub(1).map(|p| s[p]) {
        Some(b'_') => true,
        Some(b'-') => start >= 2 && s[start - 2].is_ascii_alphanumeric(),
        Some(b'.') => start >= 2 && s[start - 2].is_ascii_digit(),
        _ => false,
    }
}

/// `t[a..b]` (the scanned text as a string: slicing it checks two boundaries where
/// `from_utf8` on the bytes would validate them all).
fn ascii(t: &str, a: usize, b: usize) -> &str {
    t.get(a..b).unwrap_or("")
}

/// A run of digits at `i..j` (the last may be an `X`), with any groups that follow it.
pub(super) fn digits(sc: &mut Scan, i: usize, j: usize) -> usize {
    let s = sc.s;
    let n = s.len();
    if let Some(end) = paren_landline(sc, i, j) {
        return end;
    }
    let mut groups = [Group::default(); 8];
    groups[0] = Group {
        start: i,
        end: j,
        gap: 0,
    };
    let mut count = 1;
    let mut end = j;
    let mut ends_x = matches!(s[j - 1], b'X' | b'x');
    while count < groups.len()
        && !ends_x
        && end + 1 < n
        && matches!(s[end], b' ' | b'-')
        && s[end + 1].is_ascii_digit()
    {
        let k = end + 1;
        let mut m = k;
        while m < n && s[m].is_ascii_digit() {
            m += 1;
        }
        let x =
            m < n && matches!(s[m], b'X' | b'x') && !s.get(m + 1).is_some_and(|&b| is_word_byte(b));
        if x {
            m += 1;
        }
        if m < n && is_word_byte(s[m])
            || (s.get(m) == Some(&b'.') && s.get(m + 1).is_some_and(u8::is_ascii_digit))
        {
            break;
        }
        groups[count] = Group {
            start: k,
            end: m,
            gap: s[end],
        };
        count += 1;
        end = m;
        ends_x = x;
    }
    let groups = &groups[..count];
    // Short lone numbers (years, amounts, counts) are the common case: nothing to do.
    if count == 1 && j - i < 6 {
        return end;
    }
    let plus = i > 0 && s[i - 1] == b'+';
    let before = glued_before(s, if plus { i - 1 } else { i });
    let after = glued_after(s, end);
    let mut a = 0;
    while a < count {
        let mut matched = false;
        for b in (a..count).rev() {
            let left_ok = if a == 0 {
                !before
            } else {
                groups[a].gap == b' '
            };
            let right_ok = if b == count - 1 {
                !after
            } else {
                groups[b + 1].gap == b' '
            };
            if !left_ok || !right_ok {
                continue;
            }
            let with_plus = plus && a == 0;
            if let Some((ty, confidence)) = classify(sc, &groups[a..=b], with_plus) {
                let start = if with_plus { i - 1 } else { groups[a].start };
                sc.push(start, groups[b].end, ty, confidence);
                a = b + 1;
                matched = true;
                break;
            }
        }
        if !matched {
            a += 1;
        }
    }
    end
}

/// `(021)87654321`, `(0755) 1234567`: an area code in parentheses.
fn paren_landline(sc: &mut Scan, i: usize, j: usize) -> Option<usize> {
    let s = sc.s;
    if !(i > 0
        && s[i - 1] == b'('
        && s.get(j) == Some(&b')')
        && s[i] == b'0'
        && (3..=4).contains(&(j - i)))
    {
        return None;
    }
    let mut k = j + 1;
    if matches!(s.get(k), Some(b' ' | b'-')) {
        k += 1;
    }
    let mut m = k;
    while m < s.len() && s[m].is_ascii_digit() {
        m += 1;
    }
    if !(7..=8).contains(&(m - k))
        || s.get(m).is_some_and(|&b| is_word_byte(b))
        || glued_after(s, m)
    {
        return None;
    }
    validate::landline(ascii(sc.t, i - 1, m)).ok()?;
    let confidence = if sc.gated(i - 1, T::CnLandline, 30, Ctx::Phone) {
        0.85
    } else {
        0.6
    };
    sc.push(i - 1, m, T::CnLandline, confidence);
    Some(m)
}

/// What a group sequence is, if anything.
fn classify(sc: &Scan, groups: &[Group], plus: bool) -> Option<(T, f32)> {
    let s = sc.s;
    let mut buf = [0u8; 24];
    let mut len = 0;
    let mut lens = [0usize; 8];
    for (k, g) in groups.iter().enumerate() {
        let w = &s[g.start..g.end];
        buf.get_mut(len..len + w.len())?.copy_from_slice(w);
        len += w.len();
        lens[k] = w.len();
    }
    let d = &buf[..len];
    let lens = &lens[..groups.len()];
    let start = groups[0].start;
    let span = ascii(
        sc.t,
        if plus { start - 1 } else { start },
        groups[groups.len() - 1].end,
    );
    if plus {
        return mobile(sc, start, d, lens, true)
            .or_else(|| landline(sc, start, d, lens, true, span));
    }
    if resident_id(d, lens, span) {
        return Some((T::CnResidentId, 0.95));
    }
    if lens == [18] {
        if let Ok(code) = validate::uscc_bytes(span) {
            if organisation_code_ok(&code) {
                return Some((T::Uscc, 0.9));
            }
        }
    }
    if matches!(d[len - 1], b'X' | b'x') {
        return None;
    }
    mobile(sc, start, d, lens, false)
        .or_else(|| landline(sc, start, d, lens, false, span))
        .or_else(|| card(sc, start, d, lens))
        .or_else(|| legacy_resident_id(sc, start, d, lens))
        .or_else(|| postal_code(sc, start, d, lens))
}

fn resident_id(d: &[u8], lens: &[usize], span: &str) -> bool {
    (lens == [18] || lens == [6, 8, 4])
        && d.len() == 18
        && validate::resident_id_bytes(span).is_ok()
}

/// A 15-digit id issued before 1999: region, `YYMMDD`, sequence; no check digit, so it
/// needs a context word and is reported with low confidence.
fn legacy_resident_id(sc: &Scan, start: usize, d: &[u8], lens: &[usize]) -> Option<(T, f32)> {
    if lens != [15] {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
    let province = num(0..2);
    let ok_province = matches!(province, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65);
    let date = crate::civil::Date::new(1900 + num(6..8) as i32, num(8..10), num(10..12));
    (ok_province && date.is_some() && sc.gated(start, T::CnResidentId, 30, Ctx::Id))
        .then_some((T::CnResidentId, 0.4))
}

fn mobile(sc: &Scan, start: usize, d: &[u8], lens: &[usize], plus: bool) -> Option<(T, f32)> {
    let (rest, rest_lens): (&[u8], &[usize]) = if plus {
        match lens {
            [2, tail @ ..] if d.starts_with(b"86") => (&d[2..], tail),
            [13] if d.starts_with(b"86") => (&d[2..], &[11]),
            _ => return None,
        }
    } else {
        match lens {
            [2, tail @ ..] if d.starts_with(b"86") => (&d[2..], tail),
            [4, tail @ ..] if d.starts_with(b"0086") => (&d[4..], tail),
            [15] if d.starts_with(b"0086") => (&d[4..], &[11]),
            _ => (d, lens),
        }
    };
    let grouped_ok = matches!(rest_lens, [11] | [3, 4, 4] | [3, 8]);
    if !grouped_ok || rest.len() != 11 || rest[0] != b'1' {
        return None;
    }
    let prefix = rest[..3]
        .iter()
        .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
    if !is_mobile_prefix(prefix) {
        return None;
    }
    let confidence = if sc.context(start, 24, Ctx::NotPersonal) {
        0.45
    } else if sc.context(start, 24, Ctx::Mobile) || sc.hint == Some(T::CnMobile) {
        0.95
    } else {
        0.9
    };
    Some((T::CnMobile, confidence))
}

fn landline(
    sc: &Scan,
    start: usize,
    d: &[u8],
    lens: &[usize],
    plus: bool,
    span: &str,
) -> Option<(T, f32)> {
    let shaped = if plus {
        matches!(lens, [2, 2..=3, 7..=8]) && d.starts_with(b"86")
    } else {
        d[0] == b'0'
            && matches!(
                lens,
                [3..=4, 7..=8] | [10..=12] | [3..=4, 4, 4] | [3..=4, 3, 4]
            )
    };
    if !shaped || validate::landline(span).is_err() {
        return None;
    }
    sc.gated(start, T::CnLandline, 30, Ctx::Phone)
        .then_some((T::CnLandline, 0.8))
}

/// Whether the issuer prefix is one a card network uses at this length.
fn plausible_iin(d: &[u8]) -> bool {
    let len = d.len();
    let p2 = u32::from(d[0] - b'0') * 10 + u32::from(d[1] - b'0');
    let p4 = p2 * 100 + u32::from(d[2] - b'0') * 10 + u32::from(d[3] - b'0');
    match d[0] {
        b'4' => matches!(len, 13 | 16 | 19),              // Visa
        b'5' => (51..=55).contains(&p2) && len == 16,     // Mastercard
        b'2' => (2221..=2720).contains(&p4) && len == 16, // Mastercard 2-series
        b'3' => {
            (matches!(p2, 34 | 37) && len == 15)
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&len))
        }
        b'6' => (p2 == 62 || p2 == 60 || p2 == 65 || p4 == 6011) && (16..=19).contains(&len),
        _ => false,
    }
}

fn card(sc: &Scan, start: usize, d: &[u8], lens: &[usize]) -> Option<(T, f32)> {
    if !(13..=19).contains(&d.len()) {
        return None;
    }
    let k = lens.len();
    let grouped_ok = k == 1
        || (k >= 3 && lens[..k - 1].iter().all(|&l| l == 4) && (1..=4).contains(&lens[k - 1]))
        || matches!(lens, [6, 13] | [6, 10] | [4, 6, 5] | [4, 6, 4]);
    let (check, body) = d.split_last()?;
    if !grouped_ok || luhn_check_digit(body) != *check {
        return None;
    }
    let context = sc.gated(start, T::BankCard, 30, Ctx::Card);
    let confidence = match (plausible_iin(d), context) {
        (true, true) => 0.95,
        (true, false) if sc.context(start, 24, Ctx::NotPersonal) => 0.45,
        (true, false) => 0.85,
        (false, true) => 0.7,
        (false, false) => return None,
    };
    Some((T::BankCard, confidence))
}

fn postal_code(sc: &Scan, start: usize, d: &[u8], lens: &[usize]) -> Option<(T, f32)> {
    (lens == [6] && d[0] != b'9' && sc.gated(start, T::PostalCode, 20, Ctx::Postal))
        .then_some((T::PostalCode, 0.8))
}

/// The GB 11714 organisation code inside a USCC (characters 9 to 17, check last).
fn organisation_code_ok(code: &[u8]) -> bool {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let org = &code[8..17];
    let mut sum = 0;
    for (&c, w) in org[..8].iter().zip(WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        sum += v * w;
    }
    let expected = match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        c => b'0' + c as u8,
    };
    org[8] == expected
}

/// An 18-character word that passes the USCC check: how sure it is a USCC.
///
/// Upper case is how codes are printed; a code typed or exported in lower case
/// (`91350100m000100y43`) is the same code, but a lowercase 18-character hex or base-32
/// id passes the check character one time in 31, so it must also pass the embedded
/// organisation code's check and carry a real region code (digits 3 to 8, a province
/// prefix), or have a context word before it. Mixed case is never a printed code.
fn uscc_word(sc: &Scan, i: usize, w: &[u8]) -> Option<(T, f32)> {
    let lower = w.iter().any(u8::is_ascii_lowercase);
    let upper = w.iter().any(u8::is_ascii_uppercase);
    let mut code = [0u8; 18];
    code.copy_from_slice(w);
    code.make_ascii_uppercase();
    let org_ok = organisation_code_ok(&code);
    let gated = || sc.gated(i, T::Uscc, 30, Ctx::Uscc);
    match (lower, upper) {
        (false, _) if org_ok => Some((T::Uscc, 0.95)),
        (true, false) if org_ok && uscc_region_ok(&code) => Some((T::Uscc, 0.9)),
        _ => gated().then_some((T::Uscc, 0.7)),
    }
}

/// Whether characters 3 to 8 of a USCC are a region code: six digits, a province first.
fn uscc_region_ok(code: &[u8]) -> bool {
    let region = &code[2..8];
    region.iter().all(u8::is_ascii_digit)
        && matches!(
            (region[0] - b'0') * 10 + (region[1] - b'0'),
            11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82
        )
}

/// A word of letters and digits at `i..j`; returns its end if it was a value.
pub(super) fn alnum(sc: &mut Scan, i: usize, j: usize) -> Option<usize> {
    let s = sc.s;
    if let Some(end) = plate(sc, i, j) {
        return Some(end);
    }
    if glued_before(s, i) || glued_after(s, j) {
        return None;
    }
    let w = ascii(sc.t, i, j);
    let len = j - i;
    // `A123456(3)`: the parenthesised check character marks a Hong Kong id.
    if (7..=8).contains(&len)
        && s.get(j) == Some(&b'(')
        && s.get(j + 2) == Some(&b')')
        && validate::hk_id(ascii(sc.t, i, j + 3)).is_ok()
    {
        let confidence = if sc.context(i, 30, Ctx::HkId) {
            0.9
        } else {
            0.85
        };
        sc.push(i, j + 3, T::HkId, confidence);
        return Some(j + 3);
    }
    let found = if len == 18 && validate::uscc_bytes(w).is_ok() {
        uscc_word(sc, i, w.as_bytes())
    } else if len == 10 && validate::tw_id(w).is_ok() {
        Some((
            T::TwId,
            if sc.gated(i, T::TwId, 30, Ctx::TwId) {
                0.9
            } else {
                0.7
            },
        ))
    } else if len == 9
        && validate::passport(w).is_ok()
        && sc.gated(i, T::CnPassport, 30, Ctx::Passport)
    {
        Some((T::CnPassport, 0.85))
    } else if matches!(len, 9 | 11)
        && validate::hk_macau_permit(w).is_ok()
        && sc.gated(i, T::HkMacauPermit, 30, Ctx::Permit)
    {
        Some((T::HkMacauPermit, 0.85))
    } else if (8..=9).contains(&len)
        && validate::hk_id(w).is_ok()
        && sc.gated(i, T::HkId, 30, Ctx::HkId)
    {
        Some((T::HkId, 0.8))
    } else {
        None
    };
    let (ty, confidence) = found?;
    sc.push(i, j, ty, confidence);
    Some(j)
}

/// A licence plate whose serial starts with the letter word at `i..j`: `京A12345`,
/// `京A·12345`, `沪AD12345`.
pub(super) fn plate(sc: &mut Scan, i: usize, j: usize) -> Option<usize> {
    let s = sc.s;
    if !s[i].is_ascii_alphabetic() {
        return None;
    }
    // The province character, directly before or before one separator.
    let province_end = [0usize, 1, 2, 3].into_iter().find_map(|sep| {
        let at = i.checked_sub(sep)?;
        let ok_sep = match sep {
            0 => true,
            1 => matches!(s[at], b' ' | b'-'),
            2 => s[at..i] == *"·".as_bytes(),
            _ => s[at..i] == *"•".as_bytes() || s[at..i] == *"・".as_bytes(),
        };
        (ok_sep && ideograph_before(s, at).is_some_and(|c| PLATE_PROVINCES.contains(c)))
            .then_some(at)
    })?;
    let start = province_end - 3;
    let (serial_start, end) = if j - i == 1 {
        let k = j + [" ", "-", "·", "•", "・"]
            .iter()
            .find(|sep| s[j..].starts_with(sep.as_bytes()))?
            .len();
        let mut m = k;
        while m < s.len() && s[m].is_ascii_alphanumeric() {
            m += 1;
        }
        (k, m)
    } else {
        (i + 1, j)
    };
    let serial = &s[serial_start..end];
    let digits = serial.iter().filter(|b| b.is_ascii_digit()).count();
    let shaped = match serial.len() {
        5 => digits >= 3,
        6 => {
            digits >= 4
                && (matches!(serial[0], b'D' | b'F' | b'd' | b'f')
                    || matches!(serial[5], b'D' | b'F' | b'd' | b'f'))
        }
        _ => false,
    };
    if !shaped || glued_after(s, end) {
        return None;
    }
    let text = std::str::from_utf8(&s[start..end]).ok()?;
    validate::license_plate(text).ok()?;
    sc.push(start, end, T::CnLicensePlate, 0.85);
    Some(end)
}
