//! Whole-log verification: recompute the tree over every event in order and check every
//! signed tree head against it — signature, size, root — so that a changed, deleted,
//! reordered or inserted event, a truncated tail or a log re-signed by another key is found.

use crate::merkle::{Hash, HashAlg};
use crate::sth::{PublicKey, SignedTreeHead};

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first.
/// Appending is amortized O(1) and the root of the tree so far is O(log n), so verifying a
/// log with many tree heads stays linear.
#[derive(Default)]
pub struct Frontier {
    /// (height, hash): subtree of 2^height leaves.
    nodes: Vec<(u32, Hash)>,
    size: u64,
}

impl Frontier {
    pub fn push(&mut self, alg: HashAlg, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(h, left)) = self.nodes.last() {
            if h != node.0 {
                break;
            }
            self.nodes.pop();
            node = (h + 1, alg.node(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// MTH of the leaves pushed so far (RFC 6962's left-heavy shape).
    pub fn root(&self, alg: HashAlg) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut r)) = it.next() else {
            return alg.empty();
        };
        for (_, left) in it {
            r = alg.node(left, &r);
        }
        r
    }
}

fn looks_like_event(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
        && bytes.last() == Some(&b'}')
        && !bytes.contains(&b'\n')
        && std::str::from_utf8(bytes).is_ok()
}

/// What a successful verification saw.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub events: u64,
    pub last_head: Option<SignedTreeHead>,
}

/// The first thing found wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    /// The first event index the failure concerns.
    pub index: u64,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "index {}: {}", self.index, self.what)
    }
}

/// Verifies events (canonical bytes, in sequence order) against tree heads (any order).
pub fn verify_log<'a>(
    alg: HashAlg,
    events: impl IntoIterator<Item = &'a [u8]>,
    heads: &[SignedTreeHead],
    key: &PublicKey,
) -> Result<Verified, Failure> {
    let mut v = LogVerifier::new(alg, heads, key)?;
    for e in events {
        v.push(e)?;
    }
    v.finish()
}

/// Streaming form of [`verify_log`]: memory stays at the tree's frontier and the heads,
/// whatever the number of events.
pub struct LogVerifier {
    alg: HashAlg,
    heads: Vec<SignedTreeHead>,
    next: usize,
    checked_to: u64,
    frontier: Frontier,
}

impl LogVerifier {
    /// Checks every head's signature.
    pub fn new(
        alg: HashAlg,
        heads: &[SignedTreeHead],
        key: &PublicKey,
    ) -> Result<LogVerifier, Failure> {
        let mut heads = heads.to_vec();
        heads.sort_by_key(|h| (h.tree_size, h.timestamp_ms));
        for h in &heads {
            if !key.verify(h) {
                return Err(Failure {
                    index: h.tree_size,
                    what: format!(
                        "the tree head of size {} is not signed by the given public key",
                        h.tree_size
                    ),
                });
            }
        }
        // Heads are not required to be in time order: with several nodes, one may sign a
        // smaller tree a moment after another signed a larger one.
        let mut v = LogVerifier {
            alg,
            heads,
            next: 0,
            checked_to: 0,
            frontier: Frontier::default(),
        };
        v.check_heads()?;
        Ok(v)
    }

    fn check_heads(&mut self) -> Result<(), Failure> {
        while let Some(h) = self.heads.get(self.next) {
            if h.tree_size != self.frontier.size() {
                break;
            }
            if self.frontier.root(self.alg) != h.root_hash {
                return Err(Failure {
                    index: self.checked_to,
                    what: format!(
                        "events {}..{} do not hash to the signed tree head of size {} \
                         (changed, deleted, reordered or inserted events)",
                        self.checked_to, h.tree_size, h.tree_size
                    ),
                });
            }
            self.checked_to = h.tree_size;
            self.next += 1;
        }
        Ok(())
    }

