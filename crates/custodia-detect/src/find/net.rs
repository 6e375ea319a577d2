//! Email addresses, IPv4 and IPv6 addresses.
//!
//! Dots and colons are where version strings, decimals, hostnames and clock times look
//! like addresses, so an IPv4 address must be a whole dotted run of exactly four decimal
//! groups (`v1.2.3.4`, `1.2.3.4.5` and `www.163.com` are not), and an IPv6 candidate must
//! parse as one and contain a digit (`12:30:45` does not parse; `dead::beef` has none).

use super::context::Ctx;
use super::Scan;
use crate::validate;
use crate::PiiType as T;

/// Bytes of an email's local part, as a table (one load per byte in the scanner's loops).
static LOCAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
        b += 1;
    }
    t
};

pub(super) fn is_local(b: u8) -> bool {
    LOCAL[b as usize]
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// The span of a valid email address around the `@` at `at`.
pub(super) fn email_span(s: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut a = at;
    while a > 0 && at - a < 64 && is_local(s[a - 1]) {
        a -= 1;
    }
    while a < at && s[a] == b'.' {
        a += 1;
    }
    let mut b = at + 1;
    while b < s.len() && b - at <= 254 && is_domain(s[b]) {
        b += 1;
    }
    while b > at + 1 && matches!(s[b - 1], b'.' | b'-') {
        b -= 1;
    }
    // `…@qq.com.Customer called`: a capitalised word after a lowercase domain starts the
    // next sentence; it is no top-level domain.
    if let Some(dot) = s[at + 1..b].iter().rposition(|&c| c == b'.') {
        let dot = at + 1 + dot;
        let last = &s[dot + 1..b];
        let capitalised = last.len() > 1
            && last[0].is_ascii_uppercase()
            && last[1..].iter().all(u8::is_ascii_lowercase);
        if capitalised && !s[at + 1..dot].iter().any(u8::is_ascii_uppercase) {
            b = dot;
        }
    }
    if a == at || b == at + 1 {
        return None;
    }
    let text = std::str::from_utf8(&s[a..b]).ok()?;
    validate::email_ok(text).then_some((a, b))
}

/// The `@` at `at`: reports the email address around it; returns where to continue.
pub(super) fn email(sc: &mut Scan, at: usize) -> usize {
    match email_span(sc.s, at) {
        Some((a, b)) => {
            sc.push(a, b, T::Email, 0.95);
            b
        }
        None => at + 1,
    }
}

/// A `:` at `i`: a compressed IPv6 address may start with `::`.
pub(super) fn colon(sc: &mut Scan, i: usize) -> usize {
    let s = sc.s;
    let starts = s.get(i + 1) == Some(&b':')
        && (i == 0 || !(s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b':'));
    if starts {
        if let Some(end) = ipv6(sc, i) {
            return end;
        }
    }
    i + 1
}

/// An IPv6 address starting at `i`; returns its end if there is one.
pub(super) fn ipv6(sc: &mut Scan, i: usize) -> Option<usize> {
    let s = sc.s;
    let n = s.len();
    let mut k = i;
    let mut colons = 0;
    let mut digit = false;
    while k < n && k - i < 46 {
        let b = s[k];
        if b.is_ascii_hexdigit() {
            digit |= b.is_ascii_digit();
        } else if b == b':' {
            colons += 1;
        } else if !(b == b'.' && s.get(k + 1).is_some_and(u8::is_ascii_digit)) {
            break;
        }
        k += 1;
    }
    let mut end = k;
    // A trailing `:` is punctuation (`fe80::1: down`), unless it closes a `::`.
    if end >= i + 2 && s[end - 1] == b':' && s[end - 2] != b':' {
        end -= 1;
        colons -= 1;
    }
    if colons < 2
        || !digit
        || s.get(end)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let text = sc.t.get(i..end)?;
    validate::ipv6_ok(text).then_some(())?;
    let confidence = if text.contains("::") { 0.8 } else { 0.9 };
    sc.push(i, end, T::Ipv6, confidence);
    Some(end)
}

/// A dotted run starting at the word at `i` (`192.168.1.1`, `3.14`, `v1.2.3`,
/// `www.163.com`); reports it if it is an IPv4 address, and returns its end.
pub(super) fn dotted(sc: &mut Scan, i: usize) -> usize {
    let s = sc.s;
    let n = s.len();
    let mut k = i;
    let mut groups = 0;
    let mut ip_shaped = true;
    loop {
        let w = k;
        while k < n && s[k].is_ascii_alphanumeric() {
            k += 1;
        }
        ip_shaped &= (1..=3).contains(&(k - w)) && s[w..k].iter().all(u8::is_ascii_digit);
        groups += 1;
        if k + 1 < n && s[k] == b'.' && s[k + 1].is_ascii_alphanumeric() {
            k += 1;
        } else {
            break;
        }
    }
    let glued = (i > 0 && matches!(s[i - 1], b'.' | b'_' | b'-'))
        || matches!(s.get(k), Some(b'_'))
        || (s.get(k) == Some(&b'-') && s.get(k + 1).is_some_and(u8::is_ascii_alphanumeric));
    if ip_shaped && groups == 4 && !glued {
        let text = sc.t.get(i..k).unwrap_or("");
        if validate::ipv4_ok(text) && !sc.context(i, 12, Ctx::Version) {
            sc.push(i, k, T::Ipv4, 0.9);
        }
    }
    k
}
