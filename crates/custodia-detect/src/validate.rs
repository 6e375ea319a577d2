//! Validators: whatever an operator typed, to one canonical string or a refusal.
//!
//! The canonical string is what gets encrypted and what blind indexes are computed on, so
//! every surface form of a value (`+86 138-1234-5678`, full-width digits, a lowercase `x`)
//! must meet here, or an exact-match search and a `unique` constraint would silently miss.
//! Check digits and calendar dates are verified because a typo caught at write time is far
//! cheaper than a wrong customer found later. Every input is first width-folded and
//! trimmed. Reasons are `&'static str` constants, so a refused value cannot leak through an
//! error, a log line or an API response. The digit-string validators collect into fixed
//! buffers: they run on every write and will run in the scanner's inner loop.

use crate::civil::Date;
use crate::{fold_width, Invalid};
use std::net::{Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------------------
// Shared helpers

fn ascii_string(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // One copy (collecting `char`s pushed them one at a time).
        return String::from_utf8_lossy(bytes).into_owned();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The value of a run of ASCII digits (callers pass at most 9).
fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |n, &d| n * 10 + u32::from(d.wrapping_sub(b'0')))
}

fn all_digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

/// Folded, trimmed `raw` as uppercase ASCII letters and digits in `buf`; `None` if it holds
/// anything else or does not fit.
fn upper_alnum<'b>(raw: &str, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let folded = fold_width(raw);
    let mut len = 0;
    for c in folded.trim().chars() {
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        *buf.get_mut(len)? = c.to_ascii_uppercase() as u8;
        len += 1;
    }
    Some(&buf[..len])
}

const DATE_UNREAL: Invalid = Invalid("birth date is not a real calendar date");
const DATE_EARLY: Invalid = Invalid("birth date is before 1900");
const DATE_FUTURE: Invalid = Invalid("birth date is in the future");

fn birth_date(year: u32, month: u32, day: u32) -> Result<Date, Invalid> {
    let year = i32::try_from(year).map_err(|_| DATE_UNREAL)?;
    let date = Date::new(year, month, day).ok_or(DATE_UNREAL)?;
    if year < 1900 {
        return Err(DATE_EARLY);
    }
    if !date.not_after_today() {
        return Err(DATE_FUTURE);
    }
    Ok(date)
}

// ---------------------------------------------------------------------------------------
// Resident identity card number, GB 11643-1999

const ID_LEN: Invalid = Invalid("resident id must have 18 characters");
const ID_CHARS: Invalid = Invalid("resident id may contain only digits and a final X");
const ID_PROVINCE: Invalid = Invalid("resident id starts with an unknown province code");
const ID_CHECK: Invalid = Invalid("resident id check character does not match");

fn is_province_code(code: u32) -> bool {
    matches!(
        code,
        11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82
    )
}

/// The ISO 7064 MOD 11-2 check character of the first 17 digits of a resident id.
pub(crate) fn resident_id_check(first17: &[u8]) -> u8 {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// A mainland resident identity card number: 18 characters, known province, real birth
/// date between 1900 and today, valid check character. Spaces and dashes between groups
/// are dropped and `x` is uppercased.
pub fn resident_id(raw: &str) -> Result<String, Invalid> {
    resident_id_bytes(raw).map(|id| ascii_string(&id))
}

/// [`resident_id`] without the allocation: the canonical characters.
pub(crate) fn resident_id_bytes(raw: &str) -> Result<[u8; 18], Invalid> {
    let b = raw.as_bytes();
    let mut id = [0u8; 18];
    // Already 18 plain characters (what the scanner hands over): no folding, no walk.
    if b.len() == 18
        && b[..17].iter().all(u8::is_ascii_digit)
        && matches!(b[17], b'0'..=b'9' | b'X' | b'x')
    {
        id.copy_from_slice(b);
        id[17] = id[17].to_ascii_uppercase();
        return resident_id_checks(id);
    }
    let folded = fold_width(raw);
    let mut len = 0;
    for c in folded.trim().chars() {
        let b = match c {
            ' ' | '-' => continue,
            '0'..='9' => c as u8,
            'X' | 'x' => b'X',
            _ => return Err(ID_CHARS),
        };
        *id.get_mut(len).ok_or(ID_LEN)? = b;
        len += 1;
    }
    if len != id.len() {
        return Err(ID_LEN);
    }
    resident_id_checks(id)
}

/// The checks of an 18-character resident id after its separators are dropped.
fn resident_id_checks(id: [u8; 18]) -> Result<[u8; 18], Invalid> {
    if !all_digits(&id[..17]) {
        return Err(ID_CHARS);
    }
    if !is_province_code(number(&id[..2])) {
        return Err(ID_PROVINCE);
    }
    birth_date(number(&id[6..10]), number(&id[10..12]), number(&id[12..14]))?;
    if resident_id_check(&id[..17]) != id[17] {
        return Err(ID_CHECK);
    }
    Ok(id)
}

// ---------------------------------------------------------------------------------------
// Mobile number

const MOBILE_LEN: Invalid = Invalid("mobile number must have 11 digits after an optional +86");
const MOBILE_CHARS: Invalid =
    Invalid("mobile number may contain only digits, a leading + and separators");
const MOBILE_PREFIX: Invalid = Invalid("mobile number prefix is not allocated to a carrier");

/// Whether the first three digits of a mobile number belong to a carrier's number block.
pub(crate) fn is_mobile_prefix(prefix: u32) -> bool {
    matches!(
        prefix,
        130..=139
            | 145..=149
            | 150..=153
            | 155..=159
            | 162
            | 165..=167
            | 170..=178
            | 180..=189
            | 190..=193
            | 195..=199
    )
}

/// A mainland mobile number: 11 digits with an allocated prefix, optionally after
/// `+86`, `0086` or `86`, with spaces, dashes, dots or parentheses anywhere.
pub fn mobile(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let mut buf = [0u8; 15];
    let mut len = 0;
    let mut plus = false;
    for c in folded.trim().chars() {
        match c {
            '0'..='9' => {
                *buf.get_mut(len).ok_or(MOBILE_LEN)? = c as u8;
                len += 1;
            }
            '+' if len == 0 && !plus => plus = true,
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(MOBILE_CHARS),
        }
    }
    let digits = match (&buf[..len], plus) {
        ([b'8', b'6', rest @ ..], _) if rest.len() == 11 => rest,
        ([b'0', b'0', b'8', b'6', rest @ ..], false) if rest.len() == 11 => rest,
        (all, false) if all.len() == 11 => all,
        _ => return Err(MOBILE_LEN),
    };
    if !is_mobile_prefix(number(&digits[..3])) {
        return Err(MOBILE_PREFIX);
    }
    Ok(ascii_string(digits))
}

// ---------------------------------------------------------------------------------------
// Landline number

const LANDLINE_CHARS: Invalid =
    Invalid("landline number may contain only digits, a leading + and separators");
const LANDLINE_COUNTRY: Invalid = Invalid("landline number country code must be +86");
const LANDLINE_AREA: Invalid = Invalid("landline number must start with a valid area code");
const LANDLINE_LEN: Invalid =
    Invalid("landline number must have 7 or 8 digits after the area code");

/// A mainland landline number: area code (`010`, `02X`, or `0` + 3 digits) and a 7 or
/// 8 digit local number, optionally after `+86` or `0086` (where the area code's trunk
/// `0` is usually dropped). Canonical form `0AA-NNNNNNNN`.
pub fn landline(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let mut buf = [0u8; 16];
    let mut len = 0;
    let mut plus = false;
    for c in folded.trim().chars() {
        match c {
            '0'..='9' => {
                *buf.get_mut(len).ok_or(LANDLINE_LEN)? = c as u8;
                len += 1;
            }
            '+' if len == 0 && !plus => plus = true,
            ' ' | '-' | '(' | ')' => {}
            _ => return Err(LANDLINE_CHARS),
        }
    }
    let digits = &buf[..len];
    let national = if plus {
        Some(digits.strip_prefix(b"86").ok_or(LANDLINE_COUNTRY)?)
    } else {
        digits.strip_prefix(b"0086")
    };
    // The national number with its trunk 0, which an international form usually drops.
    let mut full = [0u8; 17];
    let mut full_len = 0;
    if national.is_some_and(|rest| rest.first() != Some(&b'0')) {
        full[0] = b'0';
        full_len = 1;
    }
    let rest = national.unwrap_or(digits);
    full[full_len..full_len + rest.len()].copy_from_slice(rest);
    full_len += rest.len();
    let full = &full[..full_len];
    if full.len() < 3 || full[0] != b'0' {
        return Err(LANDLINE_AREA);
    }
    let area_len = match (full[1], full[2]) {
        (b'1', b'0') | (b'2', _) => 3,
        (b'3'..=b'9', _) => 4,
        _ => return Err(LANDLINE_AREA),
    };
    let local = full.get(area_len..).ok_or(LANDLINE_LEN)?;
    if !(7..=8).contains(&local.len()) {
        return Err(LANDLINE_LEN);
    }
    let mut out = String::with_capacity(full.len() + 1);
    out.extend(full[..area_len].iter().map(|&b| char::from(b)));
    out.push('-');
    out.extend(local.iter().map(|&b| char::from(b)));
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Bank card number

const CARD_LEN: Invalid = Invalid("bank card number must have 12 to 19 digits");
const CARD_CHARS: Invalid = Invalid("bank card number may contain only digits and separators");
const CARD_LUHN: Invalid = Invalid("bank card number fails the Luhn check");

/// The Luhn check digit to append to `body`.
pub(crate) fn luhn_check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b.wrapping_sub(b'0'));
            match (i % 2 == 0, d * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => d,
            }
        })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// A payment card number: 12 to 19 digits passing the Luhn check, spaces and dashes