    /// The next event of the log.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let index = self.frontier.size();
        // A cheap shape check that names the event whose bytes were broken; any other
        // change is found by the tree heads (a full parse per event would halve the speed).
        if !looks_like_event(bytes) {
            return Err(Failure {
                index,
                what: "not a canonical audit event (altered bytes)".into(),
            });
        }
        self.frontier.push(self.alg, self.alg.leaf(bytes));
        self.check_heads()
    }

    /// After the last event: no head may cover more than the log holds.
    pub fn finish(self) -> Result<Verified, Failure> {
        if let Some(h) = self.heads.get(self.next) {
            return Err(Failure {
                index: self.frontier.size(),
                what: format!(
                    "a signed tree head covers {} events but the log has {} (truncated)",
                    h.tree_size,
                    self.frontier.size()
                ),
            });
        }
        Ok(Verified {
            events: self.frontier.size(),
            last_head: self.heads.last().cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::merkle::root;
    use crate::sth::{SigAlg, TreeSigner};
    use std::collections::BTreeMap;

    fn event(i: usize) -> Vec<u8> {
        Event {
            time_ms: 1_795_543_247_000 + i as i64,
            actor: format!("user{}", i % 7),
            actor_kind: "user".into(),
            request_id: Some(format!("r{i}")),
            action: "read".into(),
            collection: Some("customers".into()),
            record_ids: vec![format!("id-{i}")],
            fields: BTreeMap::from([("mobile".into(), "masked".into())]),
            purpose: Some("customer_service".into()),
            outcome: "ok".into(),
            ..Event::default()
        }
        .canonical()
    }

    struct Log {
        alg: HashAlg,
        signer: TreeSigner,
        events: Vec<Vec<u8>>,
        heads: Vec<SignedTreeHead>,
    }

    fn log(alg: HashAlg, sig: SigAlg, n: usize, every: usize) -> Log {
        let signer = TreeSigner::generate(sig);
        let events: Vec<Vec<u8>> = (0..n).map(event).collect();
        let leaves: Vec<Hash> = events.iter().map(|e| alg.leaf(e)).collect();
        let heads = (1..=n)
            .filter(|s| s % every == 0 || *s == n)
            .map(|s| signer.sign(s as u64, root(alg, &leaves[..s]), s as i64))
            .collect();
        Log {
            alg,
            signer,
            events,
            heads,
        }
    }

    fn run(l: &Log) -> Result<Verified, Failure> {
        verify_log(
            l.alg,
            l.events.iter().map(Vec::as_slice),
            &l.heads,
            &l.signer.public_key(),
        )
    }

    #[test]
    fn frontier_matches_the_recursive_root() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            let mut f = Frontier::default();
            let mut leaves = vec![];
            assert_eq!(f.root(alg), alg.empty());
            for i in 0..70 {
                let l = alg.leaf(&event(i));
                leaves.push(l);
                f.push(alg, l);
                assert_eq!(f.root(alg), root(alg, &leaves), "{i}");
            }
        }
    }

    #[test]
    fn an_intact_log_verifies() {
        for (alg, sig) in [
            (HashAlg::Sha256, SigAlg::Ed25519),
            (HashAlg::Sm3, SigAlg::Sm2),
        ] {
            let l = log(alg, sig, 100, 7);
            let v = run(&l).unwrap();
            assert_eq!(v.events, 100);
            assert_eq!(v.last_head.unwrap().tree_size, 100);
        }
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let fresh = || log(HashAlg::Sha256, SigAlg::Ed25519, 60, 10);
        // One byte changed inside a value: still JSON, so found by the tree head.
        let mut l = fresh();
        let at = l.events[25].windows(3).position(|w| w == b"id-").unwrap() + 3;
        l.events[25][at] = b'9';
        assert_eq!(run(&l).unwrap_err().index, 20);
        // One byte that breaks the encoding: found at the event itself.
        let mut l = fresh();
        l.events[33][0] = b'[';
        assert_eq!(run(&l).unwrap_err().index, 33);
        // Deleted, swapped, inserted.
        let mut l = fresh();
        l.events.remove(41);
        assert!(run(&l).is_err());
        let mut l = fresh();
        l.events.swap(12, 13);
        assert_eq!(run(&l).unwrap_err().index, 10);
        let mut l = fresh();
        l.events.insert(30, event(999));
        assert!(run(&l).is_err());
        // Tail truncated after a signed head.
        let mut l = fresh();
        l.events.truncate(55);
        assert!(run(&l).unwrap_err().what.contains("truncated"));
        // Whole log recomputed and signed by another key.
        let mut l = fresh();
        l.events[5] = event(500);
        let other = TreeSigner::generate(SigAlg::Ed25519);
        let leaves: Vec<Hash> = l.events.iter().map(|e| l.alg.leaf(e)).collect();
        l.heads = l
            .heads
            .iter()
            .map(|h| {
                other.sign(
                    h.tree_size,
                    root(l.alg, &leaves[..h.tree_size as usize]),
                    h.timestamp_ms,
                )
            })
            .collect();
        assert!(run(&l).unwrap_err().what.contains("not signed"));
        // A head whose signature was kept but whose root was changed.
        let mut l = fresh();
        l.heads[2].root_hash[0] ^= 1;
        assert!(run(&l).is_err());
    }
}
