//! Custodia's cryptography, built only from RustCrypto crates.
//!
//! Two algorithm suites are chosen once, at `init`:
//! - `intl`: AES-256-GCM, HMAC-SHA-256, HKDF-SHA-256;
//! - `gm`: SM4-GCM, HMAC-SM3, HKDF-SM3 (Chinese commercial cryptography, GB/T 32907, GB/T 32905).
//!
//! The key hierarchy (root → collection KEK → record DEK) is kept by `custodia-vault`; this
//! crate provides the primitives: keyed AEADs whose ciphertexts carry their nonce, length-
//! prefixed AAD so that no two different contexts can produce the same AAD bytes, blind
//! index MACs, passphrase sealing (Argon2id) and Argon2id verifiers for C3 data.
#![forbid(unsafe_code)]

pub mod totp;

use aes_gcm::aead::{consts::U12, AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Blind index length in bytes: 128 bits keeps accidental collisions out of reach while
/// still hiding the full MAC.
pub const BLIND_INDEX_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext was altered, moved to another place (AAD mismatch) or the key is wrong.
    #[error("ciphertext failed authentication (altered, moved, or wrong key)")]
    Integrity,
    #[error("wrong passphrase or damaged sealed root key")]
    Passphrase,
    #[error("malformed key material: {0}")]
    Malformed(&'static str),
}

/// The algorithm suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    Intl,
    Gm,
}

impl Suite {
    pub fn as_str(self) -> &'static str {
        match self {
            Suite::Intl => "intl",
            Suite::Gm => "gm",
        }
    }

    /// Symmetric key length: 32 bytes for AES-256, 16 for SM4.
    pub fn key_len(self) -> usize {
        match self {
            Suite::Intl => 32,
            Suite::Gm => 16,
        }
    }

    pub fn generate_key(self) -> Key {
        let mut k = Zeroizing::new(vec![0u8; self.key_len()]);
        rand::rngs::OsRng.fill_bytes(&mut k);
        Key(k)
    }

    /// A per-record data key from the thread-local CSPRNG (ChaCha, seeded and periodically
    /// reseeded from the OS): as strong as `OsRng` without a system call per record.
    pub fn generate_data_key(self) -> Key {
        let mut k = Zeroizing::new(vec![0u8; self.key_len()]);
        rand::thread_rng().fill_bytes(&mut k);
        Key(k)
    }

    /// A cipher keyed once and reused for every field of a record.
    pub fn aead(self, key: &Key) -> Result<Aead, CryptoError> {
        if key.0.len() != self.key_len() {
            return Err(CryptoError::Malformed("key length does not fit the suite"));
        }
        Ok(match self {
            Suite::Intl => Aead::Aes(Box::new(
                Aes256Gcm::new_from_slice(&key.0).expect("length checked"),
            )),
            Suite::Gm => Aead::Sm4(Box::new(
                Sm4Gcm::new_from_slice(&key.0).expect("length checked"),
            )),
        })
    }

    /// Full-length MAC (HMAC-SHA-256 or HMAC-SM3).
    pub fn mac(self, key: &Key, msg: &[u8]) -> [u8; 32] {
        match self {
            Suite::Intl => {
                let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key.0)
                    .expect("HMAC takes any key length");
                m.update(msg);
                m.finalize().into_bytes().into()
            }
            Suite::Gm => {
                let mut m = <Hmac<sm3::Sm3> as Mac>::new_from_slice(&key.0)
                    .expect("HMAC takes any key length");
                m.update(msg);
                m.finalize().into_bytes().into()
            }
        }
    }

    /// HKDF-Expand of `ikm` for one purpose (`info`), giving a key of `len` bytes.
    pub fn derive(self, ikm: &Key, info: &[u8], len: usize) -> Key {
        let mut out = Zeroizing::new(vec![0u8; len]);
        match self {
            Suite::Intl => hkdf::Hkdf::<sha2::Sha256>::new(None, &ikm.0)
                .expand(info, &mut out)
                .expect("HKDF output length within limits"),
            Suite::Gm => hkdf::Hkdf::<sm3::Sm3>::new(None, &ikm.0)
                .expand(info, &mut out)
                .expect("HKDF output length within limits"),
        }
        Key(out)
    }

    /// Blind index of a canonical value under a per-field key: truncated MAC, hex.
    pub fn blind_index(self, field_key: &Key, canonical: &str) -> String {
        self.mac_key(field_key).blind_index(canonical)
    }

    pub fn mac_key(self, key: &Key) -> MacKey {
        match self {
            Suite::Intl => MacKey::Sha256(Box::new(
                <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key.0)
                    .expect("HMAC takes any key length"),
            )),
            Suite::Gm => MacKey::Sm3(Box::new(
                <Hmac<sm3::Sm3> as Mac>::new_from_slice(&key.0).expect("HMAC takes any key length"),
            )),
        }
    }
}

