//! RFC 6962 §2.1 Merkle tree hash, audit paths and consistency proofs (the algorithms of
//! RFC 9162 §2.1.3–2.1.4 for verification).

use sha2::Digest;

pub type Hash = [u8; 32];

/// The hash function of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sm3,
}

impl HashAlg {
    fn hash(self, parts: &[&[u8]]) -> Hash {
        match self {
            HashAlg::Sha256 => {
                let mut h = sha2::Sha256::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().into()
            }
            HashAlg::Sm3 => {
                let mut h = sm3::Sm3::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().into()
            }
        }
    }

    /// `H(0x00 ‖ data)`.
    pub fn leaf(self, data: &[u8]) -> Hash {
        self.hash(&[&[0u8], data])
    }

    /// `H(0x01 ‖ left ‖ right)`.
    pub fn node(self, left: &Hash, right: &Hash) -> Hash {
        self.hash(&[&[1u8], left, right])
    }

    /// The hash of the empty tree: `H()`.
    pub fn empty(self) -> Hash {
        self.hash(&[])
    }
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[n]) over leaf hashes.
pub fn root(alg: HashAlg, leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => alg.empty(),
        1 => leaves[0],
        n => {
            let k = split(n);
            alg.node(&root(alg, &leaves[..k]), &root(alg, &leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the audit path of leaf `m`.
pub fn inclusion_proof(alg: HashAlg, leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m >= leaves.len() {
        return None;
    }
    let mut out = vec![];
    path(alg, leaves, m, &mut out);
    Some(out)
}

fn path(alg: HashAlg, leaves: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(alg, &leaves[..k], m, out);
        out.push(root(alg, &leaves[k..]));
    } else {
        path(alg, &leaves[k..], m - k, out);
        out.push(root(alg, &leaves[..k]));
    }
}

/// PROOF(m, D[n]): the consistency proof between the first `m` leaves and all of them.
pub fn consistency_proof(alg: HashAlg, leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut out = vec![];
    subproof(alg, leaves, m, true, &mut out);
    Some(out)
}

fn subproof(alg: HashAlg, leaves: &[Hash], m: usize, complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(alg, leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(alg, &leaves[..k], m, complete, out);
        out.push(root(alg, &leaves[k..]));
    } else {
        subproof(alg, &leaves[k..], m - k, false, out);
        out.push(root(alg, &leaves[..k]));
    }
}

/// Verifies an audit path (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    alg: HashAlg,
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = alg.node(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = alg.node(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Verifies a consistency proof between tree heads (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    alg: HashAlg,
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> bool {
    if size1 == 0 || size1 > size2 {
        return false;
    }
    if size1 == size2 {
        return proof.is_empty() && root1 == root2;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if size1.is_power_of_two() {
        path.insert(0, *root1);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = alg.node(c, &fr);
            sr = alg.node(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = alg.node(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == *root1 && sr == *root2 && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(alg: HashAlg, n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| alg.leaf(format!("event {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn known_answers() {
        let alg = HashAlg::Sha256;
        // SHA-256 of the empty string, and of the single byte 0x00 (the empty leaf).
        assert_eq!(
            hex(&alg.empty()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&alg.leaf(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let l = leaves(alg, 2);
        assert_eq!(root(alg, &l), alg.node(&l[0], &l[1]));
        let l3 = leaves(alg, 3);
        assert_eq!(root(alg, &l3), alg.node(&alg.node(&l3[0], &l3[1]), &l3[2]));
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            for n in 1..=33 {
                let l = leaves(alg, n);
                let r = root(alg, &l);
                for m in 0..n {
                    let p = inclusion_proof(alg, &l, m).unwrap();
                    assert!(
                        verify_inclusion(alg, &l[m], m as u64, n as u64, &p, &r),
                        "{n} {m}"
                    );
                    let other = (m + 1) % n;
                    if other != m {
                        assert!(!verify_inclusion(
                            alg, &l[other], m as u64, n as u64, &p, &r
                        ));
                    }
                    // A proof with one hash missing or added proves nothing.
                    if !p.is_empty() {
                        assert!(!verify_inclusion(
                            alg,
                            &l[m],
                            m as u64,
                            n as u64,
                            &p[1..],
                            &r
                        ));
                    }
                    let mut longer = p.clone();
                    longer.push(r);
                    assert!(!verify_inclusion(
                        alg, &l[m], m as u64, n as u64, &longer, &r
                    ));
                }
                assert!(inclusion_proof(alg, &l, n).is_none());
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_forked_history_does_not() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            for n in 1..=33 {
                let l = leaves(alg, n);
                let r2 = root(alg, &l);
                for m in 1..=n {
                    let r1 = root(alg, &l[..m]);
                    let p = consistency_proof(alg, &l, m).unwrap();
                    assert!(
                        verify_consistency(alg, m as u64, n as u64, &r1, &r2, &p),
                        "{m}->{n}"
                    );
                    // A fork: the old head of a different history.
                    let mut forked = l[..m].to_vec();
                    forked[m - 1] = alg.leaf(b"forged");
                    let f1 = root(alg, &forked);
                    assert!(
                        !verify_consistency(alg, m as u64, n as u64, &f1, &r2, &p),
                        "{m}->{n}"
                    );
                }
            }
        }
    }
}
