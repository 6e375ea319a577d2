//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits,
//! 30-second steps — the parameters every authenticator app understands — and the RFC 4648
//! base32 that `otpauth://` URIs carry the secret in.

use hmac::{Hmac, Mac};
use rand::RngCore;
use zeroize::Zeroizing;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;

/// A fresh 160-bit secret (RFC 4226's recommended length).
pub fn generate_secret() -> Zeroizing<Vec<u8>> {
    let mut s = Zeroizing::new(vec![0u8; 20]);
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// The time step a Unix time falls in.
pub fn step_at(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECONDS)
}

/// The code for one time step.
pub fn code(secret: &[u8], step: i64) -> u32 {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(&(step as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    bin % 10u32.pow(DIGITS)
}

/// The code as the six digits a user types.
pub fn code_string(secret: &[u8], step: i64) -> String {
    format!("{:06}", code(secret, step))
}

/// The step within `now`'s step ± `skew` whose code equals `typed`, if any; constant-time
/// per comparison. The caller refuses a step at or before the last one used (replay).
pub fn matching_step(secret: &[u8], typed: &str, now_unix: i64, skew: i64) -> Option<i64> {
    let typed = typed.trim();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_unix);
    let mut found = None;
    for step in (now - skew)..=(now + skew) {
        if crate::ct_eq(code_string(secret, step).as_bytes(), typed.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (the form `otpauth://` URIs use).
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for &b in data {
        buf = (buf << 8) | b as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, spaces and `=` padding ignored).
pub fn base32_decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 5 / 8));
    let (mut buf, mut bits) = (0u64, 0u32);
    for c in s.bytes() {
        if c == b'=' || c == b' ' {
            continue;
        }
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())? as u64;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// The enrolment URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        base32_encode(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column (8-digit codes truncated to our 6).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(code(secret, step_at(t)), eight % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn base32_round_trips_rfc4648_vectors() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(&*base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert!(base32_decode("not base32!").is_none());
        let s = generate_secret();
        assert_eq!(*base32_decode(&base32_encode(&s)).unwrap(), *s);
    }

    #[test]
    fn codes_match_within_the_skew_only() {
        let s = b"12345678901234567890";
        let now = 1_700_000_000;
        let prev = code_string(s, step_at(now) - 1);
        assert_eq!(matching_step(s, &prev, now, 1), Some(step_at(now) - 1));
        let old = code_string(s, step_at(now) - 3);
        assert_eq!(matching_step(s, &old, now, 1), None);
        assert_eq!(matching_step(s, "12345", now, 1), None);
        assert_eq!(matching_step(s, "abcdef", now, 1), None);
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let u = otpauth_uri("Custodia", "li lei", b"foobar");
        assert!(u.starts_with("otpauth://totp/Custodia:li%20lei?secret=MZXW6YTBOI&issuer=Custodia"));
    }
}
