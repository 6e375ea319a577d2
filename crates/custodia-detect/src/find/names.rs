//! Person names: Chinese names next to a context word, English names after a title.
//!
//! A Chinese name has no delimiter, so it is read only where a context word says one is
//! there: after `客户`, `姓名：`, `联系人` … (surname, then one or two given-name characters)
//! or before a title such as `先生`, `经理` (reading backwards). A surname from the lexicon
//! is required; the given name stops at punctuation, at a non-CJK character, at a
//! function word or verb (`客户张伟要求…` gives `张伟`), and at another context word. The
//! few surnames that are also everyday words (`于`, `金`, `关`) must not start a common
//! word (`客户于今日来电`, `客户金额`).

use super::lexicon::{
    ideograph_at, ideograph_before, CharSet, Kind, Lexicon, NAME_BOUNDARY, STOP_GIVEN, SURNAMES,
};
use super::Scan;
use crate::PiiType as T;

/// Length in bytes of the surname at `q` (compound first), if one starts there.
fn surname_at(s: &[u8], q: usize) -> Option<usize> {
    if Lexicon::get().compound_surnames.contains_at(s, q) {
        return Some(6);
    }
    ideograph_at(s, q)
        .filter(|&c| SURNAMES.contains(c))
        .map(|_| 3)
}

/// Whether the two characters at `q` spell an ordinary word, not surname + given name.
fn stop_bigram(s: &[u8], q: usize) -> bool {
    Lexicon::get().stop_bigrams.contains_at(s, q)
}

fn title_at(sc: &Scan, i: usize) -> bool {
    ideograph_at(sc.s, i)
        .and_then(|c| sc.lex.at(sc.s, i, c))
        .is_some_and(|(_, k)| k == Kind::Title)
}

/// A Chinese name starting at `q`: its end and confidence.
fn name_at(sc: &Scan, q: usize) -> Option<(usize, f32)> {
    let s = sc.s;
    let surname = surname_at(s, q)?;
    if (surname == 3 && stop_bigram(s, q)) || place_at(sc, q) {
        return None;
    }
    let mut end = q + surname;
    let mut given = 0;
    while given < 2 {
        let Some(c) = ideograph_at(s, end) else { break };
        if STOP_GIVEN.contains(c) || sc.lex.stops_at(s, end) {
            break;
        }
        end += 3;
        given += 1;
    }
    if given == 0 {
        // `客户张先生`: a surname alone is a name only before a title.
        return title_at(sc, end).then_some((end, 0.8));
    }
    Some((end, 0.85))
}

/// Given-name characters that are also function words or verbs (`和`, `发`, `建`, `然`):
/// they end a name in running text (`客户王和他的妻子`), but belong to one that is
/// delimited (`客户韦和娜（身份证…`).
static WEAK_STOPS: CharSet = CharSet::empty().with_chars("和发建然信全中同");

/// Whether a province or city name starts at `q` (`企业客户武汉光谷…` is a company).
fn place_at(sc: &Scan, q: usize) -> bool {
    ideograph_at(sc.s, q)
        .and_then(|c| sc.lex.at(sc.s, q, c))
        .is_some_and(|(_, k)| k == Kind::Place)
}

/// A delimited name at `q`: surname and one or two characters, then punctuation, a
/// non-CJK character, the end of the text or a label. Under a label (`any`: `联系人：徐和少，`,
/// `"name":"赵和珊"`) the value is whole up to its delimiter, so the given name may hold
/// any character but a following label; elsewhere only [`WEAK_STOPS`] are let in.
fn field_name_at(sc: &Scan, q: usize, any: bool) -> Option<(usize, f32)> {
    let s = sc.s;
    let surname = surname_at(s, q)?;
    if (surname == 3 && stop_bigram(s, q)) || place_at(sc, q) {
        return None;
    }
    for given in [2, 1] {
        let end = q + surname + 3 * given;
        let chars_ok = (0..given).all(|k| {
            let at = q + surname + 3 * k;
            ideograph_at(s, at)
                .is_some_and(|c| any || !STOP_GIVEN.contains(c) || WEAK_STOPS.contains(c))
                && !sc.lex.stops_at(s, at)
        });
        let delimited =
            end <= s.len() && (ideograph_at(s, end).is_none() || (!any && sc.lex.stops_at(s, end)));
        if chars_ok && delimited {
            return Some((end, 0.8));
        }
    }
    None
}

