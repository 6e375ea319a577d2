//! Seeded synthetic customers for demos, tests and benchmarks.
//!
//! Real customer data must never be used to show, test or measure the product, yet
//! plausibility matters: masks, blind indexes, the scanner and compression behave
//! differently on `张三 / 13800000000` than on realistic surname frequencies, real region
//! codes and real bank BINs. Every value is valid and already canonical (`normalize`
//! returns it unchanged), so it can be written through the vault as is. The same seed
//! gives the same customers, so a benchmark or a failing test can be replayed.

use crate::civil::{days_from_civil, Date};
use crate::validate::{is_mobile_prefix, luhn_check_digit, resident_id_check, uscc_check};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Single-character surnames weighted by their approximate share of the population
/// (per ten thousand, 2020 census order).
const SURNAMES: [(char, u32); 100] = [
    ('王', 710),
    ('李', 700),
    ('张', 660),
    ('刘', 530),
    ('陈', 450),
    ('杨', 310),
    ('黄', 220),
    ('赵', 200),
    ('吴', 190),
    ('周', 180),
    ('徐', 130),
    ('孙', 130),
    ('马', 110),
    ('朱', 110),
    ('胡', 100),
    ('郭', 100),
    ('何', 90),
    ('林', 90),
    ('高', 90),
    ('罗', 80),
    ('郑', 80),
    ('梁', 70),
    ('谢', 60),
    ('宋', 60),
    ('唐', 60),
    ('许', 50),
    ('韩', 50),
    ('邓', 50),
    ('冯', 50),
    ('曹', 50),
    ('彭', 50),
    ('曾', 50),
    ('肖', 40),
    ('田', 40),
    ('董', 40),
    ('潘', 40),
    ('袁', 40),
    ('蔡', 40),
    ('蒋', 40),
    ('余', 40),
    ('于', 40),
    ('杜', 40),
    ('叶', 40),
    ('程', 40),
    ('魏', 30),
    ('苏', 30),
    ('吕', 30),
    ('丁', 30),
    ('任', 30),
    ('卢', 30),
    ('姚', 30),
    ('沈', 30),
    ('钟', 30),
    ('姜', 30),
    ('崔', 30),
    ('谭', 30),
    ('陆', 30),
    ('范', 30),
    ('汪', 30),
    ('廖', 30),
    ('石', 30),
    ('金', 30),
    ('韦', 30),
    ('贾', 20),
    ('夏', 20),
    ('付', 20),
    ('方', 20),
    ('邹', 20),
    ('熊', 20),
    ('白', 20),
    ('孟', 20),
    ('秦', 20),
    ('邱', 20),
    ('侯', 20),
    ('江', 20),
    ('尹', 20),
    ('薛', 20),
    ('闫', 20),
    ('段', 20),
    ('雷', 20),
    ('龙', 20),
    ('黎', 20),
    ('史', 20),
    ('陶', 20),
    ('贺', 20),
    ('毛', 20),
    ('郝', 20),
    ('顾', 20),
    ('龚', 20),
    ('邵', 20),
    ('万', 10),
    ('覃', 10),
    ('武', 10),
    ('钱', 10),
    ('戴', 10),
    ('严', 10),
    ('莫', 10),
    ('孔', 10),
    ('向', 10),
    ('常', 10),
];

/// Compound surnames, drawn for about one name in two hundred.
const COMPOUND_SURNAMES: [&str; 9] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "慕容", "司徒", "令狐",
];

/// Common given-name characters. None of them follows a single surname above to spell a
/// compound surname (no 俟, 离, 侯), so the name mask keeps exactly the drawn surname.
const GIVEN_NAME_CHARS: &str = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉\
建国文斌宇浩凯健俊帆帅旭宁龙林欣婷雪琳晶燕颖倩慧莉梅丹玲佳嘉怡思雨欢悦博轩子涵晨阳睿泽然诗\
琪梓萱奕一铭昊天锦瑞宏志海波峰成东亮飞鑫新春晓冬梦婉清月彤璐薇航毅智诚豪立永福德庆兴荣祥发\
贵胜金山松柏云霖露菲馨逸凡晴妍蕾瑶珊茜岚钰琦瑾瑜璇家振伦翔鸿奇哲骏彬炜昕蓉淑惠敬亚娇洁凤珍\
素爱少光正义康乐安和友元启凌桐楠沐宸朗晟昱煜皓";

