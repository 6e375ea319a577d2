//! Text that is not UTF-8: GBK/GB18030, what Excel and many Chinese Windows tools still
//! write. Such files are decoded for the detectors, and every offset is mapped back to the
//! file's own bytes, so `start`/`end` stay byte offsets in the file.
//!
//! Splitting raw GB18030 bytes on ASCII newline, comma and double quote is safe: those
//! bytes never occur inside a multi-byte character (trail bytes are 0x30–0x39 or
//! 0x40–0xFE). JSON is UTF-8 by definition (RFC 8259) and is not decoded.

use encoding_rs::GB18030;

/// Whether a file's first bytes are GB18030 rather than UTF-8: not valid UTF-8 (beyond a
/// character cut at the end of the sample), but valid GB18030 with some Chinese in it.
pub(crate) fn sniff_gb18030(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => return false,
        Err(e) if e.error_len().is_none() => return false, // only cut at the end
        Err(_) => {}
    }
    // Leave out a possibly cut last character.
    let mut end = head.len();
    let mut i = head.len().saturating_sub(4);
    while i < head.len() {
        if head[i] >= 0x81 {
            let len = seq_len(&head[i..]);
            if i + len > head.len() {
                end = i;
                break;
            }
            i += len;
        } else {
            i += 1;
        }
    }
    GB18030
        .decode_without_bom_handling_and_without_replacement(&head[..end])
        .is_some_and(|s| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)))
}

/// Length of the GB18030 sequence starting at `b[0]` (≥ 0x81).
fn seq_len(b: &[u8]) -> usize {
    match b.get(1) {
        Some(0x30..=0x39) => 4,
        _ => 2,
    }
}

/// Characters in raw GB18030 bytes.
pub(crate) fn count_chars(raw: &[u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        i += if raw[i] >= 0x81 && raw[i] != 0xFF {
            seq_len(&raw[i..])
        } else {
            1
        };
        n += 1;
    }
    n
}

/// UTF-8 text decoded from GB18030 bytes, with where each of its bytes came from.
pub(crate) struct Decoded {
    pub text: String,
    /// `map[i]`: offset in the raw bytes of UTF-8 byte `i`; `map[text.len()]` = raw length
    /// (`u32`: blocks and cells are far below 4 GiB).
    pub map: Vec<u32>,
}

/// Decodes GB18030 (a superset of GBK and GB2312). An invalid sequence becomes U+FFFD,
/// which no detector matches, so values around it are still found.
pub(crate) fn decode(raw: &[u8]) -> Decoded {
    let mut text = String::with_capacity(raw.len() + raw.len() / 2);
    let mut map = Vec::with_capacity(raw.len() + raw.len() / 2 + 1);
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b < 0x80 {
            text.push(b as char);
            map.push(i as u32);
            i += 1;
            continue;
        }
        let len = if b == 0x80 || b == 0xFF {
            1
        } else {
            seq_len(&raw[i..])
        }
        .min(raw.len() - i);
        let ch = GB18030
            .decode_without_bom_handling_and_without_replacement(&raw[i..i + len])
            .and_then(|s| {
                let mut cs = s.chars();
                let c = cs.next();
                if cs.next().is_none() {
                    c
                } else {
                    None
                }
            });
        let (ch, used) = match ch {
            Some(c) => (c, len),
            None => ('\u{FFFD}', 1),
        };
        for _ in 0..ch.len_utf8() {
            map.push(i as u32);
        }
        text.push(ch);
        i += used;
    }
    map.push(raw.len() as u32);
    Decoded { text, map }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_round_trip_with_offsets() {
        let (raw, _, _) = GB18030.encode("客户张伟，手机13812345678。");
        assert!(sniff_gb18030(&raw));
        assert!(!sniff_gb18030("客户张伟".as_bytes()));
        assert!(!sniff_gb18030(b"plain ascii"));
        let d = decode(&raw);
        assert_eq!(d.text, "客户张伟，手机13812345678。");
        let at = d.text.find("138").unwrap();
        // 7 Chinese characters before the number, two bytes each in GBK.
        assert_eq!(d.map[at], 14);
        assert_eq!(d.map[d.text.len()] as usize, raw.len());
        // A cut last character does not make a UTF-8 file look like GBK.
        let utf8 = "客户张伟".as_bytes();
        assert!(!sniff_gb18030(&utf8[..utf8.len() - 1]));
    }
}