/// allowed.
pub fn bank_card(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let mut buf = [0u8; 19];
    let mut len = 0;
    for c in folded.trim().chars() {
        match c {
            '0'..='9' => {
                *buf.get_mut(len).ok_or(CARD_LEN)? = c as u8;
                len += 1;
            }
            ' ' | '-' => {}
            _ => return Err(CARD_CHARS),
        }
    }
    if len < 12 {
        return Err(CARD_LEN);
    }
    let (check, body) = buf[..len].split_last().ok_or(CARD_LEN)?;
    if luhn_check_digit(body) != *check {
        return Err(CARD_LUHN);
    }
    Ok(ascii_string(&buf[..len]))
}

// ---------------------------------------------------------------------------------------
// Unified social credit code, GB 32100-2015

const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_LEN: Invalid = Invalid("unified social credit code must have 18 characters");
const USCC_CHARS: Invalid =
    Invalid("unified social credit code may contain only digits and letters other than I O S V Z");
const USCC_AUTHORITY: Invalid =
    Invalid("unified social credit code has an unknown registration authority");
const USCC_CHECK: Invalid = Invalid("unified social credit code check character does not match");

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character of the first 17 characters of a USCC; `None` if one is outside
/// the USCC alphabet.
pub(crate) fn uscc_check(first17: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let mut sum = 0;
    for (&c, w) in first17.iter().zip(WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    Some(USCC_ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// An organisation's unified social credit code: 18 characters of the USCC alphabet, a
/// known registration authority, valid check character. Uppercased.
pub fn uscc(raw: &str) -> Result<String, Invalid> {
    uscc_bytes(raw).map(|code| ascii_string(&code))
}

/// [`uscc`] without the allocation: the canonical (uppercase) characters.
pub(crate) fn uscc_bytes(raw: &str) -> Result<[u8; 18], Invalid> {
    let folded = fold_width(raw);
    let mut buf = [0u8; 18];
    let mut len = 0;
    for c in folded.trim().chars() {
        let upper = c.to_ascii_uppercase();
        if !upper.is_ascii() || uscc_value(upper as u8).is_none() {
            return Err(USCC_CHARS);
        }
        *buf.get_mut(len).ok_or(USCC_LEN)? = upper as u8;
        len += 1;
    }
    if len != buf.len() {
        return Err(USCC_LEN);
    }
    let code = &buf;
    if !matches!(code[0], b'1'..=b'9' | b'A'..=b'G' | b'Y') {
        return Err(USCC_AUTHORITY);
    }
    if uscc_check(&code[..17]) != Some(code[17]) {
        return Err(USCC_CHECK);
    }
    Ok(buf)
}

// ---------------------------------------------------------------------------------------
// Email address

const EMAIL_LEN: Invalid = Invalid("email address must be at most 254 characters");
const EMAIL_AT: Invalid = Invalid("email address must contain exactly one @");
const EMAIL_LOCAL: Invalid = Invalid(
    "email local part must be 1 to 64 of letters, digits and ._%+- without a leading, trailing or double dot",
);
const EMAIL_DOMAIN: Invalid = Invalid(
    "email domain must be at least two labels of letters, digits and inner hyphens, ending in an alphabetic top-level domain",
);

fn is_domain_label(label: &[u8]) -> bool {
    (1..=63).contains(&label.len())
        && label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        && label.first() != Some(&b'-')
        && label.last() != Some(&b'-')
}

/// An email address of the shape banks accept in practice (not all of RFC 5322: no
/// quoted local parts, no IP literals, no internationalised domains). Lowercased whole,
/// because mail providers in China treat the local part case-insensitively and a blind
/// index must not tell `Zhang@` from `zhang@`.
pub fn email(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let s = folded.trim();
    email_shape(s)?;
    Ok(s.to_ascii_lowercase())
}

/// Whether `raw` is an email address [`email`] accepts, without building its canonical
/// form (the scanner checks every `@` it meets).
pub fn email_ok(raw: &str) -> bool {
    email_shape(fold_width(raw).trim()).is_ok()
}

/// The checks of [`email`] on folded, trimmed text.
fn email_shape(s: &str) -> Result<(), Invalid> {
    if s.len() > 254 {
        return Err(EMAIL_LEN);
    }
    let (local, domain) = s.split_once('@').ok_or(EMAIL_AT)?;
    if domain.contains('@') {
        return Err(EMAIL_AT);
    }
    let local_ok = (1..=64).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err(EMAIL_LOCAL);
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.as_bytes().split(|&b| b == b'.') {
        if !is_domain_label(label) {
            return Err(EMAIL_DOMAIN);
        }
        labels += 1;
        last = label;
    }
    if labels < 2 || last.len() < 2 || !last.iter().all(u8::is_ascii_alphabetic) {
        return Err(EMAIL_DOMAIN);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Free text: names and addresses

const TEXT_CONTROL: Invalid = Invalid("text contains a control or invisible formatting character");
const NAME_LEN: Invalid = Invalid("name must have 1 to 40 characters");
const NAME_DIGIT: Invalid = Invalid("name may not contain digits");
const NAME_AT: Invalid = Invalid("name may not contain @");
const ADDRESS_LEN: Invalid = Invalid("address must have 2 to 200 characters");

/// Characters that render as nothing but would make two identical-looking values differ
/// (and so miss each other in a blind index), or reorder the display.
/// Zero-width and bidirectional format characters: invisible, so refused in text fields.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Folded, trimmed text with whitespace runs collapsed to one space, and its length in
/// characters; refuses control characters, invisible formatting characters, what
/// `forbidden` refuses and texts longer than `max_chars`.
fn clean_text(
    raw: &str,
    max_chars: usize,
    too_long: Invalid,
    forbidden: impl Fn(char) -> Option<Invalid>,
) -> Result<(String, usize), Invalid> {
    let folded = fold_width(raw);
    let trimmed = folded.trim();
    let mut out = String::with_capacity(trimmed.len());
    let mut count = 0;
    let mut gap = false;
    for c in trimmed.chars() {
        if c.is_whitespace() {
            gap = true;
            continue;
        }
        if c.is_control() || is_invisible_format(c) {
            return Err(TEXT_CONTROL);
        }
        if let Some(reason) = forbidden(c) {
            return Err(reason);
        }
        if gap {
            out.push(' ');
            count += 1;
            gap = false;
        }
        out.push(c);
        count += 1;
        if count > max_chars {
            return Err(too_long);
        }
    }
    Ok((out, count))
}

/// What [`clean_text`] accepts, without building the text: its length in characters.
fn text_len(
    raw: &str,
    max_chars: usize,
    too_long: Invalid,
    forbidden: impl Fn(char) -> Option<Invalid>,
) -> Result<usize, Invalid> {
    let folded = fold_width(raw);
    let mut count = 0;
    let mut gap = false;
    for c in folded.trim().chars() {
        if c.is_whitespace() {
            gap = true;
            continue;
        }
        if c.is_control() || is_invisible_format(c) {
            return Err(TEXT_CONTROL);
        }
        if let Some(reason) = forbidden(c) {
            return Err(reason);
        }
        count += 1 + usize::from(std::mem::take(&mut gap));
        if count > max_chars {
            return Err(too_long);
        }
    }
    Ok(count)
}

fn name_char(c: char) -> Option<Invalid> {
    match c {
        '0'..='9' => Some(NAME_DIGIT),
        '@' => Some(NAME_AT),
        _ => None,
    }
}

/// Whether [`person_name`] accepts `raw` (without building the cleaned name).
pub fn person_name_ok(raw: &str) -> bool {
    text_len(raw, 40, NAME_LEN, name_char).is_ok_and(|n| n > 0)
}

/// Whether [`address`] accepts `raw` (without building the cleaned address).
pub fn address_ok(raw: &str) -> bool {
    text_len(raw, 200, ADDRESS_LEN, |_| None).is_ok_and(|n| n >= 2)
}

/// A person's name: 1 to 40 characters, no digits, no `@`, whitespace collapsed.
pub fn person_name(raw: &str) -> Result<String, Invalid> {
    let (name, count) = clean_text(raw, 40, NAME_LEN, name_char)?;
    if count == 0 {
        return Err(NAME_LEN);
    }
    Ok(name)
}

/// A postal address: 2 to 200 characters, whitespace collapsed.
pub fn address(raw: &str) -> Result<String, Invalid> {
    let (address, count) = clean_text(raw, 200, ADDRESS_LEN, |_| None)?;
    if count < 2 {
        return Err(ADDRESS_LEN);
    }
    Ok(address)
}

// ---------------------------------------------------------------------------------------
// IP addresses

const IPV4: Invalid = Invalid("not a valid IPv4 address");
const IPV6: Invalid = Invalid("not a valid IPv6 address");

/// An IPv4 address in dotted-quad form.
pub fn ipv4(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let ip: Ipv4Addr = folded.trim().parse().map_err(|_| IPV4)?;
    Ok(ip.to_string())
}

/// Whether [`ipv4`] accepts `raw`, without formatting it.
pub(crate) fn ipv4_ok(raw: &str) -> bool {
    fold_width(raw).trim().parse::<Ipv4Addr>().is_ok()
}

/// Whether [`ipv6`] accepts `raw`, without formatting it.
pub(crate) fn ipv6_ok(raw: &str) -> bool {
    fold_width(raw).trim().parse::<Ipv6Addr>().is_ok()
}

/// An IPv6 address; canonical is the RFC 5952 form (lowercase, longest zero run as `::`).
pub fn ipv6(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let ip: Ipv6Addr = folded.trim().parse().map_err(|_| IPV6)?;
    Ok(ip.to_string())
}

// ---------------------------------------------------------------------------------------
// Travel documents

const PASSPORT: Invalid =
    Invalid("passport number must be E or G and 8 digits, or E, a letter and 7 digits");
const PERMIT: Invalid = Invalid(
    "permit number must be C and 8 digits, C, a letter and 7 digits, or H or M and 8 or 10 digits",
);
const HK_ID_FORMAT: Invalid = Invalid(
    "Hong Kong identity card number must be 1 or 2 letters, 6 digits and a check character",
);
const HK_ID_CHECK: Invalid = Invalid("Hong Kong identity card check character does not match");
const TW_ID_FORMAT: Invalid =
    Invalid("Taiwan identity card number must be a letter, 1 or 2 and 8 digits");
const TW_ID_CHECK: Invalid = Invalid("Taiwan identity card check digit does not match");

/// A PRC ordinary passport number (`E12345678`, `G12345678`, `EA1234567`). Uppercased.
pub fn passport(raw: &str) -> Result<String, Invalid> {
    let mut buf = [0u8; 9];
    let id = upper_alnum(raw, &mut buf).ok_or(PASSPORT)?;
    let ok = match id {
        [b'E' | b'G', rest @ ..] if rest.len() == 8 && all_digits(rest) => true,
        [b'E', letter, rest @ ..] => {
            letter.is_ascii_uppercase() && rest.len() == 7 && all_digits(rest)
        }
        _ => false,
    };
    if !ok {
        return Err(PASSPORT);
    }
    Ok(ascii_string(id))
}

/// A Mainland Travel Permit for Hong Kong and Macao (`C12345678`, `CA1234567`) or a
/// Home Return Permit (`H`/`M` and 8 or 10 digits). Uppercased.
pub fn hk_macau_permit(raw: &str) -> Result<String, Invalid> {
    let mut buf = [0u8; 11];
    let id = upper_alnum(raw, &mut buf).ok_or(PERMIT)?;
    let ok = match id {
        [b'C', rest @ ..] if rest.len() == 8 => {
            all_digits(rest) || (rest[0].is_ascii_uppercase() && all_digits(&rest[1..]))
        }
        [b'H' | b'M', rest @ ..] => (rest.len() == 8 || rest.len() == 10) && all_digits(rest),
        _ => false,
    };
    if !ok {
        return Err(PERMIT);
    }
    Ok(ascii_string(id))
}

/// The check character of a Hong Kong identity card: `letters` (1 or 2 uppercase) and
/// 6 digits.
pub(crate) fn hk_id_check(letters: &[u8], digits: &[u8]) -> u8 {
    let value = |c: u8| u32::from(c - b'A') + 10;
    // A single-letter id counts as if led by a space, whose value is 36.
    let (first, second) = match letters {
        [a, b] => (value(*a), value(*b)),
        [b] => (36, value(*b)),
        _ => (0, 0),
    };
    let mut sum = first * 9 + second * 8;
    for (&d, w) in digits.iter().zip((2..=7).rev()) {
        sum += u32::from(d.wrapping_sub(b'0')) * w;
    }
    match (11 - sum % 11) % 11 {
        10 => b'A',
        c => b'0' + c as u8,
    }
}

/// A Hong Kong identity card number, `A123456(3)` or `A1234563`. Canonical without the
/// parentheses, which are print style, uppercased.
pub fn hk_id(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let s = folded.trim().as_bytes();
    let (body, check) = match s {
        [body @ .., b'(', check, b')'] => (body, *check),
        [body @ .., check] => (body, *check),
        [] => return Err(HK_ID_FORMAT),
    };
    let letter_count = body.len().checked_sub(6).ok_or(HK_ID_FORMAT)?;
    let (letters, digits) = body.split_at(letter_count);
    if !(1..=2).contains(&letters.len())
        || !letters.iter().all(u8::is_ascii_alphabetic)
        || !all_digits(digits)
    {
        return Err(HK_ID_FORMAT);
    }
    let mut id = [0u8; 9];
    let len = body.len() + 1;
    for (slot, &c) in id.iter_mut().zip(body) {
        *slot = c.to_ascii_uppercase();
    }
    id[body.len()] = check.to_ascii_uppercase();
    if !matches!(id[body.len()], b'0'..=b'9' | b'A') {
        return Err(HK_ID_FORMAT);
    }
    if hk_id_check(&id[..letter_count], digits) != id[body.len()] {
        return Err(HK_ID_CHECK);
    }
    Ok(ascii_string(&id[..len]))
}

/// The two-digit area codes of Taiwan identity card letters, A to Z.
const TW_LETTER_CODES: [u32; 26] = [
    10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21, 22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30,
    31, 33,
];

/// Whether the weighted sum of a Taiwan identity card number is a multiple of 10.
pub(crate) fn tw_id_checks(id: &[u8]) -> bool {
    let Some((&letter, digits)) = id.split_first() else {
        return false;
    };
    let code = TW_LETTER_CODES[usize::from(letter.wrapping_sub(b'A')) % 26];
    let mut sum = code / 10 + (code % 10) * 9;
    for (&d, w) in digits.iter().zip([8, 7, 6, 5, 4, 3, 2, 1, 1]) {
        sum += u32::from(d.wrapping_sub(b'0')) * w;
    }
    // Not `is_multiple_of`: the workspace supports Rust 1.80.
    let remainder = sum % 10;
    remainder == 0
}

/// A Taiwan identity card number: letter, `1` or `2`, 8 digits (the last a check digit).
/// Uppercased.
pub fn tw_id(raw: &str) -> Result<String, Invalid> {
    let mut buf = [0u8; 10];
    let id = upper_alnum(raw, &mut buf).ok_or(TW_ID_FORMAT)?;
    let ok = match id {
        [letter, b'1' | b'2', rest @ ..] => {
            letter.is_ascii_uppercase() && rest.len() == 8 && all_digits(rest)
        }
        _ => false,
    };
    if !ok {
        return Err(TW_ID_FORMAT);
    }
    if !tw_id_checks(id) {
        return Err(TW_ID_CHECK);
    }
    Ok(ascii_string(id))
}

// ---------------------------------------------------------------------------------------
// Licence plate, postal code, date of birth

/// Province abbreviations that begin a mainland licence plate.
pub(crate) const PLATE_PROVINCES: &str =
    "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
const PLATE_PROVINCE: Invalid = Invalid("licence plate must start with a province abbreviation");
const PLATE_FORMAT: Invalid =
    Invalid("licence plate must have a letter and 5 or 6 letters or digits after the province");

/// A mainland licence plate: province abbreviation, a letter, then 5 (ordinary) or 6
/// (new energy) letters or digits. Separators `·` ` ` `-` are dropped, letters uppercased.
pub fn license_plate(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let mut chars = folded
        .trim()
        .chars()
        .filter(|c| !matches!(c, '·' | '•' | '・' | ' ' | '-'));
    let province = chars
        .next()
        .filter(|&c| PLATE_PROVINCES.contains(c))
        .ok_or(PLATE_PROVINCE)?;
    let mut plate = String::with_capacity(province.len_utf8() + 7);
    plate.push(province);
    let mut serial_len = 0;
    for c in chars {
        let allowed = if serial_len == 0 {
            c.is_ascii_alphabetic()
        } else {
            c.is_ascii_alphanumeric()
        };
        if !allowed || serial_len == 7 {
            return Err(PLATE_FORMAT);
        }
        plate.push(c.to_ascii_uppercase());
        serial_len += 1;
    }
    if serial_len < 6 {
        return Err(PLATE_FORMAT);
    }
    Ok(plate)
}

const POSTAL: Invalid = Invalid("postal code must be 6 digits not starting with 9");

/// A mainland postal code: 6 digits, the first 0 to 8.
pub fn postal_code(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let s = folded.trim().as_bytes();
    if s.len() != 6 || !all_digits(s) || s[0] == b'9' {
        return Err(POSTAL);
    }
    Ok(ascii_string(s))
}

const DATE_FORMAT: Invalid = Invalid("date of birth must be YYYY-MM-DD, YYYYMMDD or YYYY/MM/DD");

/// A date of birth: `YYYY-MM-DD`, `YYYYMMDD`, `YYYY/MM/DD` (also `YYYY.MM.DD` and
/// `YYYY年MM月DD日`, month and day with or without a leading zero), a real day between 1900
/// and today. Canonical `YYYY-MM-DD`.
pub fn date_of_birth(raw: &str) -> Result<String, Invalid> {
    let folded = fold_width(raw);
    let s = folded.trim();
    let s = s.strip_suffix('日').unwrap_or(s);
    // (value, digit count) of up to three digit groups.
    let mut groups = [(0u32, 0usize); 3];
    let mut g = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => {
                let group = &mut groups[g];
                if group.1 == 8 {
                    return Err(DATE_FORMAT);
                }
                group.0 = group.0 * 10 + (c as u32 - '0' as u32);
                group.1 += 1;
            }
            '-' | '/' | '.' | '年' | '月' if groups[g].1 > 0 && g < 2 => g += 1,
            _ => return Err(DATE_FORMAT),
        }
    }
    let (year, month, day) = match (g, groups) {
        (0, [(v, 8), _, _]) => (v / 10_000, v / 100 % 100, v % 100),
        (2, [(y, 4), (m, 1..=2), (d, 1..=2)]) => (y, m, d),
        _ => return Err(DATE_FORMAT),
    };
    Ok(birth_date(year, month, day)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resident id with a correct check character, computed independently of
    /// `resident_id_check`.
    fn make_id(first17: &str) -> String {
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = first17
            .chars()
            .zip(weights)
            .map(|(c, w)| c.to_digit(10).unwrap() * w)
            .sum();
        let check = "10X98765432".chars().nth((sum % 11) as usize).unwrap();
        format!("{first17}{check}")
    }

    fn ymd(date: Date) -> String {
        format!("{:04}{:02}{:02}", date.year, date.month, date.day)
    }

    #[test]
    fn resident_id_accepts_surface_forms() {
        for raw in [
            "11010519491231002X",
            "11010519491231002x",
            "110105 19491231 002X",
            "110105-19491231-002x",
            "  11010519491231002X\t",
            "１１０１０５１９４９１２３１００２Ｘ",
            "１１０１０５　１９４９１２３１　００２ｘ",
        ] {
            assert_eq!(resident_id(raw).as_deref(), Ok("11010519491231002X"));
        }
        let other = make_id("44030519880808123");
        assert_eq!(resident_id(&other).as_deref(), Ok(other.as_str()));
    }

    #[test]
    fn resident_id_check_matches_independent_computation() {
        for first17 in [
            "11010519491231002",
            "31011519800101001",
            "51010720000229888",
            "65010219700615555",
            "82000019991231000",
        ] {
            let id = make_id(first17);
            assert_eq!(resident_id(&id).as_deref(), Ok(id.as_str()));
            let last = id.as_bytes()[17];
            assert_eq!(resident_id_check(&id.as_bytes()[..17]), last);
        }
    }

    #[test]
    fn resident_id_rejects_hard_negatives() {
        assert_eq!(resident_id("110105194912310021"), Err(ID_CHECK));
        assert_eq!(resident_id("11010519491231002"), Err(ID_LEN));
        assert_eq!(resident_id("11010519491231002X1"), Err(ID_LEN));
        assert_eq!(resident_id(""), Err(ID_LEN));
        assert_eq!(resident_id("1101051949123100X2"), Err(ID_CHARS));
        assert_eq!(resident_id("11010519491231002Y"), Err(ID_CHARS));
        assert_eq!(resident_id("110105/19491231/002X"), Err(ID_CHARS));
        assert_eq!(resident_id(&make_id("99010519491231002")), Err(ID_PROVINCE));
        assert_eq!(resident_id(&make_id("16010519491231002")), Err(ID_PROVINCE));
        assert_eq!(resident_id(&make_id("11010519900230123")), Err(DATE_UNREAL));
        assert_eq!(resident_id(&make_id("11010519000229123")), Err(DATE_UNREAL));
        assert_eq!(resident_id(&make_id("11010519901301123")), Err(DATE_UNREAL));
        assert_eq!(resident_id(&make_id("11010518991231123")), Err(DATE_EARLY));
        let tomorrow = Date::from_days(Date::today().days() + 1);
        let future = make_id(&format!("110105{}123", ymd(tomorrow)));
        assert_eq!(resident_id(&future), Err(DATE_FUTURE));
        let today = make_id(&format!("110105{}123", ymd(Date::today())));
        assert!(resident_id(&today).is_ok());
        assert!(resident_id(&make_id("11010520000229123")).is_ok());
    }

    #[test]
    fn mobile_accepts_surface_forms() {
        for raw in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "138.1234.5678",
            "+86 138-1234-5678",
            "+8613812345678",
            "(+86) 138 1234 5678",
            "0086 138 1234 5678",
            "8613812345678",
            "86 138 1234 5678",
            "１３８１２３４５６７８",
            "＋８６　１３８－１２３４－５６７８",
        ] {
            assert_eq!(mobile(raw).as_deref(), Ok("13812345678"));
        }
    }

    #[test]
    fn mobile_prefixes_are_exactly_the_allocated_blocks() {
        let allocated: Vec<u32> = (100..200)
            .filter(|p| mobile(&format!("{p}12345678")).is_ok())
            .collect();
        let mut expected: Vec<u32> = (130..=139).collect();
        expected.extend(145..=149);
        expected.extend(150..=153);
        expected.extend(155..=159);
        expected.push(162);
        expected.extend(165..=167);
        expected.extend(170..=178);
        expected.extend(180..=189);
        expected.extend(190..=193);
        expected.extend(195..=199);
        assert_eq!(allocated, expected);
    }

    #[test]
    fn mobile_rejects_hard_negatives() {
        assert_eq!(mobile("15412345678"), Err(MOBILE_PREFIX));
        assert_eq!(mobile("14012345678"), Err(MOBILE_PREFIX));
        assert_eq!(mobile("23812345678"), Err(MOBILE_PREFIX));
        assert_eq!(mobile("1381234567"), Err(MOBILE_LEN));
        assert_eq!(mobile("138123456789"), Err(MOBILE_LEN));
        assert_eq!(mobile("+87 13812345678"), Err(MOBILE_LEN));
        assert_eq!(mobile("+13812345678"), Err(MOBILE_LEN));
        assert_eq!(mobile("+0086 13812345678"), Err(MOBILE_LEN));
        assert_eq!(mobile("86 1381234567"), Err(MOBILE_LEN));
        assert_eq!(mobile("1381234567８9"), Err(MOBILE_LEN));
        assert_eq!(mobile("1381234567a"), Err(MOBILE_CHARS));
        assert_eq!(mobile("138 1234 5678 +"), Err(MOBILE_CHARS));
        assert_eq!(mobile("138/1234/5678"), Err(MOBILE_CHARS));
        assert_eq!(mobile(""), Err(MOBILE_LEN));
    }

    #[test]
    fn landline_accepts_surface_forms() {
        for raw in [
            "010-12345678",
            "01012345678",
            "(010) 1234 5678",
            "010 1234 5678",
            "+86 10 12345678",
            "+86 (0)10 1234-5678",
            "0086-10-12345678",
            "０１０－１２３４５６７８",
        ] {
            assert_eq!(landline(raw).as_deref(), Ok("010-12345678"));
        }
        assert_eq!(landline("020-8765 4321").as_deref(), Ok("020-87654321"));
        assert_eq!(landline("0311-8765432").as_deref(), Ok("0311-8765432"));
        assert_eq!(landline("0755 2345 6789").as_deref(), Ok("0755-23456789"));
        assert_eq!(landline("+86 755 23456789").as_deref(), Ok("0755-23456789"));
    }

    #[test]
    fn landline_rejects_hard_negatives() {
        assert_eq!(landline("12345678"), Err(LANDLINE_AREA));
        assert_eq!(landline("13812345678"), Err(LANDLINE_AREA));
        assert_eq!(landline("+86 138 1234 5678"), Err(LANDLINE_AREA));
        assert_eq!(landline("011-12345678"), Err(LANDLINE_AREA));
        assert_eq!(landline("000-12345678"), Err(LANDLINE_AREA));
        assert_eq!(landline("010-123456"), Err(LANDLINE_LEN));
        assert_eq!(landline("010-123456789"), Err(LANDLINE_LEN));
        assert_eq!(landline("0311-123456789"), Err(LANDLINE_LEN));
        assert_eq!(landline("010-12345678 ext 5"), Err(LANDLINE_CHARS));
        assert_eq!(landline("+1 010 12345678"), Err(LANDLINE_COUNTRY));
        assert_eq!(landline("0"), Err(LANDLINE_AREA));
        assert_eq!(landline(""), Err(LANDLINE_AREA));
        assert_eq!(landline("0".repeat(30).as_str()), Err(LANDLINE_LEN));
    }

    /// A Luhn-valid number with `body` in front, computed independently.
    fn make_card(body: &str) -> String {
        let sum: u32 = body
            .chars()
            .rev()
            .enumerate()
            .map(|(i, c)| {
                let d = c.to_digit(10).unwrap();
                if i % 2 == 0 {
                    (d * 2) / 10 + (d * 2) % 10
                } else {
                    d
                }
            })
            .sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    #[test]
    fn bank_card_accepts_surface_forms() {
        for raw in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "４１１１　１１１１　１１１１　１１１１",
        ] {
            assert_eq!(bank_card(raw).as_deref(), Ok("4111111111111111"));
        }
        for body in ["62220212345678901", "622848000000000000", "62258812345"] {
            let card = make_card(body);
            assert_eq!(bank_card(&card).as_deref(), Ok(card.as_str()));
        }
    }

    #[test]
    fn bank_card_rejects_hard_negatives() {
        assert_eq!(bank_card("4111111111111112"), Err(CARD_LUHN));
        assert_eq!(bank_card("4111111111111121"), Err(CARD_LUHN));
        let short = make_card("6222021234");
        assert_eq!(bank_card(&short), Err(CARD_LEN));
        let long = make_card("6222021234567890123");
        assert_eq!(bank_card(&long), Err(CARD_LEN));
        assert_eq!(bank_card("4111 1111 1111 111a"), Err(CARD_CHARS));
        assert_eq!(bank_card("4111.1111.1111.1111"), Err(CARD_CHARS));
        assert_eq!(bank_card(""), Err(CARD_LEN));
    }

    /// A USCC with a correct check character, computed independently.
    fn make_uscc(first17: &str) -> String {
        let alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY";
        let mut sum = 0;
        let mut weight = 1;
        for c in first17.chars() {
            sum += alphabet.find(c).unwrap() * weight;
            weight = weight * 3 % 31;
        }
        let check = alphabet.chars().nth((31 - sum % 31) % 31).unwrap();
        format!("{first17}{check}")
    }

    #[test]
    fn uscc_accepts_surface_forms() {
        for raw in [
            "91350100M000100Y43",
            "91350100m000100y43",
            " 91350100M000100Y43 ",
            "９１３５０１００Ｍ０００１００Ｙ４３",
        ] {
            assert_eq!(uscc(raw).as_deref(), Ok("91350100M000100Y43"));
        }
        for first17 in [
            "91110108MA01ABCD1",
            "52440300MJL12345X",
            "Y1110000000000000",
        ] {
            let code = make_uscc(first17);
            assert_eq!(uscc(&code).as_deref(), Ok(code.as_str()));
        }
    }

    #[test]
    fn uscc_rejects_hard_negatives() {
        assert_eq!(uscc("91350100M000100Y44"), Err(USCC_CHECK));
        assert_eq!(uscc("91350100M000100Y4"), Err(USCC_LEN));
        assert_eq!(uscc("91350100M000100Y433"), Err(USCC_LEN));
        assert_eq!(uscc("91350100M000100Y43333333"), Err(USCC_LEN));
        assert_eq!(uscc("91350100I000100Y43"), Err(USCC_CHARS));
        assert_eq!(uscc("91350100O000100Y43"), Err(USCC_CHARS));
        assert_eq!(uscc("91350100-000100Y43"), Err(USCC_CHARS));
        assert_eq!(uscc(&make_uscc("H1350100M000100Y4")), Err(USCC_AUTHORITY));
        assert_eq!(uscc(&make_uscc("01350100M000100Y4")), Err(USCC_AUTHORITY));
        assert_eq!(uscc(""), Err(USCC_LEN));
    }

    #[test]
    fn email_accepts_surface_forms() {
        for raw in [
            "zhang.san@example.com",
            "Zhang.San@Example.COM",
            "  zhang.san@example.com\n",
            "ｚｈａｎｇ．ｓａｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        ] {
            assert_eq!(email(raw).as_deref(), Ok("zhang.san@example.com"));
        }
        assert_eq!(
            email("a_b%c+d-e@mail.bank-cn.com.cn").as_deref(),
            Ok("a_b%c+d-e@mail.bank-cn.com.cn")
        );
        let local64 = "a".repeat(64);
        assert!(email(&format!("{local64}@qq.com")).is_ok());
    }

    #[test]
    fn email_rejects_hard_negatives() {
        assert_eq!(email("zhang.example.com"), Err(EMAIL_AT));
        assert_eq!(email("a@b@example.com"), Err(EMAIL_AT));
        assert_eq!(email("@example.com"), Err(EMAIL_LOCAL));
        assert_eq!(email(".a@example.com"), Err(EMAIL_LOCAL));
        assert_eq!(email("a.@example.com"), Err(EMAIL_LOCAL));
        assert_eq!(email("a..b@example.com"), Err(EMAIL_LOCAL));
        assert_eq!(email("a b@example.com"), Err(EMAIL_LOCAL));
        assert_eq!(email("张三@example.com"), Err(EMAIL_LOCAL));
        let local65 = "a".repeat(65);
        assert_eq!(email(&format!("{local65}@qq.com")), Err(EMAIL_LOCAL));
        assert_eq!(email("a@example"), Err(EMAIL_DOMAIN));
        assert_eq!(email("a@-example.com"), Err(EMAIL_DOMAIN));
        assert_eq!(email("a@example-.com"), Err(EMAIL_DOMAIN));
        assert_eq!(email("a@example..com"), Err(EMAIL_DOMAIN));
        assert_eq!(email("a@example.c"), Err(EMAIL_DOMAIN));
        assert_eq!(email("a@example.c0m"), Err(EMAIL_DOMAIN));
        assert_eq!(email("a@exa_mple.com"), Err(EMAIL_DOMAIN));
        assert_eq!(email("a@example.com."), Err(EMAIL_DOMAIN));
        let long_domain = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert_eq!(email(&format!("a@{long_domain}")), Err(EMAIL_LEN));
    }

    #[test]
    fn person_name_trims_and_collapses() {
        assert_eq!(person_name("  张三 ").as_deref(), Ok("张三"));
        assert_eq!(person_name("Li   Lei").as_deref(), Ok("Li Lei"));
        assert_eq!(person_name("Li \t Lei").as_deref(), Ok("Li Lei"));
        assert_eq!(person_name("Ｌｉ　Ｌｅｉ").as_deref(), Ok("Li Lei"));
        assert_eq!(person_name("阿卜杜勒·艾尼").as_deref(), Ok("阿卜杜勒·艾尼"));
        let forty = "张".repeat(40);
        assert_eq!(person_name(&forty).as_deref(), Ok(forty.as_str()));
    }

    #[test]
    fn person_name_rejects_hard_negatives() {
        assert_eq!(person_name(""), Err(NAME_LEN));
        assert_eq!(person_name(" \u{3000} "), Err(NAME_LEN));
        assert_eq!(person_name(&"张".repeat(41)), Err(NAME_LEN));
        assert_eq!(person_name("张3"), Err(NAME_DIGIT));
        assert_eq!(person_name("张３"), Err(NAME_DIGIT));
        assert_eq!(person_name("a@b"), Err(NAME_AT));
        assert_eq!(person_name("张\u{0}三"), Err(TEXT_CONTROL));
        assert_eq!(person_name("张\u{200B}三"), Err(TEXT_CONTROL));
        assert_eq!(person_name("张\u{202E}三"), Err(TEXT_CONTROL));
    }

    #[test]
    fn address_trims_collapses_and_bounds_length() {
        assert_eq!(
            address(" 北京市朝阳区 \n 建国路88号 ").as_deref(),
            Ok("北京市朝阳区 建国路88号")
        );
        assert_eq!(address("北京").as_deref(), Ok("北京"));
        assert!(address(&"路".repeat(200)).is_ok());
        assert_eq!(address("北"), Err(ADDRESS_LEN));
        assert_eq!(address("  "), Err(ADDRESS_LEN));
        assert_eq!(address(&"路".repeat(201)), Err(ADDRESS_LEN));
        assert_eq!(address("北京\u{7}市"), Err(TEXT_CONTROL));
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(ipv4(" 192.168.1.1 ").as_deref(), Ok("192.168.1.1"));
        assert_eq!(ipv4("１９２．１６８．１．１").as_deref(), Ok("192.168.1.1"));
        assert_eq!(ipv4("256.1.1.1"), Err(IPV4));
        assert_eq!(ipv4("1.2.3"), Err(IPV4));
        assert_eq!(ipv4("::1"), Err(IPV4));
        assert_eq!(
            ipv6("2001:0DB8:0000:0000:0000:0000:0000:0001").as_deref(),
            Ok("2001:db8::1")
        );
        assert_eq!(ipv6("2001:db8::1").as_deref(), Ok("2001:db8::1"));
        assert_eq!(ipv6("2001:db8:::1"), Err(IPV6));
        assert_eq!(ipv6("gggg::1"), Err(IPV6));
        assert_eq!(ipv6("1.2.3.4"), Err(IPV6));
    }

    #[test]
    fn passport_numbers() {
        assert_eq!(passport("E12345678").as_deref(), Ok("E12345678"));
        assert_eq!(passport(" e12345678 ").as_deref(), Ok("E12345678"));
        assert_eq!(passport("G12345678").as_deref(), Ok("G12345678"));
        assert_eq!(passport("ea1234567").as_deref(), Ok("EA1234567"));
        assert_eq!(passport("Ｅ１２３４５６７８").as_deref(), Ok("E12345678"));
        for bad in [
            "E1234567",
            "E123456789",
            "A12345678",
            "GA1234567",
            "EA123456",
            "E1234567A",
            "E 12345678",
            "",
        ] {
            assert_eq!(passport(bad), Err(PASSPORT));
        }
    }

    #[test]
    fn hk_macau_permits() {
        assert_eq!(hk_macau_permit("C12345678").as_deref(), Ok("C12345678"));
        assert_eq!(hk_macau_permit("ca1234567").as_deref(), Ok("CA1234567"));
        assert_eq!(hk_macau_permit("H12345678").as_deref(), Ok("H12345678"));
        assert_eq!(hk_macau_permit("m1234567890").as_deref(), Ok("M1234567890"));
        for bad in [
            "C1234567",
            "C123456789",
            "CA12345678",
            "CAB123456",
            "H123456789",
            "M123456789012",
            "X12345678",
            "HA1234567",
            "",
        ] {
            assert_eq!(hk_macau_permit(bad), Err(PERMIT));
        }
    }

    /// A Hong Kong id's check character, computed independently.
    fn hk_check_independent(id7or8: &str) -> char {
        let chars: Vec<char> = id7or8.chars().collect();
        let padded: Vec<char> = if chars.len() == 7 {
            std::iter::once(' ').chain(chars).collect()
        } else {
            chars
        };
        let sum: u32 = padded
            .iter()
            .zip((2..=9).rev())
            .map(|(&c, w)| {
                let v = match c {
                    ' ' => 36,
                    'A'..='Z' => c as u32 - 'A' as u32 + 10,
                    _ => c.to_digit(10).unwrap(),
                };
                v * w
            })
            .sum();
        match (11 - sum % 11) % 11 {
            10 => 'A',
            c => char::from_digit(c, 10).unwrap(),
        }
    }

    #[test]
    fn hk_id_numbers() {
        assert_eq!(hk_check_independent("A123456"), '3');
        for raw in [
            "A123456(3)",
            "A1234563",
            "a123456(3)",
            "Ａ１２３４５６（３）",
        ] {
            assert_eq!(hk_id(raw).as_deref(), Ok("A1234563"));
        }
        for body in [
            "AB987654", "XY123456", "Z683365", "K000001", "CA182361", "G000007",
        ] {
            let check = hk_check_independent(body);
            let canonical = format!("{body}{check}");
            assert_eq!(hk_id(&canonical).as_deref(), Ok(canonical.as_str()));
            let printed = format!("{}({check})", body.to_lowercase());
            assert_eq!(hk_id(&printed).as_deref(), Ok(canonical.as_str()));
        }
        // Make sure the 'A' check character path is exercised.
        let body_a = (0..1_000_000)
            .map(|n| format!("B{n:06}"))
            .find(|b| hk_check_independent(b) == 'A')
            .unwrap();
        assert_eq!(hk_id(&format!("{body_a}(a)")), Ok(format!("{body_a}A")));
    }

    #[test]
    fn hk_id_rejects_hard_negatives() {
        assert_eq!(hk_id("A123456(4)"), Err(HK_ID_CHECK));
        assert_eq!(hk_id("A1234564"), Err(HK_ID_CHECK));
        assert_eq!(hk_id("A12345(3)"), Err(HK_ID_FORMAT));
        assert_eq!(hk_id("ABC123456(3)"), Err(HK_ID_FORMAT));
        assert_eq!(hk_id("1123456(3)"), Err(HK_ID_FORMAT));
        assert_eq!(hk_id("A123456(3"), Err(HK_ID_FORMAT));
        assert_eq!(hk_id("A123456(B)"), Err(HK_ID_FORMAT));
        assert_eq!(hk_id("A123456 (3)"), Err(HK_ID_FORMAT));
        assert_eq!(hk_id("(3)"), Err(HK_ID_FORMAT));
        assert_eq!(hk_id(""), Err(HK_ID_FORMAT));
    }

    #[test]
    fn tw_id_numbers() {
        assert_eq!(tw_id("A123456789").as_deref(), Ok("A123456789"));
        assert_eq!(tw_id(" a123456789 ").as_deref(), Ok("A123456789"));
        // Letters with codes the plain alphabet order would get wrong (I, O, W, Z).
        for body in ["I20000000", "O10000000", "W20000000", "Z12345678"] {
            let valid = (0..10)
                .map(|d| format!("{body}{d}"))
                .filter(|id| tw_id(id).is_ok())
                .collect::<Vec<_>>();
            assert_eq!(valid.len(), 1, "exactly one check digit fits");
        }
        // I = 34: 3*1 + 4*9 + 2*8 = 55, so the check digit is 5.
        assert!(tw_id("I200000005").is_ok());
        assert_eq!(tw_id("I200000006"), Err(TW_ID_CHECK));
        assert_eq!(tw_id("A123456788"), Err(TW_ID_CHECK));
        assert_eq!(tw_id("A323456789"), Err(TW_ID_FORMAT));
        assert_eq!(tw_id("A12345678"), Err(TW_ID_FORMAT));
        assert_eq!(tw_id("1123456789"), Err(TW_ID_FORMAT));
        assert_eq!(tw_id("AA23456789"), Err(TW_ID_FORMAT));
    }

    #[test]
    fn license_plates() {
        for raw in [
            "京A12345",
            "京A·12345",
            "京a-12345",
            "京 A 12345",
            "京Ａ１２３４５",
        ] {
            assert_eq!(license_plate(raw).as_deref(), Ok("京A12345"));
        }
        assert_eq!(license_plate("沪AD12345").as_deref(), Ok("沪AD12345"));
        assert_eq!(license_plate("粤b·d1234").as_deref(), Ok("粤BD1234"));
        assert_eq!(license_plate("港A12345"), Err(PLATE_PROVINCE));
        assert_eq!(license_plate("A12345"), Err(PLATE_PROVINCE));
        assert_eq!(license_plate(""), Err(PLATE_PROVINCE));
        assert_eq!(license_plate("京112345"), Err(PLATE_FORMAT));
        assert_eq!(license_plate("京A1234"), Err(PLATE_FORMAT));
        assert_eq!(license_plate("京A1234567"), Err(PLATE_FORMAT));
        assert_eq!(license_plate("京A12$45"), Err(PLATE_FORMAT));
        assert_eq!(license_plate("京A1234学"), Err(PLATE_FORMAT));
    }

    #[test]
    fn postal_codes() {
        assert_eq!(postal_code("100020").as_deref(), Ok("100020"));
        assert_eq!(postal_code(" 010000 ").as_deref(), Ok("010000"));
        assert_eq!(postal_code("５１８０５７").as_deref(), Ok("518057"));
        for bad in ["900000", "10002", "1000200", "10002a", "100 020", ""] {
            assert_eq!(postal_code(bad), Err(POSTAL));
        }
    }

    #[test]
    fn dates_of_birth() {
        for raw in [
            "1990-01-05",
            "19900105",
            "1990/01/05",
            "1990/1/5",
            "1990.1.05",
            "1990年1月5日",
            "1990年01月05",
            "１９９０－０１－０５",
        ] {
            assert_eq!(date_of_birth(raw).as_deref(), Ok("1990-01-05"));
        }
        assert_eq!(date_of_birth("2000-02-29").as_deref(), Ok("2000-02-29"));
        let today = Date::today();
        assert_eq!(date_of_birth(&today.to_string()), Ok(today.to_string()));
        let tomorrow = Date::from_days(today.days() + 1);
        assert_eq!(date_of_birth(&tomorrow.to_string()), Err(DATE_FUTURE));
        assert_eq!(date_of_birth("1990-02-30"), Err(DATE_UNREAL));
        assert_eq!(date_of_birth("1900-02-29"), Err(DATE_UNREAL));
        assert_eq!(date_of_birth("1990-13-01"), Err(DATE_UNREAL));
        assert_eq!(date_of_birth("1990-00-10"), Err(DATE_UNREAL));
        assert_eq!(date_of_birth("1899-12-31"), Err(DATE_EARLY));
        for bad in [
            "90-01-05",
            "1990-01",
            "1990-01-05-01",
            "1990--01-05",
            "1990-001-05",
            "199001050",
            "1990 01 05",
            "-1990-01-05",
            "1990-01-05-",
            "",
        ] {
            assert_eq!(date_of_birth(bad), Err(DATE_FORMAT));
        }
    }

    /// Maximal runs of at least six ASCII digits in `s`.
    fn digit_runs(s: &str) -> Vec<&str> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() >= 6)
            .collect()
    }

    #[test]
    fn error_messages_never_echo_the_input() {
        use crate::{normalize, PiiType as T};
        let cases = [
            (T::CnResidentId, "110105194912310021"),
            (T::CnResidentId, "99010519491231002X"),
            (T::CnResidentId, "110105199002301234"),
            (T::CnMobile, "15412345678"),
            (T::CnMobile, "138123456789"),
            (T::CnMobile, "13812345678x"),
            (T::CnLandline, "011-12345678"),
            (T::BankCard, "4111111111111112"),
            (T::BankCard, "62220212345678901234"),
            (T::Uscc, "91350100M000100Y44"),
            (T::Email, "zhang.san@example"),
            (T::Email, "zhang san@example.com"),
            (T::PersonName, "张三123456"),
            (T::Address, "北"),
            (T::Ipv4, "192.168.1.256"),
            (T::Ipv6, "2001:db8:::123456"),
            (T::CnPassport, "E1234567"),
            (T::HkMacauPermit, "C1234567"),
            (T::HkId, "A123456(4)"),
            (T::TwId, "A123456788"),
            (T::CnLicensePlate, "京A1234567"),
            (T::PostalCode, "900000"),
            (T::DateOfBirth, "1990-02-30"),
        ];
        for (ty, input) in cases {
            let err = normalize(ty, input).expect_err("input must be refused");
            assert!(!err.0.is_empty());
            assert!(!err.0.contains(input), "{ty} message echoes its input");
            assert!(!err.to_string().contains(input));
            for run in digit_runs(input) {
                for window in run.as_bytes().windows(6) {
                    let window = std::str::from_utf8(window).unwrap();
                    assert!(!err.0.contains(window), "{ty} message echoes digits");
                }
            }
        }
    }
}

/// A plain calendar date `YYYY-MM-DD` (any real day, past or future), for fields of type
/// `date`. Unlike [`date_of_birth`] it takes only the canonical form.
pub fn calendar_date(raw: &str) -> Result<String, Invalid> {
    let s = raw.trim();
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(Invalid("date must be written YYYY-MM-DD"));
    }
    let (y, m, d) = (
        s[0..4].parse().unwrap_or(0),
        s[5..7].parse().unwrap_or(0),
        s[8..10].parse().unwrap_or(0),
    );
    Date::new(y, m, d)
        .map(|_| s.to_string())
        .ok_or(Invalid("date does not exist in the calendar"))
}

#[cfg(test)]
mod calendar_date_tests {
    #[test]
    fn calendar_dates() {
        assert_eq!(super::calendar_date("2024-02-29").unwrap(), "2024-02-29");
        assert!(super::calendar_date("2023-02-29").is_err());
        assert!(super::calendar_date("2023-2-28").is_err());
        assert!(super::calendar_date("2023-13-01").is_err());
        assert!(super::calendar_date("２023-01-01").is_err());
    }
}