/// A real county-level division: its code (the first six digits of a resident id) and
/// the names an address spells out. `city` is empty under a municipality.
struct Region {
    code: &'static str,
    province: &'static str,
    city: &'static str,
    district: &'static str,
}

const fn region(
    code: &'static str,
    province: &'static str,
    city: &'static str,
    district: &'static str,
) -> Region {
    Region {
        code,
        province,
        city,
        district,
    }
}

const REGIONS: [Region; 48] = [
    region("110101", "北京市", "", "东城区"),
    region("110102", "北京市", "", "西城区"),
    region("110105", "北京市", "", "朝阳区"),
    region("110108", "北京市", "", "海淀区"),
    region("120101", "天津市", "", "和平区"),
    region("120104", "天津市", "", "南开区"),
    region("130102", "河北省", "石家庄市", "长安区"),
    region("140105", "山西省", "太原市", "小店区"),
    region("150102", "内蒙古自治区", "呼和浩特市", "新城区"),
    region("210102", "辽宁省", "沈阳市", "和平区"),
    region("210202", "辽宁省", "大连市", "中山区"),
    region("220102", "吉林省", "长春市", "南关区"),
    region("230102", "黑龙江省", "哈尔滨市", "道里区"),
    region("310101", "上海市", "", "黄浦区"),
    region("310104", "上海市", "", "徐汇区"),
    region("310115", "上海市", "", "浦东新区"),
    region("320102", "江苏省", "南京市", "玄武区"),
    region("320506", "江苏省", "苏州市", "吴中区"),
    region("330106", "浙江省", "杭州市", "西湖区"),
    region("330127", "浙江省", "杭州市", "淳安县"),
    region("330203", "浙江省", "宁波市", "海曙区"),
    region("340104", "安徽省", "合肥市", "蜀山区"),
    region("350102", "福建省", "福州市", "鼓楼区"),
    region("350203", "福建省", "厦门市", "思明区"),
    region("360102", "江西省", "南昌市", "东湖区"),
    region("370102", "山东省", "济南市", "历下区"),
    region("370202", "山东省", "青岛市", "市南区"),
    region("410105", "河南省", "郑州市", "金水区"),
    region("420102", "湖北省", "武汉市", "江岸区"),
    region("420106", "湖北省", "武汉市", "武昌区"),
    region("430104", "湖南省", "长沙市", "岳麓区"),
    region("440104", "广东省", "广州市", "越秀区"),
    region("440106", "广东省", "广州市", "天河区"),
    region("440303", "广东省", "深圳市", "罗湖区"),
    region("440305", "广东省", "深圳市", "南山区"),
    region("450103", "广西壮族自治区", "南宁市", "青秀区"),
    region("460105", "海南省", "海口市", "秀英区"),
    region("500103", "重庆市", "", "渝中区"),
    region("500106", "重庆市", "", "沙坪坝区"),
    region("510104", "四川省", "成都市", "锦江区"),
    region("510107", "四川省", "成都市", "武侯区"),
    region("510129", "四川省", "成都市", "大邑县"),
    region("520102", "贵州省", "贵阳市", "南明区"),
    region("530102", "云南省", "昆明市", "五华区"),
    region("610113", "陕西省", "西安市", "雁塔区"),
    region("620102", "甘肃省", "兰州市", "城关区"),
    region("640104", "宁夏回族自治区", "银川市", "兴庆区"),
    region("650102", "新疆维吾尔自治区", "乌鲁木齐市", "天山区"),
];

const ROADS: [&str; 32] = [
    "建国路",
    "人民路",
    "解放路",
    "中山路",
    "科技园路",
    "长安街",
    "南京路",
    "延安路",
    "学府路",
    "文化路",
    "和平路",
    "新华路",
    "胜利路",
    "朝阳路",
    "青年路",
    "光明路",
    "幸福路",
    "建设路",
    "东风路",
    "滨江路",
    "湖滨路",
    "天府大道",
    "世纪大道",
    "深南大道",
    "黄河路",
    "长江路",
    "淮海路",
    "复兴路",
    "五四路",
    "迎宾路",
    "金融街",
    "高新大道",
];