impl FromStr for Suite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "intl" => Ok(Suite::Intl),
            "gm" => Ok(Suite::Gm),
            _ => Err(format!("unknown suite '{s}': expected intl or gm")),
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Secret key material, zeroized on drop and never printed.
#[derive(Clone)]
pub struct Key(Zeroizing<Vec<u8>>);

impl Key {
    pub fn from_bytes(bytes: Vec<u8>) -> Key {
        Key(Zeroizing::new(bytes))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key([{} bytes redacted])", self.0.len())
    }
}

/// A keyed AEAD. Ciphertexts are `nonce ‖ ciphertext ‖ tag`; nonces are random (96 bits),
/// which is safe because every key encrypts only a handful of messages (one record's fields).
pub enum Aead {
    Aes(Box<Aes256Gcm>),
    Sm4(Box<Sm4Gcm>),
}

impl Aead {
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        self.seal_into(aad, plaintext, &mut out);
        out
    }

    /// Appends `nonce ‖ ciphertext ‖ tag` to `out` (no allocation of its own).
    pub fn seal_into(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let n = Nonce::from_slice(&nonce);
        let body = &mut out[start + NONCE_LEN..];
        let tag = match self {
            Aead::Aes(c) => c.encrypt_in_place_detached(n, aad, body),
            Aead::Sm4(c) => c.encrypt_in_place_detached(n, aad, body),
        }
        .expect("AEAD encryption of in-memory data does not fail");
        out.extend_from_slice(&tag);
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open_owned(aad, sealed.to_vec())
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag` where it lies; returns the plaintext sub-slice.
    pub fn open_in_place<'a>(
        &self,
        aad: &[u8],
        sealed: &'a mut [u8],
    ) -> Result<&'a [u8], CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Integrity);
        }
        let tag_at = sealed.len() - TAG_LEN;
        let (head, tag) = sealed.split_at_mut(tag_at);
        let (nonce, body) = head.split_at_mut(NONCE_LEN);
        let tag = aes_gcm::Tag::from_slice(tag);
        let n = Nonce::from_slice(nonce);
        let ok = match self {
            Aead::Aes(c) => c.decrypt_in_place_detached(n, aad, body, tag),
            Aead::Sm4(c) => c.decrypt_in_place_detached(n, aad, body, tag),
        };
        ok.map_err(|_| CryptoError::Integrity)?;
        Ok(body)
    }

    /// Decrypts in place, reusing the buffer `nonce ‖ ciphertext ‖ tag` for the plaintext.
    pub fn open_owned(
        &self,
        aad: &[u8],
        mut sealed: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Integrity);
        }
        let tag_at = sealed.len() - TAG_LEN;
        let tag = aes_gcm::Tag::clone_from_slice(&sealed[tag_at..]);
        let nonce = *Nonce::from_slice(&sealed[..NONCE_LEN]);
        let body = &mut sealed[NONCE_LEN..tag_at];
        let ok = match self {
            Aead::Aes(c) => c.decrypt_in_place_detached(&nonce, aad, body, &tag),
            Aead::Sm4(c) => c.decrypt_in_place_detached(&nonce, aad, body, &tag),
        };
        if ok.is_err() {
            return Err(CryptoError::Integrity);
        }
        sealed.truncate(tag_at);
        sealed.drain(..NONCE_LEN);
        Ok(Zeroizing::new(sealed))
    }
}

/// A MAC key with its HMAC state already keyed: computing a blind index then costs only
/// the message's compression rounds, not the key schedule.
#[derive(Clone)]
pub enum MacKey {
    Sha256(Box<Hmac<sha2::Sha256>>),
    Sm3(Box<Hmac<sm3::Sm3>>),
}

impl MacKey {
    /// Blind index of a canonical value: truncated MAC, hex.
    pub fn blind_index(&self, canonical: &str) -> String {
        let full: [u8; 32] = match self {
            MacKey::Sha256(m) => {
                let mut m = m.as_ref().clone();
                m.update(canonical.as_bytes());
                m.finalize().into_bytes().into()
            }
            MacKey::Sm3(m) => {
                let mut m = m.as_ref().clone();
                m.update(canonical.as_bytes());
                m.finalize().into_bytes().into()
            }
        };
        hex_lower(&full[..BLIND_INDEX_LEN])
    }
}

/// Lower-case hex, table-driven (the `hex` crate's char iterator is several times slower
/// on this hot path: one call per searchable field per write).
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 0x0f) as usize]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Builds AAD from parts, each prefixed by its length, so `("ab","c")` ≠ `("a","bc")`.
pub fn aad(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The root key sealed under a passphrase: Argon2id → key-encryption key → AEAD.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SealedRoot {
    pub suite: Suite,
    /// Argon2id memory (KiB), iterations, parallelism.
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    pub salt: String,
    pub sealed: String,
}

/// Argon2id parameters for sealing the root key. `dev` trades strength for start-up time and
/// is used only by `serve --dev` on a throwaway data dir.
pub fn root_params(dev: bool) -> (u32, u32, u32) {
    if dev {
        (8 * 1024, 1, 1)
    } else {
        (64 * 1024, 3, 1)
    }
}

fn passphrase_key(
    suite: Suite,
    passphrase: &[u8],
    salt: &[u8],
    (m, t, p): (u32, u32, u32),
) -> Result<Key, CryptoError> {
    let params = argon2::Params::new(m, t, p, Some(suite.key_len()))
        .map_err(|_| CryptoError::Malformed("argon2 parameters"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new(vec![0u8; suite.key_len()]);
    argon
        .hash_password_into(passphrase, salt, &mut out)
        .map_err(|_| CryptoError::Malformed("argon2 input"))?;
    Ok(Key(out))
}

const ROOT_AAD: &[u8] = b"custodia/root-key/v1";

pub fn seal_root(
    suite: Suite,
    passphrase: &[u8],
    root: &Key,
    params: (u32, u32, u32),
) -> Result<SealedRoot, CryptoError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let kek = passphrase_key(suite, passphrase, &salt, params)?;
    let sealed = suite.aead(&kek)?.seal(ROOT_AAD, root.expose());
    Ok(SealedRoot {
        suite,
        m_cost: params.0,
        t_cost: params.1,
        p_cost: params.2,
        salt: b64(&salt),
        sealed: b64(&sealed),
    })
}

pub fn unseal_root(s: &SealedRoot, passphrase: &[u8]) -> Result<Key, CryptoError> {
    let salt = unb64(&s.salt).ok_or(CryptoError::Malformed("salt"))?;
    let sealed = unb64(&s.sealed).ok_or(CryptoError::Malformed("sealed root"))?;
    let kek = passphrase_key(s.suite, passphrase, &salt, (s.m_cost, s.t_cost, s.p_cost))?;
    let root = s
        .suite
        .aead(&kek)?
        .open(ROOT_AAD, &sealed)
        .map_err(|_| CryptoError::Passphrase)?;
    Ok(Key(root))
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s)
        .ok()
}

/// An Argon2id verifier (PHC string) for C3 data such as PINs: the value itself is never kept.
pub fn make_verifier(value: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(value.as_bytes(), &salt)
        .expect("argon2 with default parameters does not fail")
        .to_string()
}

/// Checks `value` against a verifier; constant-time inside argon2.
pub fn check_verifier(verifier: &str, value: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(verifier) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(value.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random bearer token: 32 bytes from the OS, URL-safe, with a recognisable prefix so
/// secret scanners can find leaked tokens.
pub fn random_token() -> String {
    use base64::Engine;
    let mut b = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(b.as_mut());
    format!(
        "cst_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b.as_ref())
    )
}

/// Tokens are high-entropy, so a plain SHA-256 is the right verifier (no need for Argon2).
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Overwrites a string's bytes; used for secrets that arrive as `String`.
pub fn wipe(mut s: String) {
    s.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_suites_round_trip_and_bind_aad() {
        for suite in [Suite::Intl, Suite::Gm] {
            let key = suite.generate_key();
            assert_eq!(key.expose().len(), suite.key_len());
            let c = suite.aead(&key).unwrap();
            let a = aad(&[b"customers", b"rec1", b"mobile", b"k1"]);
            let ct = c.seal(&a, b"13812345678");
            assert_eq!(&c.open(&a, &ct).unwrap()[..], b"13812345678");
            let moved = aad(&[b"customers", b"rec2", b"mobile", b"k1"]);
            assert_eq!(c.open(&moved, &ct), Err(CryptoError::Integrity));
            let mut flipped = ct.clone();
            flipped[NONCE_LEN] ^= 1;
            assert_eq!(c.open(&a, &flipped), Err(CryptoError::Integrity));
            let other = suite.aead(&suite.generate_key()).unwrap();
            assert_eq!(other.open(&a, &ct), Err(CryptoError::Integrity));
        }
    }

    #[test]
    fn hex_matches_the_hex_crate() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&bytes), hex::encode(&bytes));
    }

    #[test]
    fn aad_parts_are_unambiguous() {
        assert_ne!(aad(&[b"ab", b"c"]), aad(&[b"a", b"bc"]));
    }

    #[test]
    fn suites_differ_and_are_deterministic() {
        let k = Key::from_bytes(vec![7u8; 32]);
        assert_eq!(
            Suite::Intl.blind_index(&k, "13812345678"),
            Suite::Intl.blind_index(&k, "13812345678")
        );
        assert_ne!(
            Suite::Intl.blind_index(&k, "13812345678"),
            Suite::Gm.blind_index(&k, "13812345678")
        );
        assert_eq!(Suite::Gm.blind_index(&k, "x").len(), BLIND_INDEX_LEN * 2);
        let d1 = Suite::Gm.derive(&k, b"a", 16);
        let d2 = Suite::Gm.derive(&k, b"b", 16);
        assert_ne!(d1.expose(), d2.expose());
    }

    #[test]
    fn hmac_sm3_matches_published_vector() {
        // SM3("abc") is GB/T 32905 example 1; check the digest our HMAC builds on.
        use sm3::Digest;
        assert_eq!(
            hex::encode(sm3::Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn root_seal_needs_the_passphrase() {
        for suite in [Suite::Intl, Suite::Gm] {
            let root = Suite::Intl.generate_key();
            let sealed = seal_root(suite, b"correct horse", &root, root_params(true)).unwrap();
            let back = unseal_root(&sealed, b"correct horse").unwrap();
            assert_eq!(back.expose(), root.expose());
            assert_eq!(
                unseal_root(&sealed, b"wrong horse").unwrap_err(),
                CryptoError::Passphrase
            );
        }
    }

    #[test]
    fn verifiers_check_without_storing_the_value() {
        let v = make_verifier("123456");
        assert!(!v.contains("123456"));
        assert!(check_verifier(&v, "123456"));
        assert!(!check_verifier(&v, "123457"));
        assert!(!check_verifier("garbage", "123456"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token();
        assert!(a.starts_with("cst_") && a.len() > 40);
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd"));
        assert_eq!(
            format!("{:?}", Key::from_bytes(vec![1, 2])),
            "Key([2 bytes redacted])"
        );
    }
}
