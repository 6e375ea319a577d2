//! Width folding for the scanner, with a way back to the original byte offsets.
//!
//! Chinese input methods type full-width digits and letters (`１３８`, `Ｅ１２３`) as readily
//! as ASCII ones, so the detectors look at a folded copy. Only the characters that change
//! what a detector sees are folded: full-width digits, letters and the few punctuation
//! marks that join or delimit values (`＠．－＋（）＿` and the ideographic space).
//! Full-width commas, colons and the like stay as they are: the scanner treats them as
//! boundaries either way, and leaving them alone keeps ordinary Chinese text (which is
//! full of `，` and `：`) on the fast path that borrows the input and maps nothing.
//!
//! Every folded character shrinks from 3 bytes to 1, so the map back to the original is a
//! sorted list of breakpoints `(folded offset, cumulative shrink)`, one per folded
//! character, looked up only for the few offsets that end up in a finding.

use std::borrow::Cow;

/// The folded ASCII byte for a character, if the scanner folds it.
fn folded(c: char) -> Option<u8> {
    match c {
        '\u{3000}' => Some(b' '),
        '０'..='９'
        | 'Ａ'..='Ｚ'
        | 'ａ'..='ｚ'
        | '＠'
        | '．'
        | '－'
        | '＋'
        | '（'
        | '）'
        | '＿' => Some((c as u32 - 0xFEE0) as u8),
        _ => None,
    }
}

/// A width-folded text and the map from its offsets back to the original's.
pub(crate) struct Folded<'a> {
    pub text: Cow<'a, str>,
    /// `(folded offset, shrink)`: at and after the folded offset, the original offset is
    /// the folded one plus `shrink`.
    breaks: Vec<(usize, usize)>,
}

impl<'a> Folded<'a> {
    pub fn new(original: &'a str) -> Folded<'a> {
        let bytes = original.as_bytes();
        // Every folded character starts with 0xEF (U+FFxx) or is U+3000 (E3 80 80); the
        // lead bytes come from `memchr2`, and a byte test settles most of them (Chinese
        // text is full of `，：（` and `。、`, which start with the same bytes): U+FF08..U+FF3F
        // is EF BC 88..BF, U+FF41..U+FF5A is EF BD 81..9A.
        let fold_at = |p: usize| -> Option<u8> {
            let (b1, b2) = (*bytes.get(p + 1)?, *bytes.get(p + 2)?);
            match (bytes[p], b1) {
                (0xEF, 0xBC) if (0x88..=0xBF).contains(&b2) => {}
                (0xEF, 0xBD) if (0x81..=0x9A).contains(&b2) => {}
                (0xE3, 0x80) if b2 == 0x80 => return Some(b' '),
                _ => return None,
            }
            folded(char::from_u32(
                0xF000 | ((u32::from(b1) & 0x3F) << 6) | (u32::from(b2) & 0x3F),
            )?)
        };
        if original.is_ascii() {
            // Most field values: nothing to look for.
            return Folded {
                text: Cow::Borrowed(original),
                breaks: Vec::new(),
            };
        }
        // The text between folded characters is copied in one piece each.
        let mut out: Option<String> = None;
        let mut breaks = Vec::new();
        let (mut copied, mut shrink) = (0, 0);
        for p in memchr::memchr2_iter(0xEF, 0xE3, bytes) {
            let Some(b) = fold_at(p) else { continue };
            let o = out.get_or_insert_with(|| {
                let mut spare = SPARE.take();
                spare.reserve(original.len());
                spare
            });
            o.push_str(&original[copied..p]);
            o.push(char::from(b));
            shrink += 2;
            breaks.push((o.len(), shrink));
            copied = p + 3;
        }
        let text = match out {
            None => Cow::Borrowed(original),
            Some(mut o) => {
                o.push_str(&original[copied..]);
                Cow::Owned(o)
            }
        };
        Folded { text, breaks }
    }

    /// The original offset of a folded offset (which is on a character boundary).
    #[inline]
    pub fn original(&self, pos: usize) -> usize {
        let i = self.breaks.partition_point(|&(at, _)| at <= pos);
        match i {
            0 => pos,
            _ => pos + self.breaks[i - 1].1,
        }
    }
}

thread_local! {
    /// The last folded copy's allocation, reused by the next one on this thread: text
    /// is folded a block (up to a megabyte) at a time, and fresh memory of that size
    /// costs page faults every time.
    static SPARE: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

impl Drop for Folded<'_> {
    fn drop(&mut self) {
        if let Cow::Owned(s) = &mut self.text {
            let mut s = std::mem::take(s);
            s.clear();
            // Keep the larger of the two.
            let spare = SPARE.take();
            SPARE.set(if spare.capacity() > s.capacity() {
                spare
            } else {
                s
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_plain_chinese_borrow() {
        for s in ["abc 123", "客户，您好：请稍等。", ""] {
            let f = Folded::new(s);
            assert!(matches!(f.text, Cow::Borrowed(_)));
            assert_eq!(f.original(s.len()), s.len());
        }
    }

    #[test]
    fn offsets_map_back_to_original_characters() {
        let s = "手机：１３８　1234，５６７８＠ｑｑ．ｃｏｍ。";
        let f = Folded::new(s);
        assert_eq!(f.text, "手机：138 1234，5678@qq.com。");
        for (fi, fc) in f.text.char_indices() {
            let oi = f.original(fi);
            let oc = s[oi..].chars().next().unwrap();
            let expect = crate::fold_width(&oc.to_string()).into_owned();
            // A folded char is the fold of the original char at the mapped offset.
            if fc.is_ascii() {
                assert_eq!(expect.chars().next(), Some(fc), "at {fi}");
            } else {
                assert_eq!(oc, fc);
            }
        }
        assert_eq!(f.original(f.text.len()), s.len());
    }
}