/// Whether the context word ending at `p` labels a person field (`姓名`, `联系人`,
/// `经办人`, `户名`, or any word followed by a colon) rather than a noun in a sentence.
fn is_label(s: &[u8], p: usize) -> bool {
    let last = ideograph_before(s, p);
    matches!(last.and_then(char::from_u32), Some('人' | '名' | '席'))
        || s.get(p) == Some(&b':')
        || s[p..].starts_with("：".as_bytes())
}

/// After a context word ending at `p` (`客户`, `姓名`): separators, then a name.
pub(super) fn after_context(sc: &mut Scan, p: usize) -> Option<usize> {
    let s = sc.s;
    let label = is_label(s, p);
    let mut q = p;
    for _ in 0..3 {
        if matches!(s.get(q), Some(b' ' | b':' | b'\t')) {
            q += 1;
        } else if ["：", "为", "是", "叫", "　"]
            .iter()
            .any(|w| s[q..].starts_with(w.as_bytes()))
        {
            q += 3;
        } else {
            break;
        }
    }
    let (end, confidence) = name_at(sc, q).or_else(|| field_name_at(sc, q, label))?;
    sc.push(q, end, T::PersonName, confidence);
    Some(end)
}

/// Before a title at `t..after` (`李先生`, `张伟经理`): the name that ends at `t`.
pub(super) fn before_title(sc: &mut Scan, t: usize, after: usize) -> Option<usize> {
    let s = sc.s;
    for chars in (1..=4).rev() {
        let Some(start) = t.checked_sub(3 * chars) else {
            continue;
        };
        if (0..chars).any(|k| ideograph_at(s, start + 3 * k).is_none()) {
            continue;
        }
        let Some(surname) = surname_at(s, start) else {
            continue;
        };
        let given = chars - surname / 3;
        if given > 2 || (given > 0 && surname == 3 && stop_bigram(s, start)) {
            continue;
        }
        let given_ok = (0..given).all(|k| {
            let at = start + surname + 3 * k;
            ideograph_at(s, at).is_some_and(|c| !STOP_GIVEN.contains(c)) && !sc.lex.stops_at(s, at)
        });
        if !given_ok {
            continue;
        }
        // A longer name must start at a word boundary; a surname alone needs none.
        let bounded = chars == 1
            || ideograph_before(s, start).is_none_or(|c| NAME_BOUNDARY.contains(c))
            || sc.lex.stops_at(s, start.saturating_sub(3));
        if bounded {
            let confidence = if given == 0 { 0.8 } else { 0.85 };
            sc.push(start, t, T::PersonName, confidence);
            return Some(after);
        }
    }
    None
}

/// Capitalised words that follow a title but are not names.
const NOT_NAMES: &[&str] = &[
    "Customer",
    "Customers",
    "Sir",
    "Madam",
    "Valued",
    "Team",
    "All",
    "Service",
    "Support",
    "User",
    "The",
    "Client",
    "Manager",
    "Friend",
    "Member",
    "Colleague",
    "Colleagues",
    "Account",
    "Card",
    "Holder",
    "Name",
    "Please",
    "Thank",
    "Thanks",
    "Hello",
    "Hi",
    "Your",
    "Our",
    "This",
    "We",
    "I",
    "Bank",
    "Unknown",
    "None",
    "Null",
    "Test",
    "Admin",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "Dear",
    "Not",
    "Applicant",
    "Partner",
    "Guest",
    "Owner",
    "Number",
    "No",
    "Yes",
    "Sirs",
    "Madams",
];

