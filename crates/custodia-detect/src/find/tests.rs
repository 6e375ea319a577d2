//! Tests never print a detected value: failures show types, offsets and masked values.

use super::*;
use crate::synth::Synth;
use crate::validate::luhn_check_digit;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use PiiType as T;

/// A finding as the test sees it: type and the text it covers.
fn found(text: &str) -> Vec<(PiiType, &str)> {
    find(text)
        .into_iter()
        .map(|f| (f.ty, &text[f.start..f.end]))
        .collect()
}

/// What to show when an assertion fails: types, offsets and masked values only.
fn shown(text: &str, found: &[Finding]) -> String {
    found
        .iter()
        .map(|f| {
            format!(
                "{}@{}..{}={} ({:.2})",
                f.ty,
                f.start,
                f.end,
                crate::mask(f.ty, &text[f.start..f.end]),
                f.confidence
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Asserts that `text` yields exactly `expected` (type, value) pairs.
#[track_caller]
fn assert_finds(text: &str, expected: &[(PiiType, &str)]) {
    let got = found(text);
    if got != expected {
        let want: Vec<String> = expected
            .iter()
            .map(|(t, v)| format!("{t}={}", crate::mask(*t, v)))
            .collect();
        panic!(
            "case {}: want [{}], got [{}]",
            crate::mask::generic(text),
            want.join(", "),
            shown(text, &find(text))
        );
    }
}

#[track_caller]
fn assert_none(text: &str) {
    assert_finds(text, &[]);
}

/// A Luhn-valid card number from a prefix, `len` digits long.
fn card_from(prefix: &str, len: usize) -> String {
    let mut c = prefix.to_string();
    while c.len() < len - 1 {
        c.push('3');
    }
    c.push(char::from(luhn_check_digit(c.as_bytes())));
    c
}

fn api_invariants(text: &str, found: &[Finding]) {
    let mut last_end = 0;
    for f in found {
        assert!(f.start < f.end && f.end <= text.len());
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        assert!(f.start >= last_end, "sorted and non-overlapping");
        assert!((0.0..=1.0).contains(&f.confidence));
        last_end = f.end;
    }
}

// ---------------------------------------------------------------------------------------
// Positives, one surface form at a time

#[test]
fn resident_ids() {
    assert_finds(
        "客户身份证号11010519491231002X，请核实",
        &[(T::CnResidentId, "11010519491231002X")],
    );
    assert_finds(
        "证件 11010519491231002x。",
        &[(T::CnResidentId, "11010519491231002x")],
    );
    assert_finds(
        "身份证：110105 19491231 002X",
        &[(T::CnResidentId, "110105 19491231 002X")],
    );
    let id = "11010519491231002X";
    assert_finds(&format!("id={id};"), &[(T::CnResidentId, id)]);
}

#[test]
fn legacy_resident_ids_need_context_and_are_weak() {
    let text = "老身份证号110105491231002";
    let f = find(text);
    assert_eq!(f.len(), 1, "{}", shown(text, &f));
    assert_eq!(f[0].ty, T::CnResidentId);
    assert!(f[0].confidence < 0.5);
    assert_none("编码110105491231002");
    // Not a date.
    assert_none("身份证110105491331002");
}

#[test]
fn mobiles_in_every_surface_form() {
    for (text, value) in [
        ("手机13812345678联系", "13812345678"),
        ("call +86 138-1234-5678 now", "+86 138-1234-5678"),
        ("电话+8613812345678", "+8613812345678"),
        ("0086 13812345678", "0086 13812345678"),
        ("86-13812345678", "86-13812345678"),
        ("号码是138 1234 5678。", "138 1234 5678"),
        ("号码是138-1234-5678。", "138-1234-5678"),
        ("tel:19912345678", "19912345678"),
        ("Tel.16512345678", "16512345678"),
        ("user=14512345678&x=1", "14512345678"),
        ("(17012345678)", "17012345678"),
    ] {
        assert_finds(text, &[(T::CnMobile, value)]);
    }
}

#[test]
fn full_width_offsets_map_to_the_original_bytes() {
    let text = "手机：１３８１２３４５６７８。邮箱ＺＨＡＮＧ＠ＱＱ．ＣＯＭ";
    let f = find(text);
    api_invariants(text, &f);
    assert_eq!(f.len(), 2, "{}", shown(text, &f));
    assert_eq!(f[0].ty, T::CnMobile);
    assert!(
        &text[f[0].start..f[0].end] == "１３８１２３４５６７８",
        "full-width mobile span"
    );
    assert_eq!(f[0].start, "手机：".len());
    assert_eq!(f[1].ty, T::Email);
    assert!(
        &text[f[1].start..f[1].end] == "ＺＨＡＮＧ＠ＱＱ．ＣＯＭ",
        "full-width email span"
    );
    assert_eq!(f[1].end, text.len());
    // Ideographic space as a group separator, full-width dash and parentheses.
    assert_finds(
        "１３８　１２３４　５６７８",
        &[(T::CnMobile, "１３８　１２３４　５６７８")],
    );
    assert_finds(
        "电话（０２１）８７６５４３２１",
        &[(T::CnLandline, "（０２１）８７６５４３２１")],
    );
}

#[test]
fn landlines_need_context() {
    for (text, value) in [
        ("电话：010-12345678", "010-12345678"),
        ("座机(021)87654321", "(021)87654321"),
        ("Tel: 0755-1234567", "0755-1234567"),
        ("联系电话 02187654321", "02187654321"),
        ("fax 0571 8888 6666", "0571 8888 6666"),
        ("办公电话+86 10 12345678", "+86 10 12345678"),
    ] {
        assert_finds(text, &[(T::CnLandline, value)]);
    }
    assert_none("编号010-12345678");
    assert_none("02187654321");
    // A parenthesised area code is distinctive enough to report weakly.
    let f = find("(021)87654321");
    assert_eq!(f.len(), 1);
    assert!(f[0].confidence < 0.7);
}

#[test]
fn bank_cards() {
    let unionpay = card_from("622202", 19);
    let visa = card_from("411111", 16);
    let amex = card_from("371449", 15);
    let mc2 = card_from("222100", 16);
    let grouped16 = format!(
        "{} {} {} {}",
        &visa[..4],
        &visa[4..8],
        &visa[8..12],
        &visa[12..]
    );
    let dashed19 = format!(
        "{}-{}-{}-{}-{}",
        &unionpay[..4],
        &unionpay[4..8],
        &unionpay[8..12],
        &unionpay[12..16],
        &unionpay[16..]
    );
    let six13 = format!("{} {}", &unionpay[..6], &unionpay[6..]);
    for v in [&unionpay, &visa, &amex, &mc2, &grouped16, &dashed19, &six13] {
        assert_finds(&format!("卡号{v}，"), &[(T::BankCard, v)]);
        assert_finds(&format!("转入 {v} 成功"), &[(T::BankCard, v)]);
    }
    let with_context = find(&format!("银行卡号：{unionpay}"));
    let without = find(&format!("转入 {unionpay}"));
    assert!(with_context[0].confidence > without[0].confidence);
    // Luhn-valid but no known issuer prefix: only with a context word.
    let odd = card_from("998877", 16);
    assert_none(&format!("ref {odd}"));
    assert_finds(&format!("卡号 {odd}"), &[(T::BankCard, &odd)]);
}

#[test]
fn uscc_emails_and_ips() {
    assert_finds(
        "信用代码91350100M000100Y43",
        &[(T::Uscc, "91350100M000100Y43")],
    );
    assert_finds(
        "邮箱zhang.san@example.com，另13812345678@qq.com。",
        &[
            (T::Email, "zhang.san@example.com"),
            (T::Email, "13812345678@qq.com"),
        ],
    );
    assert_finds(
        "mailto:a_b+c@mail.bank-cn.com.cn.",
        &[(T::Email, "a_b+c@mail.bank-cn.com.cn")],
    );
    assert_finds("登录IP 192.168.1.1，端口", &[(T::Ipv4, "192.168.1.1")]);
    assert_finds("from 10.0.0.1:8080", &[(T::Ipv4, "10.0.0.1")]);
    assert_finds("addr 2001:db8::1 ok", &[(T::Ipv6, "2001:db8::1")]);
    assert_finds("fe80::1%eth0", &[(T::Ipv6, "fe80::1")]);
    assert_finds(
        "IP:2001:0db8:0000:0000:0000:0000:0000:0001",
        &[(T::Ipv6, "2001:0db8:0000:0000:0000:0000:0000:0001")],
    );
    assert_finds("loopback ::1.", &[(T::Ipv6, "::1")]);
    assert_finds("::ffff:192.168.1.1", &[(T::Ipv6, "::ffff:192.168.1.1")]);
}

#[test]
fn documents_plates_and_postal_codes() {
    assert_finds("护照号码E12345678", &[(T::CnPassport, "E12345678")]);
    assert_finds("passport no. EA1234567", &[(T::CnPassport, "EA1234567")]);
    assert_finds("港澳通行证C12345678", &[(T::HkMacauPermit, "C12345678")]);
    assert_finds("回乡证H1234567890", &[(T::HkMacauPermit, "H1234567890")]);
    assert_finds("香港身份证A123456(3)", &[(T::HkId, "A123456(3)")]);
    assert_finds("HKID A1234563", &[(T::HkId, "A1234563")]);
    assert_finds("台湾身份证A123456789", &[(T::TwId, "A123456789")]);
    assert_finds("车牌京A12345，", &[(T::CnLicensePlate, "京A12345")]);
    assert_finds("沪AD12345违章", &[(T::CnLicensePlate, "沪AD12345")]);
    assert_finds("粤B·D1234", &[(T::CnLicensePlate, "粤B·D1234")]);
    assert_finds("邮编：100020", &[(T::PostalCode, "100020")]);
    assert_finds("zip 518057", &[(T::PostalCode, "518057")]);
}

#[test]
fn chinese_names_near_context_words() {
    for (text, name) in [
        ("客户张伟要求退款", "张伟"),
        ("姓名：王芳", "王芳"),
        ("李先生来电咨询", "李"),
        ("联系人 欧阳娜娜", "欧阳娜娜"),
        ("持卡人刘洋，", "刘洋"),
        ("户名:陈静", "陈静"),
        ("收件人是赵磊。", "赵磊"),
        ("请转告张伟经理", "张伟"),
        ("王女士表示", "王"),
        ("客户司马懿来电", "司马懿"),
        ("客户姓名：黄晓明", "黄晓明"),
    ] {
        assert_finds(text, &[(T::PersonName, name)]);
    }
    assert_finds(
        "客户张伟先生，手机13812345678",
        &[(T::PersonName, "张伟"), (T::CnMobile, "13812345678")],
    );
}

#[test]
fn ordinary_words_after_context_are_not_names() {
    for text in [
        "客户要求退款",
        "客户经理表示同意",
        "客户于今日来电",
        "客户金额不足",
        "客户关系管理",
        "客户信息已更新",
        "这位先生",
        "客户经理",
        "客户表示满意",
        "各位女士",
    ] {
        assert_none(text);
    }
}

#[test]
fn english_names_in_english_context() {
    assert_finds("Mr. John Smith called", &[(T::PersonName, "John Smith")]);
    assert_finds("Name: Jane Doe.", &[(T::PersonName, "Jane Doe")]);
    assert_finds("Dear Alice Brown,", &[(T::PersonName, "Alice Brown")]);
    assert_finds("Mrs Chen said", &[(T::PersonName, "Chen")]);
    assert_finds("Dr. Mary O'Brien", &[(T::PersonName, "Mary O'Brien")]);
    assert_none("Dear Customer, thank you");
    assert_none("Dear Sir or Madam");
    assert_none("name is required");
}

#[test]
fn addresses() {
    assert_finds(
        "地址：北京市朝阳区建国路88号，",
        &[(T::Address, "北京市朝阳区建国路88号")],
    );
    assert_finds(
        "家住广东省深圳市南山区科技园路1号2栋1503",
        &[(T::Address, "广东省深圳市南山区科技园路1号2栋1503")],
    );
    assert_finds(
        "寄到上海市浦东新区世纪大道100号A座2单元501室客户说",
        &[(T::Address, "上海市浦东新区世纪大道100号A座2单元501室")],
    );
    assert_finds(
        "浙江省杭州市西湖区文化路12号 电话0571-88886666",
        &[
            (T::Address, "浙江省杭州市西湖区文化路12号"),
            (T::CnLandline, "0571-88886666"),
        ],
    );
    for text in [
        "上海市民都知道",
        "我在深圳工作",
        "北京知道了",
        "广东的客户很多",
        "上海银行",
    ] {
        assert_none(text);
    }
}

// ---------------------------------------------------------------------------------------
// Hard negatives

#[test]
fn numbers_inside_longer_tokens_are_never_reported() {
    let id = "11010519491231002X";
    assert_none(&format!("流水号9{id}123456"));
    assert_none("ORD13812345678");
    assert_none("13812345678abc");
    assert_none("user_13812345678");
    assert_none("txn-13812345678-01");
    assert_none("1234567890138123456789012");
    let card = card_from("622202", 19);
    assert_none(&format!("REF{card}"));
    assert_none(&format!("{card}7"));
    assert_none("13812345678.50");
}

#[test]
fn timestamps_versions_dates_and_bad_prefixes() {
    for text in [
        "20231105123045",
        "1699999999999",
        "ts=1699999999",
        "12812345678",
        "10012345678",
        "v1.2.3.4",
        "1.2.3.4.5",
        "version 1.2.3.4",
        "2023-11-05 12:30:45",
        "12:30:45.123",
        "2023.11.05",
        "256.1.1.1",
        "dead::beef",
        "std::vector",
        "00:1A:2B:3C:4D:5E",
        "www.163.com",
        "3.1415926",
        "2023年11月05日",
    ] {
        assert_none(text);
    }
}

#[test]
fn wrong_check_characters_are_rejected() {
    assert_none("身份证11010519491231002Y");
    assert_none("身份证110105194912310021");
    assert_none("信用代码91350100M000100Y44");
    assert_none("香港身份证A123456(4)");
    assert_none("台湾身份证A123456788");
    assert_none("卡号4111111111111112");
    // Weakly shaped types without their context word.
    assert_none("E12345678");
    assert_none("C12345678");
    assert_none("100020");
}

// ---------------------------------------------------------------------------------------
// Cells

#[test]
fn cells_use_the_header_as_context() {
    let one = |field: &str, value: &str| {
        let f = find_in_field(field, value);
        api_invariants(value, &f);
        f.into_iter()
            .map(|f| (f.ty, f.start, f.end))
            .collect::<Vec<_>>()
    };
    assert_eq!(one("姓名", "张伟"), [(T::PersonName, 0, 6)]);
    assert_eq!(one("客户名称", " 欧阳娜娜 "), [(T::PersonName, 1, 13)]);
    assert_eq!(one("name", "John Smith"), [(T::PersonName, 0, 10)]);
    assert_eq!(one("customer_name", "李"), []);
    assert_eq!(one("备注", "张伟"), []);
    assert_eq!(one("邮编", "100020"), [(T::PostalCode, 0, 6)]);
    assert_eq!(one("zip", "518057"), [(T::PostalCode, 0, 6)]);
    assert_eq!(one("amount", "100020"), []);
    assert_eq!(one("电话", "010-12345678"), [(T::CnLandline, 0, 12)]);
    assert_eq!(one("tel", "02187654321"), [(T::CnLandline, 0, 11)]);
    assert_eq!(one("note", "02187654321"), []);
    assert_eq!(one("地址", "北京市朝阳区建国路88号"), [(T::Address, 0, 32)]);
    assert_eq!(one("address", "朝阳区建国路88号院"), [(T::Address, 0, 26)]);
    assert_eq!(one("护照号", "E12345678"), [(T::CnPassport, 0, 9)]);
    assert_eq!(one("mobile", "13812345678"), [(T::CnMobile, 0, 11)]);
    assert_eq!(one("出生日期", "1990-01-05"), [(T::DateOfBirth, 0, 10)]);
}

#[test]
fn column_hints() {
    for (field, ty) in [
        ("姓名", Some(T::PersonName)),
        ("客户名称", Some(T::PersonName)),
        ("customerName", Some(T::PersonName)),
        ("full_name", Some(T::PersonName)),
        ("身份证号", Some(T::CnResidentId)),
        ("id_no", Some(T::CnResidentId)),
        ("手机号", Some(T::CnMobile)),
        ("联系人电话", Some(T::CnMobile)),
        ("phone", Some(T::CnMobile)),
        ("座机", Some(T::CnLandline)),
        ("Tel", Some(T::CnLandline)),
        ("银行卡号", Some(T::BankCard)),
        ("card_no", Some(T::BankCard)),
        ("E-mail", Some(T::Email)),
        ("邮箱", Some(T::Email)),
        ("邮编", Some(T::PostalCode)),
        ("zip_code", Some(T::PostalCode)),
        ("住址", Some(T::Address)),
        ("home_address", Some(T::Address)),
        ("统一社会信用代码", Some(T::Uscc)),
        ("client_ip", Some(T::Ipv4)),
        ("ipv6", Some(T::Ipv6)),
        ("护照号码", Some(T::CnPassport)),
        ("港澳通行证", Some(T::HkMacauPermit)),
        ("香港身份证", Some(T::HkId)),
        ("车牌号", Some(T::CnLicensePlate)),
        ("出生日期", Some(T::DateOfBirth)),
        ("username", None),
        ("filename", None),
        ("hostname", None),
        ("description", None),
        ("recipe", None),
        ("amount", None),
        ("备注", None),
    ] {
        assert_eq!(column_hint(field), ty, "{field}");
    }
}

// ---------------------------------------------------------------------------------------
// Property-style: generated values in random text

const CASES: usize = 2_000;

const FILLER: [&str; 24] = [
    "客户", "来电", "咨询", "办理", "业务", "，", "。", "：", " ", "the", "customer", "called",
    "号码", "是", "请", "核实", "信息", "（", "）", "note", "said", "and", "；", "\n",
];

/// Random filler: words and single spaces, never a digit.
fn filler(rng: &mut StdRng) -> String {
    let mut s = String::new();
    for _ in 0..rng.gen_range(0..8) {
        s.push_str(FILLER[rng.gen_range(0..FILLER.len())]);
    }
    s
}

/// `value` in random filler, with a non-word character on each side when the filler
/// would glue to it; returns the text and the value's offset.
fn embed(rng: &mut StdRng, value: &str) -> (String, usize) {
    let mut text = filler(rng);
    if text.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        text.push(' ');
    }
    let at = text.len();
    text.push_str(value);
    let after = filler(rng);
    if after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        text.push(' ');
    }
    text.push_str(&after);
    (text, at)
}

/// Every generated value is found with its exact span; every corruption is not found as
/// that type.
fn property(
    seed: u64,
    ty: PiiType,
    mut generate: impl FnMut(&mut Synth) -> String,
    corrupt: impl Fn(&str) -> Vec<String>,
) {
    let mut synth = Synth::new(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut corrupted = 0;
    for case in 0..CASES {
        let value = generate(&mut synth);
        let (text, at) = embed(&mut rng, &value);
        let f = find(&text);
        api_invariants(&text, &f);
        let hit = f
            .iter()
            .any(|f| f.ty == ty && f.start == at && f.end == at + value.len());
        assert!(
            hit,
            "{ty} case {case}: {} not found at {at}; got [{}]",
            crate::mask(ty, &value),
            shown(&text, &f)
        );
        for bad in corrupt(&value) {
            let (text, at) = embed(&mut rng, &bad);
            let f = find(&text);
            let wrong = f
                .iter()
                .find(|f| f.ty == ty && f.start < at + bad.len() && f.end > at);
            assert!(
                wrong.is_none(),
                "{ty} case {case}: corrupted value reported at {at}: [{}]",
                shown(&text, &f)
            );
            corrupted += 1;
        }
    }
    assert!(corrupted >= CASES);
}

/// `value` with its last character replaced by each of `alphabet` but itself.
fn replace_last(value: &str, alphabet: &str) -> Vec<String> {
    let head = &value[..value.len() - 1];
    let last = value.chars().last().unwrap_or(' ');
    alphabet
        .chars()
        .filter(|&c| c != last)
        .map(|c| format!("{head}{c}"))
        .collect()
}

#[test]
fn generated_resident_ids_are_found_and_corruptions_are_not() {
    property(
        11,
        T::CnResidentId,
        |s| s.resident_id(),
        |v| replace_last(v, "0123456789X"),
    );
}

#[test]
fn generated_bank_cards_are_found_and_corruptions_are_not() {
    property(
        12,
        T::BankCard,
        |s| s.bank_card(),
        |v| replace_last(v, "0123456789"),
    );
}

#[test]
fn generated_usccs_are_found_and_corruptions_are_not() {
    property(
        13,
        T::Uscc,
        |s| s.uscc(),
        |v| replace_last(v, "0123456789ABCDEFGHJKLMNPQRTUWXY"),
    );
}

#[test]
fn generated_mobiles_are_found_and_bad_prefixes_are_not() {
    // A mobile number has no check digit; its "check" is the allocated prefix.
    property(
        14,
        T::CnMobile,
        |s| s.mobile(),
        |v| {
            ["0", "1", "2"]
                .iter()
                .map(|d| format!("1{d}{}", &v[2..]))
                .collect()
        },
    );
}

#[test]
fn generated_mobiles_in_other_surface_forms() {
    let mut synth = Synth::new(15);
    let mut rng = StdRng::seed_from_u64(15);
    for case in 0..CASES {
        let m = synth.mobile();
        let form = match case % 5 {
            0 => format!("+86 {} {} {}", &m[..3], &m[3..7], &m[7..]),
            1 => format!("{}-{}-{}", &m[..3], &m[3..7], &m[7..]),
            2 => format!("+86{m}"),
            3 => m
                .chars()
                .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
                .collect(),
            _ => format!("0086 {m}"),
        };
        let (text, at) = embed(&mut rng, &form);
        let f = find(&text);
        assert!(
            f.iter()
                .any(|f| f.ty == T::CnMobile && f.start == at && f.end == at + form.len()),
            "case {case} form {}: got [{}]",
            case % 5,
            shown(&text, &f)
        );
    }
}

#[test]
fn random_text_never_panics_and_keeps_invariants() {
    let mut rng = StdRng::seed_from_u64(16);
    let pieces = [
        "1",
        "38",
        "8",
        "-",
        " ",
        ".",
        ":",
        "::",
        "@",
        "x",
        "X",
        "(",
        ")",
        "+",
        "_",
        "客户",
        "张",
        "先生",
        "地址",
        "北京市",
        "路",
        "号",
        "１",
        "　",
        "＠",
        "·",
        "京",
        "A",
        "é",
        "😀",
        "\u{FF10}",
        "卡号",
        "电话",
        "邮编",
        "身份证",
    ];
    for _ in 0..5_000 {
        let mut text = String::new();
        for _ in 0..rng.gen_range(0..40) {
            text.push_str(pieces[rng.gen_range(0..pieces.len())]);
        }
        let f = find(&text);
        api_invariants(&text, &f);
        let g = find_in_field("地址", &text);
        api_invariants(&text, &g);
    }
}

// ---------------------------------------------------------------------------------------
// Names in the places call-centre notes, logs and wiki pages put them

#[test]
fn names_after_agent_labels_and_roles() {
    assert_finds(
        "【工单】 坐席：张伟（工号A1234）",
        &[(T::PersonName, "张伟")],
    );
    assert_finds(
        "- 客户经理：王芳（13812345678）",
        &[(T::PersonName, "王芳"), (T::CnMobile, "13812345678")],
    );
    assert_finds("风控专员: 李娜，", &[(T::PersonName, "李娜")]);
    // A role in a sentence, without a colon, labels nothing.
    assert_none("客户经理表示同意");
}

#[test]
fn labelled_fields_hold_names_with_function_characters() {
    // `和` and `发` end a given name in a sentence, but a label's value runs to its
    // delimiter.
    assert_finds("联系人：徐和少，电话", &[(T::PersonName, "徐和少")]);
    assert_finds("经办人向发，手机", &[(T::PersonName, "向发")]);
    assert_finds("姓名邵发。", &[(T::PersonName, "邵发")]);
    // Not under a label: `客户` is a noun in a sentence.
    assert_none("客户李说，");
    assert_none("客户于今日来电");
}

#[test]
fn chinese_names_after_english_titles_and_keys() {
    assert_finds(
        "Customer 张伟 called from 13812345678",
        &[(T::PersonName, "张伟"), (T::CnMobile, "13812345678")],
    );
    assert_finds(
        "kyc request body: {\"name\":\"王芳\",\"idNo\":\"x\"}",
        &[(T::PersonName, "王芳")],
    );
    assert_finds("customer_name=李娜 status=ok", &[(T::PersonName, "李娜")]);
    assert_finds("holderName: 欧阳娜娜", &[(T::PersonName, "欧阳娜娜")]);
    // A key that names a thing, not a person.
    assert_none("productName=安心保 fileName=张表.pdf");
    assert_none("Customer 已来电");
}

#[test]
fn json_recipient_keys_hint_names() {
    for key in ["recipient", "receiverName", "payee", "consignee"] {
        assert_eq!(column_hint(key), Some(T::PersonName), "{key}");
        let f = find_in_field(key, "张伟");
        assert_eq!(
            f.iter().map(|f| (f.ty, f.start, f.end)).collect::<Vec<_>>(),
            vec![(T::PersonName, 0, 6)],
            "{key}"
        );
    }
    assert_eq!(column_hint("insured_uscc"), Some(T::Uscc));
}

#[test]
fn markdown_tables_read_name_and_birth_columns_whole() {
    let text = "## 客户信息\n\n| 姓名 | 手机 | 出生日期 |\n|---|---|---|\n\
                | 罗启晨 | 13812345678 | 1990-05-12 |\n| 李然 | 13912345678 | 1985/03/07 |\n\n\
                | 备注 | 状态 |\n|---|---|\n| 王芳 | 正常 |\n";
    assert_finds(
        text,
        &[
            (T::PersonName, "罗启晨"),
            (T::CnMobile, "13812345678"),
            (T::DateOfBirth, "1990-05-12"),
            (T::PersonName, "李然"),
            (T::CnMobile, "13912345678"),
            (T::DateOfBirth, "1985/03/07"),
        ],
    );
    // A table without a separator line is not read as one.
    assert_none("| 姓名 | 备注 |\n| 罗启晨 | 无 |\n");
}

#[test]
fn markdown_tables_after_a_table_without_a_name_column_and_with_repeated_headers() {
    // Rows of a table with no name column are never headers; the header cells of later
    // tables are looked up once per text and still read right.
    let text = "| 备注 | 状态 |\n|---|---|\n| 王芳 | 正常 |\n| 张伟 | 正常 |\n\n\
                | 姓名 | 手机 |\n|---|---|\n| 罗启晨 | 13812345678 |\n\n\
                | 姓名 | 手机 |\n|---|---|\n| 李然 | 13912345678 |\n\n\
                | 备注 | 状态 |\n|---|---|\n| 刘洋 | 正常 |\n";
    assert_finds(
        text,
        &[
            (T::PersonName, "罗启晨"),
            (T::CnMobile, "13812345678"),
            (T::PersonName, "李然"),
            (T::CnMobile, "13912345678"),
        ],
    );
}

#[test]
fn an_email_after_a_dotted_run_without_one() {
    // The look for an `@` after `v1` ends at the space and is not repeated for `2`, `3`, `rc`;
    // the words after the space look again. (That skip only saves work: overlapping
    // findings are resolved to the email either way, so this checks the output, not it.)
    assert_finds(
        "build v1.2.3-rc.1 by ops.team-lead@example.com, a.b.c-d then 13812345678.li@qq.com",
        &[
            (T::Email, "ops.team-lead@example.com"),
            // Not also a mobile: the digits are the start of a local part.
            (T::Email, "13812345678.li@qq.com"),
        ],
    );
}

#[test]
fn birth_dates_after_their_label() {
    for (text, date) in [
        ("客户，出生日期1990-05-12，身份证", "1990-05-12"),
        ("出生日期：1985年3月7日，", "1985年3月7日"),
        ("生日 1979/11/30。", "1979/11/30"),
        ("出生年月日19881231，", "19881231"),
    ] {
        assert_finds(text, &[(T::DateOfBirth, date)]);
    }
    // Not a real day, in the future, or part of a longer token.
    assert_none("出生日期1990-02-30，");
    assert_none("出生日期2990-01-01，");
    assert_none("生日1990-05-12A");
}

#[test]
fn lowercase_usccs_need_both_checks_and_a_region() {
    let upper = "91350100M000100Y43";
    let lower = upper.to_ascii_lowercase();
    assert_finds(&format!("税务登记 {upper} 已核验"), &[(T::Uscc, upper)]);
    assert_finds(&format!("税务登记 {lower} 已核验"), &[(T::Uscc, &lower)]);
    // Mixed case is no printed code: only with a context word.
    let mixed = "91350100m000100Y43";
    assert_none(&format!("token {mixed} ok"));
    assert_finds(&format!("信用代码 {mixed}"), &[(T::Uscc, mixed)]);
}

#[test]
fn names_that_start_a_clause_before_a_reporting_verb() {
    assert_finds(
        "已转技术支持。张伟要求把对账单发到邮箱。",
        &[(T::PersonName, "张伟")],
    );
    assert_finds("元。\n李娜总反映扣款重复", &[(T::PersonName, "李娜")]);
    assert_finds("1. 欧阳娜娜表示同意", &[(T::PersonName, "欧阳娜娜")]);
    // Not at a clause start, not a surname, or function characters in the name.
    for text in [
        "我们的客户张要求",
        "公司要求退款",
        "。他们要求退款",
        "。王说了要求",
        "。武汉要求",
    ] {
        assert_none(text);
    }
}

#[test]
fn weak_stop_characters_in_delimited_names() {
    assert_finds("客户韦和娜（身份证", &[(T::PersonName, "韦和娜")]);
    assert_finds("客户杨和伦，出生", &[(T::PersonName, "杨和伦")]);
    // Followed by more text, `和` is a conjunction.
    assert_none("客户王和他的妻子");
    // A company after `客户` starts with a place name.
    assert_none("企业客户武汉光谷医疗器械有限公司");
}

#[test]
fn email_before_a_capitalised_sentence_start() {
    assert_finds(
        "to kefu@qq.com.Customer 张伟 called",
        &[(T::Email, "kefu@qq.com"), (T::PersonName, "张伟")],
    );
    assert_finds("Mail ZHANG@QQ.COM.", &[(T::Email, "ZHANG@QQ.COM")]);
}
