//! Planted values in the surface forms people and systems actually write, and the hard
//! negatives that look like them.
//!
//! Canonical values come from [`custodia_detect::synth::Synth`] where it has them, so the
//! corpus and the vault's demo data agree on what a plausible customer is; this module
//! adds the types Synth lacks and the many ways one value gets written (`+86 138 1234
//! 5678`, full-width digits, a lowercase `x`, cards in groups of four).

use custodia_detect::synth::Synth;
use rand::rngs::StdRng;
use rand::Rng;

use custodia_core::PiiType as T;

use crate::doc::{is_ambiguous, validates_as_nothing};

const COMPOUND_SURNAMES: [&str; 8] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "慕容", "司徒",
];

/// Province, prefecture city (empty under a municipality), districts.
const GAZETTEER: [(&str, &str, &[&str]); 24] = [
    (
        "北京市",
        "",
        &["朝阳区", "海淀区", "东城区", "西城区", "丰台区", "通州区"],
    ),
    (
        "上海市",
        "",
        &["浦东新区", "徐汇区", "静安区", "黄浦区", "闵行区"],
    ),
    ("天津市", "", &["和平区", "河西区", "南开区", "滨海新区"]),
    ("重庆市", "", &["渝中区", "江北区", "沙坪坝区", "九龙坡区"]),
    (
        "广东省",
        "广州市",
        &["天河区", "越秀区", "海珠区", "番禺区"],
    ),
    (
        "广东省",
        "深圳市",
        &["南山区", "福田区", "罗湖区", "宝安区", "龙岗区"],
    ),
    ("广东省", "东莞市", &["南城街道", "东城街道"]),
    (
        "浙江省",
        "杭州市",
        &["西湖区", "上城区", "滨江区", "余杭区"],
    ),
    ("浙江省", "宁波市", &["海曙区", "鄞州区"]),
    ("江苏省", "南京市", &["玄武区", "鼓楼区", "建邺区"]),
    ("江苏省", "苏州市", &["姑苏区", "吴中区", "工业园区"]),
    (
        "四川省",
        "成都市",
        &["锦江区", "武侯区", "高新区", "双流区"],
    ),
    ("湖北省", "武汉市", &["江岸区", "武昌区", "洪山区"]),
    ("湖南省", "长沙市", &["岳麓区", "芙蓉区", "雨花区"]),
    ("山东省", "青岛市", &["市南区", "崂山区", "黄岛区"]),
    ("山东省", "济南市", &["历下区", "市中区"]),
    ("福建省", "厦门市", &["思明区", "湖里区"]),
    ("福建省", "福州市", &["鼓楼区", "台江区"]),
    ("河南省", "郑州市", &["金水区", "二七区", "郑东新区"]),
    ("陕西省", "西安市", &["雁塔区", "碑林区", "未央区"]),
    ("辽宁省", "沈阳市", &["和平区", "沈河区"]),
    ("安徽省", "合肥市", &["蜀山区", "包河区"]),
    ("云南省", "昆明市", &["五华区", "盘龙区"]),
    ("广西壮族自治区", "南宁市", &["青秀区", "西乡塘区"]),
];

const ROADS: [&str; 24] = [
    "建国路",
    "人民路",
    "解放大道",
    "中山路",
    "科技园南路",
    "长安街",
    "南京西路",
    "延安东路",
    "学府路",
    "文化路",
    "和平路",
    "新华路",
    "深南大道",
    "天府大道",
    "世纪大道",
    "滨江路",
    "湖滨路",
    "金融街",
    "高新大道",
    "光华路",
    "复兴路",
    "淮海中路",
    "长江路",
    "黄河路",
];

const ESTATES: [&str; 16] = [
    "阳光花园",
    "万科城",
    "碧桂园",
    "翠苑小区",
    "金色家园",
    "华润中心",
    "国贸大厦",
    "绿地中心",
    "保利花园",
    "融创府",
    "恒大名都",
    "幸福里",
    "锦绣江南",
    "龙湖天街",
    "世茂滨江",
    "中海国际",
];

const CORP_EMAIL_DOMAINS: [&str; 8] = [
    "icbc.com.cn",
    "cmbchina.com",
    "ccb.com",
    "boc.cn",
    "pingan.com.cn",
    "huatai-sec.com",
    "example-fund.com",
    "corp.example.cn",
];