/// An English title word at `i..j` (`Mr`, `Dear`, `Name`) and the capitalised words after
/// it; returns their end if they are a name.
pub(super) fn english(sc: &mut Scan, i: usize, j: usize) -> Option<usize> {
    let s = sc.s;
    let n = s.len();
    let (min_words, confidence) = match &s[i..j] {
        b"Mr" | b"Mrs" | b"Ms" | b"Miss" | b"Dr" | b"MR" | b"MRS" | b"MS" | b"Mx" => (1, 0.85),
        b"Dear" | b"DEAR" => (1, 0.8),
        b"Name" | b"name" | b"NAME" | b"Customer" | b"customer" | b"Client" | b"client"
        | b"Cardholder" | b"cardholder" | b"Attn" | b"Contact" | b"contact" | b"Holder"
        | b"holder" => (2, 0.8),
        _ => return None,
    };
    let mut k = j;
    if s.get(k) == Some(&b'.') {
        k += 1;
    }
    let colon = s.get(k) == Some(&b':');
    if colon {
        k += 1;
    }
    let spaces = k;
    while k < n && s[k] == b' ' {
        k += 1;
    }
    if k == spaces && !colon {
        return None;
    }
    if k < n && !s[k].is_ascii() {
        // `Customer 张伟 called`, `Dear 王芳`: a Chinese name after an English title.
        surname_at(s, k)?;
        let (end, confidence) = name_at(sc, k).or_else(|| field_name_at(sc, k, false))?;
        sc.push(k, end, T::PersonName, confidence);
        return Some(end);
    }
    let start = k;
    let mut end = k;
    let mut words = 0;
    while k < n && s[k].is_ascii_uppercase() {
        let w = k;
        k += 1;
        while k < n
            && (s[k].is_ascii_alphabetic()
                || (matches!(s[k], b'\'' | b'-')
                    && s.get(k + 1).is_some_and(u8::is_ascii_uppercase)))
        {
            k += 1;
        }
        if k < n && (s[k].is_ascii_digit() || s[k] == b'_') {
            break;
        }
        let word = std::str::from_utf8(&s[w..k]).unwrap_or("");
        if NOT_NAMES.contains(&word) {
            break;
        }
        if k - w == 1 {
            // An initial: `John A. Smith`.
            if s.get(k) != Some(&b'.') || words == 0 {
                break;
            }
            k += 1;
        }
        words += 1;
        end = k;
        if words == 3
            || !(s.get(k) == Some(&b' ') && s.get(k + 1).is_some_and(u8::is_ascii_uppercase))
        {
            break;
        }
        k += 1;
    }
    if words < min_words {
        return None;
    }
    let confidence = if words == 1 {
        confidence - 0.1
    } else {
        confidence
    };
    sc.push(start, end, T::PersonName, confidence);
    Some(end)
}

/// Keys that name a person, compared without case, `_` and `-` (`customerName`,
/// `holder_name`). A narrower list than the column hints: `productName=安心保` is not one.
const PERSON_KEYS: &[&[u8]] = &[
    b"name",
    b"fullname",
    b"realname",
    b"customername",
    b"custname",
    b"clientname",
    b"holdername",
    b"accountname",
    b"cardholder",
    b"cardholdername",
    b"contact",
    b"contactname",
    b"contactperson",
    b"recipient",
    b"recipientname",
    b"receiver",
    b"receivername",
    b"consignee",
    b"payee",
    b"payeename",
    b"payer",
    b"payername",
    b"applicant",
    b"applicantname",
    b"beneficiary",
    b"insuredname",
    b"agentname",
    b"operatorname",
    b"xm",
];

fn person_key(key: &[u8]) -> bool {
    let mut buf = [0u8; 24];
    let mut len = 0;
    for &b in key.iter().filter(|&&b| b != b'_' && b != b'-') {
        let Some(slot) = buf.get_mut(len) else {
            return false;
        };
        *slot = b.to_ascii_lowercase();
        len += 1;
    }
    PERSON_KEYS.contains(&&buf[..len])
}

