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
    let mth = |a: usize, b: usize| Some(root(alg, &leaves[a..b]));
    let mut out = vec![];
    path(&mth, 0, leaves.len(), m, &mut out)?;
    Some(out)
}

/// The hash of the leaves `a..b`, if it can be had.
type Mth<'a> = dyn Fn(usize, usize) -> Option<Hash> + 'a;

/// PATH(m, D[a..b]), `m` relative to `a`.
fn path(mth: &Mth, a: usize, b: usize, m: usize, out: &mut Vec<Hash>) -> Option<()> {
    let n = b - a;
    if n <= 1 {
        return Some(());
    }
    let k = split(n);
    if m < k {
        path(mth, a, a + k, m, out)?;
        out.push(mth(a + k, b)?);
    } else {
        path(mth, a + k, b, m - k, out)?;
        out.push(mth(a, a + k)?);
    }
    Some(())
}

/// PROOF(m, D[n]): the consistency proof between the first `m` leaves and all of them.
pub fn consistency_proof(alg: HashAlg, leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mth = |a: usize, b: usize| Some(root(alg, &leaves[a..b]));
    let mut out = vec![];
    subproof(&mth, 0, leaves.len(), m, true, &mut out)?;
    Some(out)
}

/// SUBPROOF(m, D[a..b], complete), `m` relative to `a`.
fn subproof(
    mth: &Mth,
    a: usize,
    b: usize,
    m: usize,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Option<()> {
    let n = b - a;
    if m == n {
        if !complete {
            out.push(mth(a, b)?);
        }
        return Some(());
    }
    let k = split(n);
    if m <= k {
        subproof(mth, a, a + k, m, complete, out)?;
        out.push(mth(a + k, b)?);
    } else {
        subproof(mth, a + k, b, m - k, false, out)?;
        out.push(mth(a, a + k)?);
    }
    Some(())
}

/// A log too long to hash whole for every proof. The hash of every complete chunk of
/// `chunk` leaves (a power of two) is kept — 32 bytes per chunk, they never change in an
/// append-only log — and proofs need the leaf hashes of at most three chunks: the one the
/// proven leaf (or the older tree's edge) is in, and the incomplete tail. Every other
/// subtree on a proof's path is whole chunks, whose hash is the tree hash over their chunk
/// hashes (a chunk is a power of two, so the RFC 6962 splits fall on chunk boundaries).
pub struct Chunked<'a> {
    pub alg: HashAlg,
    /// Leaves per chunk, a power of two.
    pub chunk: usize,
    /// Tree hash of chunk `i`'s leaves, for at least every complete chunk below `size`.
    pub roots: &'a [Hash],
    /// Leaf hashes of the chunks loaded, by chunk index (a chunk's first leaves only, for
    /// the tail).
    pub loaded: &'a std::collections::BTreeMap<usize, Vec<Hash>>,
    /// Leaves in the tree.
    pub size: usize,
}

impl Chunked<'_> {
    /// The chunks whose leaves a proof about leaf or edge `m` needs: `m`'s, the one
    /// before an edge at a chunk boundary, and the tail (the last, incomplete chunk).
    pub fn chunks_needed(chunk: usize, size: usize, m: usize) -> Vec<usize> {
        let mut v = vec![
            m / chunk,
            m.saturating_sub(1) / chunk,
            size.saturating_sub(1) / chunk,
        ];
        v.sort_unstable();
        v.dedup();
        v
    }

    fn mth(&self, a: usize, b: usize) -> Option<Hash> {
        let c = self.chunk;
        match b - a {
            0 => Some(self.alg.empty()),
            _ if a.is_multiple_of(c) && b.is_multiple_of(c) && b / c <= self.roots.len() => {
                Some(root(self.alg, &self.roots[a / c..b / c]))
            }
            _ if a / c == (b - 1) / c => {
                let base = a / c * c;
                let leaves = self.loaded.get(&(a / c))?;
                leaves.get(a - base..b - base).map(|l| root(self.alg, l))
            }
            n => {
                let k = split(n);
                Some(self.alg.node(&self.mth(a, a + k)?, &self.mth(a + k, b)?))
            }
        }
    }

    /// The hash of leaf `i`, if its chunk is loaded.
    pub fn leaf(&self, i: usize) -> Option<Hash> {
        self.loaded
            .get(&(i / self.chunk))?
            .get(i % self.chunk)
            .copied()
    }

    /// [`inclusion_proof`]; `None` also when a needed chunk is not loaded.
    pub fn inclusion_proof(&self, m: usize) -> Option<Vec<Hash>> {
        if m >= self.size || !self.chunk.is_power_of_two() {
            return None;
        }
        let mut out = vec![];
        path(&|a, b| self.mth(a, b), 0, self.size, m, &mut out)?;
        Some(out)
    }

    /// [`consistency_proof`]; `None` also when a needed chunk is not loaded.
    pub fn consistency_proof(&self, m: usize) -> Option<Vec<Hash>> {
        if m == 0 || m > self.size || !self.chunk.is_power_of_two() {
            return None;
        }
        let mut out = vec![];
        subproof(&|a, b| self.mth(a, b), 0, self.size, m, true, &mut out)?;
        Some(out)
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
    fn chunked_proofs_equal_whole_log_proofs_from_three_chunks() {
        let alg = HashAlg::Sha256;
        for chunk in [1usize, 2, 4, 8] {
            for n in 1..=70usize {
                let l = leaves(alg, n);
                let roots: Vec<Hash> = l.chunks_exact(chunk).map(|c| root(alg, c)).collect();
                for m in 0..=n {
                    let mut loaded = std::collections::BTreeMap::new();
                    for i in Chunked::chunks_needed(chunk, n, m) {
                        let end = ((i + 1) * chunk).min(n);
                        if i * chunk < end {
                            loaded.insert(i, l[i * chunk..end].to_vec());
                        }
                    }
                    let t = Chunked {
                        alg,
                        chunk,
                        roots: &roots,
                        loaded: &loaded,
                        size: n,
                    };
                    if m < n {
                        assert_eq!(t.leaf(m), Some(l[m]));
                        assert_eq!(
                            t.inclusion_proof(m),
                            inclusion_proof(alg, &l, m),
                            "inclusion chunk {chunk} n {n} m {m}"
                        );
                    }
                    if m > 0 {
                        assert_eq!(
                            t.consistency_proof(m),
                            consistency_proof(alg, &l, m),
                            "consistency chunk {chunk} n {n} m {m}"
                        );
                    }
                }
                // Without the tail's leaves a proof cannot be made (not a wrong one).
                if !n.is_multiple_of(chunk) && n > chunk {
                    let t = Chunked {
                        alg,
                        chunk,
                        roots: &roots,
                        loaded: &std::collections::BTreeMap::new(),
                        size: n,
                    };
                    assert_eq!(t.inclusion_proof(0), None);
                }
            }
        }
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
