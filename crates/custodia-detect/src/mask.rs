//! Display masks: what a reader allowed only the masked view of a field gets to see.
//!
//! A mask keeps just enough for a person to recognise or tell apart a value (the surname,
//! a phone's carrier block and last digits, an address down to its district) and hides
//! what identifies the customer. Masks run on values read back from storage, which should
//! be canonical but may predate a validator change, so every function here works on
//! characters, accepts any string without panicking, and falls back to [`generic`] for a
//! value of unexpected shape. A non-empty input always comes back with at least one `*`:
//! a mask must never reveal a whole value.

const STAR: char = '*';

/// The characters of `s` (which has `len` of them) with all but the first `head` and
/// the last `tail` replaced by one star each. If that would keep every character, keeps
/// what [`generic`] keeps instead.
fn keep_ends(s: &str, len: usize, head: usize, tail: usize) -> String {
    let (head, tail) = if head + tail < len {
        (head, tail)
    } else {
        let k = generic_keep(len);
        (k, k)
    };
    // Byte offsets of the kept head and tail (the same as the character counts for the
    // ASCII values most masks are of).
    let (head_end, tail_start) = if s.len() == len {
        (head, len - tail)
    } else {
        let at = |k: usize| s.char_indices().nth(k).map_or(s.len(), |(i, _)| i);
        (at(head), at(len - tail))
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..head_end]);
    out.extend(std::iter::repeat_n(STAR, len - head - tail));
    out.push_str(&s[tail_start..]);
    out
}

/// How many characters the generic mask keeps at each end of a `len`-character value:
/// never so many that nothing is hidden.
fn generic_keep(len: usize) -> usize {
    match len {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

/// The mask for values without a type-specific rule: first 2 and last 2 characters kept,
/// one star per hidden character (fewer kept on values of 5 characters or less).
pub fn generic(s: &str) -> String {
    let len = s.chars().count();
    let k = generic_keep(len);
    keep_ends(s, len, k, k)
}

/// Compound (two-character) surnames, kept whole by the name mask.
pub(crate) const COMPOUND_SURNAMES: [&str; 37] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "百里", "呼延", "第五", "闻人", "澹台",
    "公冶", "太史", "申屠", "赫连", "钟离", "万俟", "濮阳", "单于", "拓跋", "仲孙", "东郭", "司空",
    "左丘",
];

fn has_compound_surname(name: &str) -> bool {
    // Every compound surname is two 3-byte characters.
    name.len() >= 6
        && name.is_char_boundary(6)
        && COMPOUND_SURNAMES
            .iter()
            .any(|c| c.as_bytes() == &name.as_bytes()[..6])
}

/// Keeps the surname, one star per other character: `张*`, `张**`, `欧阳**`. A Latin
/// name keeps its first word and stars the letters of the rest (`Li ***`); a single
/// character gives `*`.
pub fn person_name(name: &str) -> String {
    let len = name.chars().count();
    let Some(first) = name.chars().next() else {
        return String::new();
    };
    if first.is_ascii_alphabetic() {
        if let Some((given, rest)) = name.split_once(' ') {
            if !rest.trim().is_empty() {
                let mut out = String::with_capacity(name.len());
                out.push_str(given);
                out.push(' ');
                out.extend(rest.chars().map(|c| if c == ' ' { c } else { STAR }));
                return out;
            }
        }
        return keep_ends(name, len, 1, 0);
    }
    let surname_len = if len > 2 && has_compound_surname(name) {
        2
    } else {
        1
    };
    keep_ends(name, len, surname_len, 0)
}

/// Keeps the carrier block and the last four digits: `138****5678`.
pub fn mobile(number: &str) -> String {
    match number.chars().count() {
        11 => keep_ends(number, 11, 3, 4),
        _ => generic(number),
    }
}

/// Keeps the area code and the last four digits: `010-****5678`.
pub fn landline(number: &str) -> String {
    if let Some((area, local)) = number.split_once('-') {
        let local_len = local.chars().count();
        if !area.is_empty() && local_len >= 7 {
            return format!("{area}-{}", keep_ends(local, local_len, 0, 4));
        }
    }
    generic(number)
}

/// Keeps the issuer BIN (first 6) and the last 4 digits: `622202*********1234`.
pub fn bank_card(number: &str) -> String {
    let len = number.chars().count();
    if len >= 12 {
        keep_ends(number, len, 6, 4)
    } else {
        generic(number)
    }
}

/// Keeps the region code (first 6) and the last 4, hiding the birth date:
/// `110105********002X`.
pub fn resident_id(id: &str) -> String {
    let len = id.chars().count();
    if len == 18 {
        keep_ends(id, len, 6, 4)
    } else {
        generic(id)
    }
}

/// Keeps the first character of the local part and the domain: `z***@example.com`.
/// The star count is fixed so the mask does not reveal the local part's length.
pub fn email(address: &str) -> String {
    if let Some((local, domain)) = address.rsplit_once('@') {
        if let Some(first) = local.chars().next() {
            let mut out = String::with_capacity(domain.len() + 8);
            out.push(first);
            out.push_str("***@");
            out.push_str(domain);
            return out;
        }
    }
    generic(address)
}

/// Characters searched for the district: province, city and district names fit in this
/// many even in the longest autonomous-region addresses, and a `区` further on is more
/// likely a residential compound than a district.
const DISTRICT_SEARCH_CHARS: usize = 24;

/// Whether the `区` after `before2`, `before1` ends a name that is not a district:
/// a province-level 自治区 or 特别行政区, or a residential 小区 or 社区.
fn is_non_district_qu(before2: char, before1: char) -> bool {
    matches!((before2, before1), ('自', '治') | ('行', '政')) || matches!(before1, '小' | '社')
}

/// Keeps the address down to its district and appends a fixed `****`, so the mask does
/// not reveal the length of the rest: `北京市朝阳区****`. The district ends at the first
/// `区`, `县` or `旗` after at least two characters; without one the address is kept
/// through its first `市`, and without that, its first three characters.
pub fn address(address: &str) -> String {
    if address.is_empty() {
        return String::new();
    }
    let mut district_end = None;
    let mut city_end = None;
    let (mut before2, mut before1) = ('\0', '\0');
    for (i, (at, c)) in address
        .char_indices()
        .enumerate()
        .take(DISTRICT_SEARCH_CHARS)
    {
        let end = at + c.len_utf8();
        match c {
            '区' if i >= 2 && is_non_district_qu(before2, before1) => {}
            '区' | '县' | '旗' if i >= 2 => {
                district_end = Some(end);
                break;
            }
            '市' if i >= 1 && city_end.is_none() => city_end = Some(end),
            _ => {}
        }
        (before2, before1) = (before1, c);
    }
    let keep_end = district_end.or(city_end).unwrap_or_else(|| {
        let keep = (address.chars().count() / 2).min(3);
        address
            .char_indices()
            .nth(keep)
            .map_or(address.len(), |(i, _)| i)
    });
    let mut out = String::with_capacity(keep_end + 4);
    out.push_str(&address[..keep_end]);
    out.push_str("****");
    out
}

/// Keeps the registration authority, the organisation category and the 6-digit region
/// code (first 8) and the check character: `91350100*********3`.
pub fn uscc(code: &str) -> String {
    let len = code.chars().count();
    if len == 18 {
        keep_ends(code, len, 8, 1)
    } else {
        generic(code)
    }
}

/// Keeps the first two octets, the network part a reader may need: `10.1.*.*`.
pub fn ipv4(ip: &str) -> String {
    let mut parts = ip.split('.');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(a), Some(b), Some(_), Some(_), None) => format!("{a}.{b}.*.*"),
        _ => generic(ip),
    }
}

