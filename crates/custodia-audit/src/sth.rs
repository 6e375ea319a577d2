//! Signed tree heads: the log's size, root hash and time, signed with Ed25519 (`intl`) or
//! SM2 (`gm`, GB/T 32918 with the standard distinguishing id), so that an outside auditor
//! holding only the public key can check that a tree head is ours and unaltered.

use crate::merkle::Hash;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// The SM2 distinguishing identifier of GB/T 35276 when none is agreed.
const SM2_DISTID: &str = "1234567812345678";
const DOMAIN: &[u8] = b"custodia-tree-head-v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigAlg {
    Ed25519,
    Sm2,
}

impl SigAlg {
    pub fn id(self) -> &'static str {
        match self {
            SigAlg::Ed25519 => "ed25519",
            SigAlg::Sm2 => "sm2",
        }
    }
}

enum Key {
    Ed(Box<ed25519_dalek::SigningKey>),
    Sm2(Box<sm2::dsa::SigningKey>),
}

/// The log's signing key.
pub struct TreeSigner {
    key: Key,
}

/// A public key as an auditor receives it: `ed25519:<hex>` or `sm2:<hex of SEC1>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub alg: SigAlg,
    pub bytes: Vec<u8>,
}

/// `(tree_size, root_hash, timestamp_ms)` and its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    pub root_hash: Hash,
    pub timestamp_ms: i64,
    pub signature: Vec<u8>,
}

/// The bytes signed: a domain label, then size, time and root in fixed widths.
fn to_be_signed(tree_size: u64, root: &Hash, timestamp_ms: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 48);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(&tree_size.to_be_bytes());
    m.extend_from_slice(&timestamp_ms.to_be_bytes());
    m.extend_from_slice(root);
    m
}

impl TreeSigner {
    pub fn generate(alg: SigAlg) -> TreeSigner {
        let key = match alg {
            SigAlg::Ed25519 => Key::Ed(Box::new(ed25519_dalek::SigningKey::generate(&mut OsRng))),
            SigAlg::Sm2 => {
                let secret = sm2::SecretKey::random(&mut OsRng);
                Key::Sm2(Box::new(
                    sm2::dsa::SigningKey::new(SM2_DISTID, &secret).expect("valid distid and key"),
                ))
            }
        };
        TreeSigner { key }
    }

    /// Restores a key from [`TreeSigner::secret_bytes`].
    pub fn from_secret(alg: SigAlg, bytes: &[u8]) -> Option<TreeSigner> {
        let key = match alg {
            SigAlg::Ed25519 => Key::Ed(Box::new(ed25519_dalek::SigningKey::from_bytes(
                bytes.try_into().ok()?,
            ))),
            SigAlg::Sm2 => Key::Sm2(Box::new(
                sm2::dsa::SigningKey::from_slice(SM2_DISTID, bytes).ok()?,
            )),
        };
        Some(TreeSigner { key })
    }

    pub fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match &self.key {
            Key::Ed(k) => k.to_bytes().to_vec(),
            Key::Sm2(k) => k.to_bytes().to_vec(),
        })
    }

    pub fn public_key(&self) -> PublicKey {
        match &self.key {
            Key::Ed(k) => PublicKey {
                alg: SigAlg::Ed25519,
                bytes: k.verifying_key().to_bytes().to_vec(),
            },
            Key::Sm2(k) => PublicKey {
                alg: SigAlg::Sm2,
                bytes: k.verifying_key().to_sec1_bytes().to_vec(),
            },
        }
    }

    pub fn sign(&self, tree_size: u64, root_hash: Hash, timestamp_ms: i64) -> SignedTreeHead {
        use signature::Signer;
        let msg = to_be_signed(tree_size, &root_hash, timestamp_ms);
        let signature = match &self.key {
            Key::Ed(k) => k.sign(&msg).to_bytes().to_vec(),
            Key::Sm2(k) => {
                let s: sm2::dsa::Signature = k.sign(&msg);
                s.to_bytes().to_vec()
            }
        };
        SignedTreeHead {
            tree_size,
            root_hash,
            timestamp_ms,
            signature,
        }
    }
}

/// Lower- or upper-case hex to bytes.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl PublicKey {
    pub fn to_text(&self) -> String {
        let hex: String = self.bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{hex}", self.alg.id())
    }

    pub fn from_text(s: &str) -> Option<PublicKey> {
        let (alg, hex) = s.trim().split_once(':')?;
        let alg = match alg {
            "ed25519" => SigAlg::Ed25519,
            "sm2" => SigAlg::Sm2,
            _ => return None,
        };
        Some(PublicKey {
            alg,
            bytes: unhex(hex)?,
        })
    }

    /// Whether `sth` was signed by this key and is unaltered.
    pub fn verify(&self, sth: &SignedTreeHead) -> bool {
        use signature::Verifier;
        let msg = to_be_signed(sth.tree_size, &sth.root_hash, sth.timestamp_ms);
        match self.alg {
            SigAlg::Ed25519 => {
                let Ok(bytes) = <[u8; 32]>::try_from(self.bytes.as_slice()) else {
                    return false;
                };
                let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) else {
                    return false;
                };
                let Ok(sig) = ed25519_dalek::Signature::from_slice(&sth.signature) else {
                    return false;
                };
                vk.verify(&msg, &sig).is_ok()
            }
            SigAlg::Sm2 => {
                let Ok(vk) = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DISTID, &self.bytes)
                else {
                    return false;
                };
                let Ok(sig) = sm2::dsa::Signature::from_slice(&sth.signature) else {
                    return false;
                };
                vk.verify(&msg, &sig).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_heads_verify_only_unaltered_and_under_their_key() {
        for alg in [SigAlg::Ed25519, SigAlg::Sm2] {
            let k = TreeSigner::generate(alg);
            let pk = PublicKey::from_text(&k.public_key().to_text()).unwrap();
            let sth = k.sign(42, [7u8; 32], 1_795_543_247_000);
            assert!(pk.verify(&sth), "{alg:?}");
            let mut bad = sth.clone();
            bad.tree_size = 41;
            assert!(!pk.verify(&bad));
            let mut bad = sth.clone();
            bad.root_hash[0] ^= 1;
            assert!(!pk.verify(&bad));
            let mut bad = sth.clone();
            bad.timestamp_ms += 1;
            assert!(!pk.verify(&bad));
            let other = TreeSigner::generate(alg).public_key();
            assert!(!other.verify(&sth));
            let restored = TreeSigner::from_secret(alg, &k.secret_bytes()).unwrap();
            assert_eq!(restored.public_key(), k.public_key());
            assert!(pk.verify(&restored.sign(1, [0u8; 32], 0)));
        }
        assert!(PublicKey::from_text("rsa:00").is_none());
        assert!(PublicKey::from_text("ed25519:0g").is_none());
    }
}