const POSTAL_CODES: [&str; 12] = [
    "100020", "100080", "200120", "200031", "518057", "510620", "310012", "210008", "610041",
    "430071", "266071", "361001",
];

const AREA_CODES: [&str; 12] = [
    "010", "021", "022", "023", "020", "0755", "0571", "025", "028", "027", "0532", "0592",
];

const PLATE_PROVINCES: [char; 16] = [
    '京', '沪', '粤', '浙', '苏', '川', '鄂', '湘', '鲁', '闽', '豫', '陕', '辽', '皖', '津', '渝',
];

/// Letters used in plate serials: I and O are not issued.
const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

pub(crate) struct Values {
    pub rng: StdRng,
    synth: Synth,
}

fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            ' ' => '\u{3000}',
            _ => c,
        })
        .collect()
}

/// `digits` cut into groups of `size` joined by `sep` (the last group may be shorter).
fn grouped(digits: &str, size: usize, sep: &str) -> String {
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % size == 0 {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

impl Values {
    pub fn new(rng: StdRng, synth_seed: u64) -> Values {
        Values {
            rng,
            synth: Synth::new(synth_seed),
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.gen_range(0..items.len())]
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    pub fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        self.rng.gen_range(lo..=hi_inclusive)
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.rng.gen_range(0..10u8)))
            .collect()
    }

    // -----------------------------------------------------------------------------------
    // Planted values

    /// A Chinese name; compound surnames about one in thirty (Synth draws them more
    /// rarely, but a test corpus needs enough of them to measure).
    fn any_person_name(&mut self) -> String {
        let name = self.synth.person_name();
        if self.chance(0.03) {
            let given: String = name.chars().skip(1).collect();
            format!("{}{given}", self.pick(&COMPOUND_SURNAMES))
        } else {
            name
        }
    }

    fn any_address(&mut self) -> String {
        if self.chance(0.4) {
            return self.synth.address();
        }
        let &(province, city, districts) = self.pick(&GAZETTEER);
        let district = *self.pick(districts);
        let road = *self.pick(&ROADS);
        let number = self.range(1, 999);
        let mut a = String::with_capacity(96);
        // A municipality's name is often dropped before the district ("朝阳区建国路").
        if !(city.is_empty() && self.chance(0.2)) {
            a.push_str(province);
        }
        a.push_str(city);
        a.push_str(district);
        a.push_str(road);
        a.push_str(&format!("{number}号"));
        match self.rng.gen_range(0..4) {
            0 => {}
            1 => {
                let estate = *self.pick(&ESTATES);
                a.push_str(&format!(
                    "{estate}{}栋{}单元{}{:02}室",
                    self.range(1, 30),
                    self.range(1, 6),
                    self.range(1, 32),
                    self.range(1, 8)
                ));
            }
            2 => a.push_str(&format!(
                "{}栋{}单元{}{:02}室",
                self.range(1, 30),
                self.range(1, 6),
                self.range(1, 32),
                self.range(1, 8)
            )),
            _ => {
                let estate = *self.pick(&ESTATES);
                a.push_str(&format!("{estate}{}层", self.range(2, 40)));
            }
        }
        a
    }

    /// A resident id in one of its written forms.
    fn any_resident_id(&mut self) -> String {
        if self.chance(0.12) {
            // Ids ending in X are one in eleven; plant more, half of them lowercase.
            let id = loop {
                let id = self.synth.resident_id();
                if id.ends_with('X') {
                    break id;
                }
            };
            return if self.chance(0.6) {
                id.to_ascii_lowercase()
            } else {
                id
            };
        }
        let id = self.synth.resident_id();
        match self.rng.gen_range(0..100) {
            0..=79 => id,
            80..=89 => format!("{} {} {}", &id[..6], &id[6..14], &id[14..]),
            90..=95 => full_width(&id),
            _ => format!("{}-{}-{}", &id[..6], &id[6..14], &id[14..]),
        }
    }

    fn any_mobile(&mut self) -> String {
        let m = self.synth.mobile();
        let (a, b, c) = (&m[..3], &m[3..7], &m[7..]);
        match self.rng.gen_range(0..100) {
            0..=44 => m,
            45..=54 => format!("{a}-{b}-{c}"),
            55..=64 => format!("{a} {b} {c}"),
            65..=71 => format!("+86 {m}"),
            72..=77 => format!("+86-{a}-{b}-{c}"),
            78..=81 => format!("+86{m}"),
            82..=85 => format!("0086{m}"),
            86..=88 => format!("0086 {a} {b} {c}"),
            89..=94 => full_width(&m),
            _ => format!("(+86) {a} {b} {c}"),
        }
    }

    fn any_bank_card(&mut self) -> String {
        let card = self.synth.bank_card();
        match self.rng.gen_range(0..100) {
            0..=49 => card,
            50..=79 => grouped(&card, 4, " "),
            80..=91 => grouped(&card, 4, "-"),
            92..=95 => full_width(&card),
            _ => format!("{} {}", &card[..6], &card[6..]),
        }
    }

    fn any_uscc(&mut self) -> String {
        let code = self.synth.uscc();
        if self.chance(0.05) {
            code.to_ascii_lowercase()
        } else {
            code
        }
    }

    fn any_email(&mut self) -> String {
        if self.chance(0.2) {
            let name = self.synth.email();
            let local = name.split('@').next().unwrap_or("kefu");
            format!("{local}@{}", self.pick(&CORP_EMAIL_DOMAINS))
        } else if self.chance(0.05) {
            // Mixed case: providers ignore it, so detectors must too.
            let e = self.synth.email();
            let mut chars: Vec<char> = e.chars().collect();
            if let Some(c) = chars.first_mut() {
                *c = c.to_ascii_uppercase();
            }
            chars.into_iter().collect()
        } else {
            self.synth.email()
        }
    }

    fn any_ipv4(&mut self) -> String {
        match self.rng.gen_range(0..4) {
            0 => format!(
                "10.{}.{}.{}",
                self.range(0, 255),
                self.range(0, 255),
                self.range(1, 254)
            ),
            1 => format!("192.168.{}.{}", self.range(0, 255), self.range(1, 254)),
            2 => format!(
                "172.{}.{}.{}",
                self.range(16, 31),
                self.range(0, 255),
                self.range(1, 254)
            ),
            _ => format!(
                "{}.{}.{}.{}",
                self.range(1, 223),
                self.range(0, 255),
                self.range(0, 255),
                self.range(1, 254)
            ),
        }
    }

    fn any_ipv6(&mut self) -> String {
        let prefix = *self.pick(&["2408", "240e", "2409", "2001:db8", "fe80"]);
        let groups: Vec<String> = (0..4)
            .map(|_| format!("{:x}", self.rng.gen_range(0..0x10000u32)))
            .collect();
        if self.chance(0.5) {
            format!("{prefix}::{}", groups.join(":"))
        } else {
            let n = if prefix.contains(':') { 6 } else { 7 };
            let mut all: Vec<String> = (0..n)
                .map(|_| format!("{:x}", self.rng.gen_range(0..0x10000u32)))
                .collect();
            all.insert(0, prefix.to_owned());
            all.join(":")
        }
    }

    fn any_passport(&mut self) -> String {
        if self.chance(0.5) {
            format!("E{}", self.digits(8))
        } else {
            let letter = char::from(*self.pick(PLATE_LETTERS));
            format!("E{letter}{}", self.digits(7))
        }
    }

    fn any_license_plate(&mut self) -> String {
        let province = *self.pick(&PLATE_PROVINCES);
        let city = char::from(*self.pick(PLATE_LETTERS));
        let serial: String = if self.chance(0.2) {
            // New energy: D or F and five digits.
            format!("{}{}", *self.pick(&['D', 'F']), self.digits(5))
        } else {
            (0..5)
                .map(|i| {
                    if i < 2 && self.chance(0.3) {
                        char::from(*self.pick(PLATE_LETTERS))
                    } else {
                        char::from(b'0' + self.rng.gen_range(0..10u8))
                    }
                })
                .collect()
        };
        match self.rng.gen_range(0..4) {
            0 => format!("{province}{city}·{serial}"),
            _ => format!("{province}{city}{serial}"),
        }
    }

    fn any_postal_code(&mut self) -> String {
        (*self.pick(&POSTAL_CODES)).to_owned()
    }

    fn any_landline(&mut self) -> String {
        let area = *self.pick(&AREA_CODES);
        let local_len = if area.len() == 3 {
            8
        } else {
            7 + self.range(0, 1) as usize
        };
        let local = format!("{}{}", self.range(2, 8), self.digits(local_len - 1));
        match self.rng.gen_range(0..5) {
            0 | 1 => format!("{area}-{local}"),
            2 => format!("({area}) {local}"),
            3 => format!("+86 {} {local}", &area[1..]),
            _ => format!("{area}{local}"),
        }
    }

    fn any_date_of_birth(&mut self) -> String {
        let d = self.synth.date_of_birth();
        let (y, m, day) = (&d[..4], &d[5..7], &d[8..]);
        match self.rng.gen_range(0..4) {
            0 | 1 => d,
            2 => format!(
                "{y}年{}月{}日",
                m.trim_start_matches('0'),
                day.trim_start_matches('0')
            ),
            _ => format!("{y}/{m}/{day}"),
        }
    }

    // -----------------------------------------------------------------------------------
    // Planted values that say what they are: a value that also validates as another
    // strict type is drawn again, so that the truth's type is the only right answer. The
    // one exception is an all-digit resident id or USCC that passes the Luhn check (one in
    // ten): a detector must prefer the stronger check, as a reader would.

    fn unambiguous(&mut self, ty: T, mut make: impl FnMut(&mut Values) -> String) -> String {
        loop {
            let s = make(self);
            if !is_ambiguous(ty, &s) {
                return s;
            }
        }
    }

    pub fn person_name(&mut self) -> String {
        self.unambiguous(T::PersonName, Values::any_person_name)
    }

    pub fn address(&mut self) -> String {
        self.unambiguous(T::Address, Values::any_address)
    }

    pub fn resident_id(&mut self) -> String {
        self.unambiguous(T::CnResidentId, Values::any_resident_id)
    }

    pub fn mobile(&mut self) -> String {
        self.unambiguous(T::CnMobile, Values::any_mobile)
    }

    pub fn bank_card(&mut self) -> String {
        self.unambiguous(T::BankCard, Values::any_bank_card)
    }

    pub fn uscc(&mut self) -> String {
        self.unambiguous(T::Uscc, Values::any_uscc)
    }

    pub fn email(&mut self) -> String {
        self.unambiguous(T::Email, Values::any_email)
    }

    pub fn ipv4(&mut self) -> String {
        self.unambiguous(T::Ipv4, Values::any_ipv4)
    }

    pub fn ipv6(&mut self) -> String {
        self.unambiguous(T::Ipv6, Values::any_ipv6)
    }

    pub fn passport(&mut self) -> String {
        self.unambiguous(T::CnPassport, Values::any_passport)
    }

    pub fn license_plate(&mut self) -> String {
        self.unambiguous(T::CnLicensePlate, Values::any_license_plate)
    }

    pub fn postal_code(&mut self) -> String {
        self.unambiguous(T::PostalCode, Values::any_postal_code)
    }

    pub fn landline(&mut self) -> String {
        self.unambiguous(T::CnLandline, Values::any_landline)
    }

    pub fn date_of_birth(&mut self) -> String {
        self.unambiguous(T::DateOfBirth, Values::any_date_of_birth)
    }

    // -----------------------------------------------------------------------------------
    // Hard negatives. Each loops until the token validates as nothing: a random digit run
    // passes Luhn one time in ten, and would otherwise be an unrecorded bank card.

    fn until_nothing(&mut self, mut make: impl FnMut(&mut Values) -> String) -> String {
        loop {
            let s = make(self);
            if validates_as_nothing(&s) {
                return s;
            }
        }
    }

    /// An 18-character resident-id look-alike whose check character is wrong.
    pub fn neg_resident_id_bad_check(&mut self) -> String {
        self.until_nothing(|v| {
            let id = v.synth.resident_id();
            let right = id.as_bytes()[17];
            let wrong = loop {
                let c = *v.pick(b"0123456789X");
                if c != right {
                    break c;
                }
            };
            format!("{}{}", &id[..17], char::from(wrong))
        })
    }

    /// An 18-digit id look-alike with a birth date that does not exist.
    pub fn neg_resident_id_bad_date(&mut self) -> String {
        self.until_nothing(|v| {
            let id = v.synth.resident_id();
            let month = *v.pick(&["13", "00", "02"]);
            let day = if month == "02" { "30" } else { "15" };
            let body = format!("{}{month}{day}{}", &id[..10], &id[14..17]);
            format!("{body}{}", v.digits(1))
        })
    }

    /// A 16 or 19 digit number on a card BIN that fails the Luhn check.
    pub fn neg_card_bad_luhn(&mut self) -> String {
        let grouped_form = self.chance(0.3);
        self.until_nothing(|v| {
            let card = v.synth.bank_card();
            let last = card.as_bytes()[card.len() - 1];
            let bad = char::from(b'0' + (last - b'0' + 1 + v.rng.gen_range(0..9u8)) % 10);
            let wrong = format!("{}{bad}", &card[..card.len() - 1]);
            if !grouped_form {
                return wrong;
            }
            // A scanner may join any run of the groups, so every run must fail too.
            let groups: Vec<&str> = (0..wrong.len())
                .step_by(4)
                .map(|i| &wrong[i..(i + 4).min(wrong.len())])
                .collect();
            let every_run_fails = (0..groups.len()).all(|a| {
                (a + 1..=groups.len()).all(|b| validates_as_nothing(&groups[a..b].join(" ")))
            });
            if every_run_fails {
                grouped(&wrong, 4, " ")
            } else {
                // Not a negative: one the loop will skip (its first 16 digits are a card).
                card
            }
        })
    }

    /// An 11-digit number whose prefix no carrier has (10x, 11x, 12x, 140-144, 154).
    pub fn neg_mobile_bad_prefix(&mut self) -> String {
        self.until_nothing(|v| {
            let prefix = *v.pick(&[
                "100", "106", "110", "118", "120", "123", "125", "128", "140", "144", "154",
            ]);
            format!("{prefix}{}", v.digits(8))
        })
    }

    /// An order number: letters and a long date-led digit run.
    pub fn neg_order_number(&mut self) -> String {
        let prefix = *self.pick(&["ORD", "PO", "TX", "SO", "RFD"]);
        format!("{prefix}{}{}", self.compact_timestamp(), self.digits(4))
    }

    /// A 25-digit transaction serial with a valid resident id inside it.
    pub fn neg_serial_with_id(&mut self) -> String {
        self.until_nothing(|v| {
            let id = loop {
                let id = v.synth.resident_id();
                if !id.ends_with('X') {
                    break id;
                }
            };
            format!("{}{id}", v.digits(7))
        })
    }

    /// A 20 to 24 digit serial number with a valid mobile number inside it.
    pub fn neg_serial_with_mobile(&mut self) -> String {
        self.until_nothing(|v| {
            let m = v.synth.mobile();
            let pre = v.rng.gen_range(5..9);
            let post = v.rng.gen_range(4..6);
            format!("{}{m}{}", v.digits(pre), v.digits(post))
        })
    }

    fn compact_timestamp(&mut self) -> String {
        format!(
            "2023{:02}{:02}{:02}{:02}{:02}",
            self.range(1, 12),
            self.range(1, 28),
            self.range(0, 23),
            self.range(0, 59),
            self.range(0, 59)
        )
    }

    /// `20231105123045`: fourteen digits, which a Luhn-only card detector would take one
    /// time in ten.
    pub fn neg_compact_timestamp(&mut self) -> String {
        self.until_nothing(|v| v.compact_timestamp())
    }

    /// Unix milliseconds in 2023-2024.
    pub fn neg_unix_millis(&mut self) -> String {
        self.until_nothing(|v| v.range(1_672_531_200_000, 1_735_689_599_999).to_string())
    }

    /// A work order or ticket number: 12 to 16 digits.
    pub fn neg_ticket_number(&mut self) -> String {
        self.until_nothing(|v| {
            let n = v.rng.gen_range(12..=16);
            format!("2023{}", v.digits(n - 4))
        })
    }

    /// A valid mobile number glued to letters, as in device serials.
    pub fn neg_glued_mobile(&mut self) -> String {
        let m = self.synth.mobile();
        match self.rng.gen_range(0..4) {
            0 => format!("SN{m}X"),
            1 => format!("dev{m}a"),
            2 => format!("U{m}"),
            _ => format!("{m}abc"),
        }
    }

    /// A version string shaped like an IPv4 address or longer.
    pub fn neg_version(&mut self) -> String {
        match self.rng.gen_range(0..3) {
            0 => format!(
                "v{}.{}.{}.{}",
                self.range(1, 12),
                self.range(0, 20),
                self.range(0, 9),
                self.range(0, 200)
            ),
            1 => format!(
                "{}.{}.{}.{}.{}",
                self.range(1, 9),
                self.range(0, 9),
                self.range(0, 9),
                self.range(0, 9),
                self.range(0, 9)
            ),
            _ => format!(
                "10.0.{}.{}",
                self.range(19041, 22631),
                self.range(1000, 4000)
            ),
        }
    }

    pub fn neg_masked_mobile(&mut self) -> String {
        let m = self.synth.mobile();
        format!("{}****{}", &m[..3], &m[7..])
    }

    pub fn neg_masked_id(&mut self) -> String {
        let id = self.synth.resident_id();
        format!("{}********{}", &id[..6], &id[14..])
    }

    /// A date in one of its usual forms (not a date of birth: no birth-date context).
    pub fn date(&mut self) -> String {
        let (m, d) = (self.range(1, 12), self.range(1, 28));
        match self.rng.gen_range(0..3) {
            0 => format!("2023-{m:02}-{d:02}"),
            1 => format!("2023年{m}月{d}日"),
            _ => format!("2023/{m:02}/{d:02}"),
        }
    }

    pub fn time(&mut self) -> String {
        format!(
            "{:02}:{:02}:{:02}",
            self.range(0, 23),
            self.range(0, 59),
            self.range(0, 59)
        )
    }

    pub fn amount(&mut self) -> String {
        match self.rng.gen_range(0..3) {
            0 => format!("{}.{:02}", self.range(1, 99_999), self.range(0, 99)),
            1 => {
                let n = self.range(1_000, 9_999_999);
                let s = n.to_string();
                let mut out = String::new();
                for (i, c) in s.chars().enumerate() {
                    if i > 0 && (s.len() - i).is_multiple_of(3) {
                        out.push(',');
                    }
                    out.push(c);
                }
                format!("{out}.{:02}", self.range(0, 99))
            }
            _ => self.range(1, 50_000).to_string(),
        }
    }

    /// A hexadecimal request or trace id with a letter at least every fourth character,
    /// so that no long pure-digit run (an accidental card number) can appear in it.
    pub fn hex_id(&mut self, len: usize) -> String {
        (0..len)
            .map(|i| {
                if i % 4 == 0 {
                    char::from(b'a' + self.rng.gen_range(0..6u8))
                } else {
                    let n = self.rng.gen_range(0..16u8);
                    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
                }
            })
            .collect()
    }

    /// A short internal number (user id, employee number, quantity) that is no PII.
    pub fn small_number(&mut self) -> String {
        self.range(1, 9_999_999).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_detect::{normalize, validate};
    use rand::SeedableRng;

    fn values() -> Values {
        Values::new(StdRng::seed_from_u64(9), 9)
    }

    #[test]
    fn surface_forms_validate() {
        let mut v = values();
        type Maker = fn(&mut Values) -> String;
        let makers: [(T, Maker); 14] = [
            (T::PersonName, Values::person_name),
            (T::Address, Values::address),
            (T::CnResidentId, Values::resident_id),
            (T::CnMobile, Values::mobile),
            (T::BankCard, Values::bank_card),
            (T::Uscc, Values::uscc),
            (T::Email, Values::email),
            (T::Ipv4, Values::ipv4),
            (T::Ipv6, Values::ipv6),
            (T::CnPassport, Values::passport),
            (T::CnLicensePlate, Values::license_plate),
            (T::PostalCode, Values::postal_code),
            (T::CnLandline, Values::landline),
            (T::DateOfBirth, Values::date_of_birth),
        ];
        for (ty, make) in makers {
            for _ in 0..3_000 {
                let s = make(&mut v);
                assert!(normalize(ty, &s).is_ok(), "{ty}");
                assert!(!is_ambiguous(ty, &s), "{ty}");
            }
        }
    }

    #[test]
    fn hard_negatives_validate_as_nothing() {
        let mut v = values();
        type Maker = fn(&mut Values) -> String;
        let makers: [Maker; 14] = [
            Values::neg_resident_id_bad_check,
            Values::neg_resident_id_bad_date,
            Values::neg_card_bad_luhn,
            Values::neg_mobile_bad_prefix,
            Values::neg_order_number,
            Values::neg_serial_with_id,
            Values::neg_serial_with_mobile,
            Values::neg_compact_timestamp,
            Values::neg_unix_millis,
            Values::neg_ticket_number,
            Values::neg_glued_mobile,
            Values::neg_version,
            Values::neg_masked_mobile,
            Values::neg_masked_id,
        ];
        for make in makers {
            for _ in 0..2_000 {
                assert!(validates_as_nothing(&make(&mut v)));
            }
        }
        for _ in 0..2_000 {
            assert!(validate::resident_id(&v.neg_resident_id_bad_check()).is_err());
            assert!(validate::bank_card(&v.neg_card_bad_luhn()).is_err());
        }
    }
}
