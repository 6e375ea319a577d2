//! The stored form of a record's encrypted fields: one binary value (BLOB/BYTEA) holding
//! `0x01` then, per field, `name length (u8) ‖ name ‖ sealed length (u16, big endian) ‖
//! nonce ‖ ciphertext ‖ tag`. No text encoding at all, and decryption in place in a single
//! buffer.
//!
//! The format is public so that operators' tools (and tests playing a malicious DBA) can
//! read and rewrite it; rewriting never helps an attacker, since every sealed value is bound
//! to its record, field and key by its AAD.

const VERSION: u8 = 1;

/// Sealed fields of one record, in the order they were added.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct SealedFields {
    pub entries: Vec<(String, Vec<u8>)>,
}

impl SealedFields {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn set(&mut self, name: &str, sealed: Vec<u8>) {
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = sealed,
            None => self.entries.push((name.to_string(), sealed)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| n != name);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(
            1 + self
                .entries
                .iter()
                .map(|(n, v)| 3 + n.len() + v.len())
                .sum::<usize>(),
        );
        buf.push(VERSION);
        for (name, sealed) in &self.entries {
            push_entry(&mut buf, name, sealed);
        }
        buf
    }

    pub fn decode(buf: &[u8]) -> Option<SealedFields> {
        let mut entries = Vec::new();
        for (name, range) in entries_of(buf)? {
            entries.push((name.to_string(), buf[range].to_vec()));
        }
        Some(SealedFields { entries })
    }
}

/// Appends one entry to a raw (not yet base64) buffer that starts with the version byte.
pub(crate) fn push_entry(buf: &mut Vec<u8>, name: &str, sealed: &[u8]) {
    debug_assert!(name.len() <= u8::MAX as usize && sealed.len() <= u16::MAX as usize);
    buf.push(name.len() as u8);
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(&(sealed.len() as u16).to_be_bytes());
    buf.extend_from_slice(sealed);
}

/// Appends one entry whose sealed value `write` appends to the buffer itself.
pub(crate) fn push_entry_with(buf: &mut Vec<u8>, name: &str, write: impl FnOnce(&mut Vec<u8>)) {
    buf.push(name.len() as u8);
    buf.extend_from_slice(name.as_bytes());
    let len_at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    write(buf);
    let len = buf.len() - len_at - 2;
    assert!(
        len <= u16::MAX as usize,
        "sealed field too long for the stored form"
    );
    buf[len_at..len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
}

type Range = std::ops::Range<usize>;

/// The entries of a raw buffer: field name and the byte range of its sealed value.
pub(crate) fn entries_of(buf: &[u8]) -> Option<Vec<(&str, Range)>> {
    entry_ranges(buf)?
        .into_iter()
        .map(|(n, r)| Some((std::str::from_utf8(&buf[n]).ok()?, r)))
        .collect()
}

/// The entries of a raw buffer as byte ranges (name, sealed value), borrowing nothing so
/// the values can then be decrypted in place.
pub(crate) fn entry_ranges(buf: &[u8]) -> Option<Vec<(Range, Range)>> {
    if buf.first() != Some(&VERSION) {
        return None;
    }
    let mut at = 1;
    let mut out = Vec::with_capacity(16);
    while at < buf.len() {
        let n = *buf.get(at)? as usize;
        let name = at + 1..at + 1 + n;
        buf.get(name.clone())?;
        at += 1 + n;
        let len = u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]) as usize;
        at += 2;
        if at + len > buf.len() {
            return None;
        }
        out.push((name, at..at + len));
        at += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_edits() {
        let mut f = SealedFields::default();
        f.set("mobile", vec![1, 2, 3]);
        f.set("email", vec![9; 300]);
        f.set("mobile", vec![4]);
        let back = SealedFields::decode(&f.encode()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.get("mobile"), Some(&[4u8][..]));
        let mut g = back.clone();
        g.remove("email");
        assert_eq!(g.entries.len(), 1);
    }

    #[test]
    fn damaged_text_is_refused() {
        assert!(SealedFields::decode(b"").is_none());
        assert!(SealedFields::decode(&[2]).is_none());
        assert!(SealedFields::decode(&[1, 3, b'a']).is_none());
        assert!(SealedFields::decode(&[1, 1, b'a', 0, 9, 1]).is_none());
    }
}