/// Keeps the address through its second `:` (the routing prefix, roughly) and appends a
/// fixed `****`: `2001:db8:****`.
pub fn ipv6(ip: &str) -> String {
    match ip.match_indices(':').nth(1) {
        Some((at, _)) => format!("{}****", &ip[..=at]),
        None => generic(ip),
    }
}

/// Keeps the year: `1990-**-**`.
pub fn date_of_birth(date: &str) -> String {
    match date.get(..4) {
        Some(year) if date.len() == 10 && date.is_ascii() => format!("{year}-**-**"),
        _ => generic(date),
    }
}

/// Keeps the first two digits, the province: `10****`.
pub fn postal_code(code: &str) -> String {
    match code.chars().count() {
        6 => keep_ends(code, 6, 2, 0),
        _ => generic(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_surname() {
        assert_eq!(person_name("张三"), "张*");
        assert_eq!(person_name("张小明"), "张**");
        assert_eq!(person_name("欧阳娜娜"), "欧阳**");
        assert_eq!(person_name("司马光"), "司马*");
        assert_eq!(person_name("诸葛亮"), "诸葛*");
        assert_eq!(person_name("欧阳"), "欧*");
        assert_eq!(person_name("张"), "*");
        assert_eq!(person_name("Li Lei"), "Li ***");
        assert_eq!(person_name("Mary Ann Smith"), "Mary *** *****");
        assert_eq!(person_name("Madonna"), "M******");
        assert_eq!(person_name("Li "), "L**");
        assert_eq!(person_name("阿卜杜勒·艾尼"), "阿******");
        assert_eq!(person_name(""), "");
    }

    #[test]
    fn compound_surnames_are_all_two_characters() {
        for s in COMPOUND_SURNAMES {
            assert_eq!(s.chars().count(), 2);
            let name = format!("{s}某");
            assert_eq!(person_name(&name), format!("{s}*"));
        }
    }

    #[test]
    fn numbers_keep_their_documented_ends() {
        assert_eq!(mobile("13812345678"), "138****5678");
        assert_eq!(bank_card("6222021234567891234"), "622202*********1234");
        assert_eq!(bank_card("6225881234561234"), "622588******1234");
        assert_eq!(bank_card("622588123456"), "622588**3456");
        assert_eq!(resident_id("11010519491231002X"), "110105********002X");
        assert_eq!(uscc("91350100M000100Y43"), "91350100*********3");
        assert_eq!(landline("010-12345678"), "010-****5678");
        assert_eq!(landline("0311-8765432"), "0311-***5432");
        assert_eq!(postal_code("100020"), "10****");
        assert_eq!(date_of_birth("1990-01-05"), "1990-**-**");
    }

    #[test]
    fn email_keeps_first_letter_and_domain() {
        assert_eq!(email("zhangsan@example.com"), "z***@example.com");
        assert_eq!(email("z@example.com"), "z***@example.com");
        assert_eq!(email("@example.com"), "@e********om");
        assert_eq!(email("no-at-sign"), "no******gn");
    }

    #[test]
    fn address_keeps_the_district() {
        assert_eq!(address("北京市朝阳区建国路88号"), "北京市朝阳区****");
        assert_eq!(
            address("广东省深圳市南山区科技园路18号3栋1201"),
            "广东省深圳市南山区****"
        );
        assert_eq!(
            address("浙江省杭州市淳安县千岛湖镇新安大街1号"),
            "浙江省杭州市淳安县****"
        );
        assert_eq!(
            address("内蒙古自治区呼和浩特市新城区中山东路1号"),
            "内蒙古自治区呼和浩特市新城区****"
        );
        assert_eq!(
            address("内蒙古自治区鄂尔多斯市鄂托克旗乌兰镇1号"),
            "内蒙古自治区鄂尔多斯市鄂托克旗****"
        );
        assert_eq!(
            address("香港特别行政区中西区皇后大道中1号"),
            "香港特别行政区中西区****"
        );
        // No district: through the city, then the first three characters.
        assert_eq!(address("广东省东莞市莞城街道1号"), "广东省东莞市****");
        assert_eq!(address("某某路阳光小区3栋"), "某某路****");
        assert_eq!(address("区区区"), "区区区****");
        assert_eq!(address("北京"), "北****");
        assert_eq!(address("北"), "****");
        assert_eq!(address(""), "");
    }

    #[test]
    fn address_mask_length_does_not_depend_on_the_rest() {
        let short = address("北京市朝阳区建国路1号");
        let long = address("北京市朝阳区建国路1号院2号楼3单元401室靠窗的那一间");
        assert_eq!(short, long);
    }

    #[test]
    fn ip_masks_keep_the_network() {
        assert_eq!(ipv4("10.1.2.3"), "10.1.*.*");
        assert_eq!(ipv6("2001:db8::1"), "2001:db8:****");
        assert_eq!(ipv6("::1"), "::****");
        assert_eq!(ipv6("fe80::1"), "fe80::****");
        assert_eq!(ipv4("1.2.3"), "1***3");
    }

    #[test]
    fn generic_keeps_ends_and_always_hides_something() {
        assert_eq!(generic("京A12345"), "京A***45");
        assert_eq!(generic("E12345678"), "E1*****78");
        assert_eq!(generic("A1234563"), "A1****63");
        assert_eq!(generic("abcde"), "a***e");
        assert_eq!(generic("abc"), "a*c");
        assert_eq!(generic("ab"), "**");
        assert_eq!(generic("a"), "*");
        assert_eq!(generic(""), "");
        assert_eq!(generic("😀😀"), "**");
    }

    #[test]
    fn masks_never_panic_and_never_reveal_a_whole_value() {
        let maskers: [fn(&str) -> String; 13] = [
            generic,
            person_name,
            mobile,
            landline,
            bank_card,
            resident_id,
            email,
            address,
            uscc,
            ipv4,
            ipv6,
            date_of_birth,
            postal_code,
        ];
        let odd = [
            "",
            "a",
            "😀😀",
            "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
            "张",
            "张 三",
            "é",
            "e\u{301}",
            "a b",
            " ",
            "@",
            "@@",
            "a@",
            ".",
            "...",
            "....",
            ":",
            "::",
            "-",
            "--",
            "年-月-日-",
            "区",
            "自治区",
            "市",
            "１２３４５６７８９０１",
            "🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳🇨🇳",
            "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
        ];
        for masker in maskers {
            for s in odd {
                let masked = masker(s);
                if !s.is_empty() {
                    assert!(masked.contains(STAR));
                    assert_ne!(masked, s);
                }
            }
        }
    }
}