/// A key and its value in a log line or an inline JSON object (`name=张伟`,
/// `"customerName":"王芳"`, `holder_name: 李娜`), the key at `i..j`: the Chinese name after
/// it, when the key is one that names a person ([`PERSON_KEYS`]).
pub(super) fn keyed(sc: &mut Scan, i: usize, j: usize) -> Option<usize> {
    let s = sc.s;
    let mut k = j;
    if s.get(k) == Some(&b'"') {
        k += 1;
    }
    if !matches!(s.get(k), Some(b':' | b'=')) {
        return None;
    }
    k += 1;
    while s.get(k) == Some(&b' ') && k - j < 4 {
        k += 1;
    }
    if s.get(k) == Some(&b'"') {
        k += 1;
    }
    surname_at(s, k)?;
    if !person_key(&s[i..j]) {
        return None;
    }
    let (end, confidence) = name_at(sc, k).or_else(|| field_name_at(sc, k, true))?;
    sc.push(k, end, T::PersonName, confidence);
    Some(end)
}

/// Before a reporting verb at `t..after` (`张伟要求…`, `李娜总反映…`): a name that is the
/// whole subject of its clause, from punctuation or a line start up to the verb (or up to
/// `总` before it). Without a context word the bar is higher: two to four characters, a
/// surname, no function characters, and nothing glued before it.
pub(super) fn before_verb(sc: &mut Scan, t: usize, after: usize) -> Option<usize> {
    let s = sc.s;
    let end = if ideograph_before(s, t) == Some('总' as u32) {
        t - 3
    } else {
        t
    };
    for chars in (2..=4).rev() {
        let Some(start) = end.checked_sub(3 * chars) else {
            continue;
        };
        let clause_start = start == 0
            || (ideograph_before(s, start).is_none() && !s[start - 1].is_ascii_alphanumeric());
        if !clause_start || (0..chars).any(|k| ideograph_at(s, start + 3 * k).is_none()) {
            continue;
        }
        let Some(surname) = surname_at(s, start) else {
            continue;
        };
        let given = chars - surname / 3;
        if !(1..=2).contains(&given)
            || (surname == 3 && stop_bigram(s, start))
            || place_at(sc, start)
        {
            continue;
        }
        let given_ok = (0..given).all(|k| {
            let at = start + surname + 3 * k;
            ideograph_at(s, at).is_some_and(|c| !STOP_GIVEN.contains(c) || WEAK_STOPS.contains(c))
                && !sc.lex.stops_at(s, at)
        });
        if given_ok {
            sc.push(start, end, T::PersonName, 0.75);
            return Some(after);
        }
    }
    None
}

/// After a title or role that labels the value after it (`客户经理：张伟`, `专员: 李娜`).
pub(super) fn after_role(sc: &mut Scan, after: usize) -> Option<usize> {
    let s = sc.s;
    let colon = s.get(after) == Some(&b':') || s[after..].starts_with("：".as_bytes());
    if !colon {
        return None;
    }
    after_context(sc, after)
}

/// A whole cell under a name header: its trimmed span and confidence.
pub(super) fn whole_cell(value: &str) -> Option<(usize, usize, f32)> {
    let (a, b) = super::trimmed(value);
    let v = &value[a..b];
    crate::validate::person_name_ok(v).then_some(())?;
    let bytes = v.as_bytes();
    let chars = v.chars().count();
    let all_cjk = v
        .chars()
        .all(|c| super::lexicon::is_ideograph(c as u32) || c == '·');
    let confidence = if all_cjk {
        match (chars, surname_at(bytes, 0).is_some()) {
            (2..=4, true) => 0.9,
            (2..=4, false) => 0.6,
            (5..=15, _) if v.contains('·') => 0.75,
            _ => return None,
        }
    } else if v.split(' ').count() <= 4
        && v.split(' ').all(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_alphabetic() || matches!(c, '\'' | '-' | '.'))
        })
    {
        0.8
    } else {
        return None;
    };
    Some((a, b, confidence))
}