/// Issuer BINs of Chinese banks and the length of the cards they issue.
const BANK_BINS: [(&str, usize); 12] = [
    ("622202", 19), // ICBC debit
    ("621226", 19), // ICBC debit
    ("621700", 19), // CCB debit
    ("436742", 19), // CCB debit (Long card)
    ("622848", 19), // ABC debit
    ("621661", 19), // BOC debit
    ("622588", 16), // CMB debit
    ("621483", 16), // CMB debit
    ("622262", 19), // BOCOM debit
    ("622700", 19), // CCB debit
    ("625965", 16), // CMB credit
    ("622155", 16), // ICBC credit
];

const EMAIL_DOMAINS: [(&str, u32); 6] = [
    ("qq.com", 30),
    ("163.com", 25),
    ("126.com", 12),
    ("gmail.com", 12),
    ("outlook.com", 10),
    ("sina.com", 11),
];

const PINYIN: [&str; 64] = [
    "zhang", "wang", "li", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "he", "lin", "gao", "luo", "xiao", "ming", "hua", "jun", "wei", "fang",
    "na", "min", "jing", "qiang", "lei", "yong", "yan", "jie", "juan", "tao", "chao", "xiu", "xia",
    "ping", "gang", "ying", "hong", "peng", "hui", "jian", "wen", "bin", "yu", "hao", "kai", "xin",
    "ting", "xue", "qian", "mei", "dan", "ling", "jia", "yi", "si", "rui", "ze", "tian",
];

const BRANCHES: [&str; 12] = [
    "BJ-001", "BJ-002", "SH-001", "SH-002", "GZ-001", "GZ-003", "SZ-001", "SZ-002", "CD-001",
    "HZ-001", "WH-001", "XA-001",
];

/// The fields of [`Synth::customer`], in the order it returns them.
pub const CUSTOMER_FIELDS: [&str; 10] = [
    "full_name",
    "id_no",
    "mobile",
    "email",
    "bank_card",
    "address",
    "date_of_birth",
    "segment",
    "annual_income",
    "risk_score",
];

/// A seeded source of synthetic customer values.
#[derive(Clone, Debug)]
pub struct Synth {
    rng: StdRng,
    given_name_chars: Vec<char>,
}

impl Synth {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Synth {
            rng: StdRng::seed_from_u64(seed),
            given_name_chars: GIVEN_NAME_CHARS.chars().collect(),
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.gen_range(0..items.len())]
    }

    fn pick_weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut r = self.rng.gen_range(0..total);
        for (item, weight) in items {
            if r < *weight {
                return item;
            }
            r -= weight;
        }
        &items[items.len() - 1].0
    }

    fn digit(&mut self) -> char {
        char::from(b'0' + self.rng.gen_range(0..10u8))
    }

    /// A Chinese name: a surname by real frequency (compound ones rarely) and one or
    /// two given-name characters.
    pub fn person_name(&mut self) -> String {
        let mut name = String::with_capacity(12);
        if self.rng.gen_bool(0.005) {
            let surname = *self.pick(&COMPOUND_SURNAMES);
            name.push_str(surname);
        } else {
            name.push(*self.pick_weighted(&SURNAMES));
        }
        let given = if self.rng.gen_bool(0.7) { 2 } else { 1 };
        for _ in 0..given {
            let c = self.given_name_chars[self.rng.gen_range(0..self.given_name_chars.len())];
            name.push(c);
        }
        name
    }

    fn birth_date(&mut self) -> Date {
        let first = days_from_civil(1950, 1, 1);
        let last = days_from_civil(2005, 12, 31);
        Date::from_days(self.rng.gen_range(first..=last))
    }

    fn resident_id_born(&mut self, birth: Date) -> String {
        let region = self.pick(&REGIONS).code;
        let sequence = self.rng.gen_range(1..=999);
        let mut id = format!(
            "{region}{:04}{:02}{:02}{sequence:03}",
            birth.year, birth.month, birth.day
        );
        let check = resident_id_check(id.as_bytes());
        id.push(char::from(check));
        id
    }

    /// A valid resident id: a real county-level region code, born 1950 to 2005.
    pub fn resident_id(&mut self) -> String {
        let birth = self.birth_date();
        self.resident_id_born(birth)
    }

    /// An 11-digit mobile number with an allocated prefix.
    pub fn mobile(&mut self) -> String {
        let prefix = loop {
            let p = self.rng.gen_range(130..200);
            if is_mobile_prefix(p) {
                break p;
            }
        };
        format!("{prefix}{:08}", self.rng.gen_range(0..100_000_000))
    }

    /// A 16 or 19 digit card number on a real Chinese bank BIN, Luhn valid.
    pub fn bank_card(&mut self) -> String {
        let &(bin, len) = self.pick(&BANK_BINS);
        let mut card = String::with_capacity(len);
        card.push_str(bin);
        while card.len() < len - 1 {
            let d = self.digit();
            card.push(d);
        }
        card.push(char::from(luhn_check_digit(card.as_bytes())));
        card
    }

    /// A pinyin-like address at a common Chinese mail provider, or a QQ number at qq.com.
    pub fn email(&mut self) -> String {
        let domain = *self.pick_weighted(&EMAIL_DOMAINS);
        let mut local = String::with_capacity(24);
        if domain == "qq.com" && self.rng.gen_bool(0.5) {
            let len = self.rng.gen_range(6..=10);
            local.push(char::from(b'0' + self.rng.gen_range(1..10u8)));
            for _ in 1..len {
                let d = self.digit();
                local.push(d);
            }
        } else {
            let syllables = self.rng.gen_range(2..=3);
            let separator = *self.pick(&["", "", "", ".", "_"]);
            for i in 0..syllables {
                if i > 0 {
                    local.push_str(separator);
                }
                let syllable = *self.pick(&PINYIN);
                local.push_str(syllable);
            }
            match self.rng.gen_range(0..10) {
                0..=2 => local.push_str(&self.rng.gen_range(1970..=2005).to_string()),
                3..=4 => local.push_str(&self.rng.gen_range(1..1000).to_string()),
                _ => {}
            }
        }
        local.push('@');
        local.push_str(domain);
        local
    }

    /// A street address: province, city, district, road, number and often a flat.
    pub fn address(&mut self) -> String {
        let region = self.pick(&REGIONS);
        let road = *self.pick(&ROADS);
        let number = self.rng.gen_range(1..=999);
        let mut address = format!(
            "{}{}{}{road}{number}号",
            region.province, region.city, region.district
        );
        let building = self.rng.gen_range(1..=30);
        let floor = self.rng.gen_range(1..=33);
        let flat = self.rng.gen_range(1..=8);
        match self.rng.gen_range(0..3) {
            0 => {}
            1 => address.push_str(&format!("{building}栋{floor}{flat:02}")),
            _ => address.push_str(&format!("{building}号楼{floor}{flat:02}室")),
        }
        address
    }

    /// A valid unified social credit code: mostly companies registered with market
    /// regulation (`91`), a real region code and an organisation code with its own
    /// GB 11714 check character.
    pub fn uscc(&mut self) -> String {
        const AUTHORITIES: [((u8, &[u8]), u32); 3] = [
            ((b'9', b"123"), 90),
            ((b'1', b"1239"), 5),
            ((b'5', b"1239"), 5),
        ];
        let &(authority, categories) = self.pick_weighted(&AUTHORITIES);
        let category = *self.pick(categories);
        let region = self.pick(&REGIONS).code;
        let mut code = Vec::with_capacity(18);
        code.push(authority);
        code.push(category);
        code.extend_from_slice(region.as_bytes());
        let mut organisation_sum = 0;
        for weight in [3, 7, 9, 10, 5, 8, 4, 2] {
            let d = self.rng.gen_range(0..10u8);
            organisation_sum += u32::from(d) * weight;
            code.push(b'0' + d);
        }
        code.push(match 11 - organisation_sum % 11 {
            10 => b'X',
            11 => b'0',
            c => b'0' + c as u8,
        });
        // The first 17 are all in the USCC alphabet, so the check always exists.
        code.push(uscc_check(&code).unwrap_or(b'0'));
        code.into_iter().map(char::from).collect()
    }

    /// A date of birth between 1950 and 2005, `YYYY-MM-DD`.
    pub fn date_of_birth(&mut self) -> String {
        self.birth_date().to_string()
    }

    /// A customer tier: `standard` about 80%, `high` 15%, `vip` 5%.
    pub fn tier(&mut self) -> &'static str {
        match self.rng.gen_range(0..100) {
            0..=79 => "standard",
            80..=94 => "high",
            _ => "vip",
        }
    }

    /// A branch code such as `BJ-001`.
    pub fn branch(&mut self) -> String {
        (*self.pick(&BRANCHES)).to_owned()
    }

    /// One record of the example `customers` collection, fields in schema order. The
    /// date of birth is the one inside the resident id.
    pub fn customer(&mut self) -> Vec<(&'static str, String)> {
        let birth = self.birth_date();
        let full_name = self.person_name();
        let id_no = self.resident_id_born(birth);
        let mobile = self.mobile();
        let email = self.email();
        let bank_card = self.bank_card();
        let address = self.address();
        let segment = *self.pick_weighted(&[("retail", 85), ("private", 10), ("corporate", 5)]);
        // Log-uniform: many modest incomes, a long tail of large ones.
        let ln_income = self.rng.gen_range((20_000f64).ln()..=(5_000_000f64).ln());
        let annual_income =
            ((ln_income.exp() / 100.0).round() as u64 * 100).clamp(20_000, 5_000_000);
        let risk = self.rng.gen_range(0..1000);
        vec![
            ("full_name", full_name),
            ("id_no", id_no),
            ("mobile", mobile),
            ("email", email),
            ("bank_card", bank_card),
            ("address", address),
            ("date_of_birth", birth.to_string()),
            ("segment", segment.to_owned()),
            ("annual_income", annual_income.to_string()),
            ("risk_score", format!("{}.{:02}", risk / 100, risk % 100)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{mask, normalize, PiiType};
    use std::collections::{BTreeMap, BTreeSet};

    const SAMPLES: usize = 10_000;

    /// Asserts that every generated value is valid and canonical; a failure shows the
    /// masked value only.
    fn assert_canonical(ty: PiiType, mut generate: impl FnMut() -> String) {
        for i in 0..SAMPLES {
            let value = generate();
            assert!(
                normalize(ty, &value).as_deref() == Ok(value.as_str()),
                "{ty} sample {i} is not canonical: {} ({:?})",
                mask(ty, &value),
                normalize(ty, &value).err()
            );
        }
    }

    #[test]
    fn every_synthetic_value_is_valid_and_canonical() {
        let mut s = Synth::new(1);
        assert_canonical(PiiType::PersonName, || s.person_name());
        assert_canonical(PiiType::CnResidentId, || s.resident_id());
        assert_canonical(PiiType::CnMobile, || s.mobile());
        assert_canonical(PiiType::BankCard, || s.bank_card());
        assert_canonical(PiiType::Email, || s.email());
        assert_canonical(PiiType::Address, || s.address());
        assert_canonical(PiiType::Uscc, || s.uscc());
        assert_canonical(PiiType::DateOfBirth, || s.date_of_birth());
    }

    #[test]
    fn customers_are_valid_consistent_and_in_schema_order() {
        let mut s = Synth::new(2);
        let mut segments = BTreeSet::new();
        for _ in 0..SAMPLES {
            let customer = s.customer();
            let names: Vec<&str> = customer.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, CUSTOMER_FIELDS);
            let field: BTreeMap<&str, &str> =
                customer.iter().map(|(n, v)| (*n, v.as_str())).collect();
            for (name, ty) in [
                ("full_name", PiiType::PersonName),
                ("id_no", PiiType::CnResidentId),
                ("mobile", PiiType::CnMobile),
                ("email", PiiType::Email),
                ("bank_card", PiiType::BankCard),
                ("address", PiiType::Address),
                ("date_of_birth", PiiType::DateOfBirth),
            ] {
                assert_eq!(
                    normalize(ty, field[name]).as_deref(),
                    Ok(field[name]),
                    "{name}"
                );
            }
            let id = field["id_no"];
            let dob = field["date_of_birth"];
            assert_eq!(dob.replace('-', ""), id[6..14], "birth date inside the id");
            segments.insert(field["segment"].to_owned());
            let income: u64 = field["annual_income"].parse().unwrap();
            assert!((20_000..=5_000_000).contains(&income));
            let risk = field["risk_score"];
            assert_eq!(risk.len(), 4);
            let risk: f64 = risk.parse().unwrap();
            assert!((0.0..=9.99).contains(&risk));
        }
        assert_eq!(
            segments,
            BTreeSet::from(["corporate", "private", "retail"].map(String::from))
        );
    }

    #[test]
    fn same_seed_same_sequence() {
        let run = |seed| {
            let mut s = Synth::new(seed);
            let mut out = Vec::new();
            for _ in 0..200 {
                out.extend(s.customer().into_iter().map(|(_, v)| v));
                out.push(s.uscc());
                out.push(s.tier().to_owned());
                out.push(s.branch());
                out.push(s.date_of_birth());
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn names_follow_surname_frequencies_and_mask_to_the_surname() {
        let mut s = Synth::new(3);
        let mut wang = 0;
        let mut compound = 0;
        for _ in 0..SAMPLES {
            let name = s.person_name();
            let len = name.chars().count();
            assert!((2..=4).contains(&len));
            let masked = crate::mask::person_name(&name);
            let surname_len = if COMPOUND_SURNAMES.iter().any(|c| name.starts_with(c)) {
                compound += 1;
                2
            } else {
                1
            };
            let kept: String = name.chars().take(surname_len).collect();
            let stars = "*".repeat(len - surname_len);
            assert_eq!(masked, format!("{kept}{stars}"));
            wang += usize::from(name.starts_with('王'));
        }
        // 王 is 710 of 7550 single-surname weight (about 9.4%); compound about 0.5%.
        assert!((800..=1_080).contains(&wang), "王 share off: {wang}");
        assert!(
            (20..=90).contains(&compound),
            "compound share off: {compound}"
        );
    }

    #[test]
    fn data_tables_are_large_and_well_formed() {
        let distinct: BTreeSet<char> = Synth::new(0).given_name_chars.into_iter().collect();
        assert!(distinct.len() >= 150, "{} given-name chars", distinct.len());
        assert!(
            !distinct.contains(&'离') && !distinct.contains(&'俟') && !distinct.contains(&'侯')
        );
        let surnames: BTreeSet<char> = SURNAMES.iter().map(|s| s.0).collect();
        assert_eq!(surnames.len(), SURNAMES.len());
        assert!(surnames.len() >= 60);
        let codes: BTreeSet<&str> = REGIONS.iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), REGIONS.len());
        assert!(codes.len() >= 40);
        let provinces: BTreeSet<&str> = REGIONS.iter().map(|r| &r.code[..2]).collect();
        assert!(provinces.len() >= 25);
        for r in &REGIONS {
            assert!(r.code.len() == 6 && r.code.bytes().all(|b| b.is_ascii_digit()));
            assert!(r.district.ends_with('区') || r.district.ends_with('县'));
            let address = format!("{}{}{}建国路1号", r.province, r.city, r.district);
            assert_eq!(
                crate::mask::address(&address),
                format!("{}{}{}****", r.province, r.city, r.district),
                "address mask keeps the district"
            );
        }
    }

    #[test]
    fn tiers_and_branches() {
        let mut s = Synth::new(4);
        let mut tiers: BTreeMap<&str, usize> = BTreeMap::new();
        let mut branches = BTreeSet::new();
        for _ in 0..SAMPLES {
            *tiers.entry(s.tier()).or_default() += 1;
            branches.insert(s.branch());
        }
        assert!((7_600..=8_400).contains(&tiers["standard"]));
        assert!((1_200..=1_800).contains(&tiers["high"]));
        assert!((300..=700).contains(&tiers["vip"]));
        assert_eq!(tiers.len(), 3);
        assert_eq!(branches.len(), BRANCHES.len());
        assert!(branches
            .iter()
            .all(|b| b.len() == 6 && b.as_bytes()[2] == b'-'));
    }

    #[test]
    fn cards_use_known_bins_and_lengths() {
        let mut s = Synth::new(5);
        for _ in 0..1000 {
            let card = s.bank_card();
            let &(_, len) = BANK_BINS
                .iter()
                .find(|(bin, _)| card.starts_with(bin))
                .expect("card starts with a known BIN");
            assert_eq!(card.len(), len);
        }
    }
}
