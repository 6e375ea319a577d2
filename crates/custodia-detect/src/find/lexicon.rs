//! Word lists: context words, surnames, place names, and the character sets built from
//! them at compile time.
//!
//! The scanner decodes each CJK character once and tests one bit in [`TRIGGERS`]; only
//! characters that begin a listed word cost a lexicon lookup. Everything is `const` or
//! built once, so a scan allocates nothing for the lexicon.

use std::sync::OnceLock;

/// A set of BMP characters, one bit each (8 KiB).
pub(crate) struct CharSet([u64; 1024]);

/// The scalar value and UTF-8 length of the character at `i` (a char boundary).
pub(crate) const fn decode(b: &[u8], i: usize) -> (u32, usize) {
    let b0 = b[i] as u32;
    if b0 < 0x80 {
        (b0, 1)
    } else if b0 < 0xE0 {
        (((b0 & 0x1F) << 6) | (b[i + 1] as u32 & 0x3F), 2)
    } else if b0 < 0xF0 {
        (
            ((b0 & 0x0F) << 12) | ((b[i + 1] as u32 & 0x3F) << 6) | (b[i + 2] as u32 & 0x3F),
            3,
        )
    } else {
        (
            ((b0 & 0x07) << 18)
                | ((b[i + 1] as u32 & 0x3F) << 12)
                | ((b[i + 2] as u32 & 0x3F) << 6)
                | (b[i + 3] as u32 & 0x3F),
            4,
        )
    }
}

impl CharSet {
    pub const fn empty() -> CharSet {
        CharSet([0; 1024])
    }

    /// Adds every character of `chars`.
    pub const fn with_chars(mut self, chars: &str) -> CharSet {
        let b = chars.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let (c, w) = decode(b, i);
            if c < 0x10000 {
                self.0[(c >> 6) as usize] |= 1 << (c & 63);
            }
            i += w;
        }
        self
    }

    /// Adds the first character of every word.
    pub const fn with_firsts(mut self, words: &[&str]) -> CharSet {
        let mut k = 0;
        while k < words.len() {
            let (c, _) = decode(words[k].as_bytes(), 0);
            if c < 0x10000 {
                self.0[(c >> 6) as usize] |= 1 << (c & 63);
            }
            k += 1;
        }
        self
    }

    #[inline]
    pub fn contains(&self, c: u32) -> bool {
        c < 0x10000 && self.0[(c >> 6) as usize] & (1 << (c & 63)) != 0
    }
}

/// Whether `c` is a CJK unified ideograph (the basic block and extension A).
#[inline]
pub(crate) fn is_ideograph(c: u32) -> bool {
    (0x4E00..=0x9FFF).contains(&c) || (0x3400..=0x4DBF).contains(&c)
}

/// The ideograph at byte `i` of `s`, if there is one.
#[inline]
pub(crate) fn ideograph_at(s: &[u8], i: usize) -> Option<u32> {
    if i + 3 <= s.len() && (0xE3..=0xE9).contains(&s[i]) {
        let (c, _) = decode(s, i);
        is_ideograph(c).then_some(c)
    } else {
        None
    }
}

/// The ideograph ending at byte `end` of `s`, if there is one.
#[inline]
pub(crate) fn ideograph_before(s: &[u8], end: usize) -> Option<u32> {
    end.checked_sub(3).and_then(|i| ideograph_at(s, i))
}

/// What a CJK word found by the trigger lookup means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A name follows: `客户张伟`, `姓名：王芳`.
    NameBefore,
    /// A name precedes: `李先生`, `王经理`.
    Title,
    /// An address follows: `地址：`, `家住`.
    AddressBefore,
    /// A province or city that may start an address.
    Place,
    /// A name may precede, at the start of a clause: `张伟要求…`.
    NameVerb,
    /// A date of birth follows: `出生日期：1990-05-12`.
    BirthBefore,
}

/// Reporting verbs that follow the name a clause starts with: `张伟要求…`.
pub(crate) const NAME_VERBS: &[&str] = &[
    "要求", "反映", "表示", "来电", "咨询", "投诉", "申请", "希望", "同意", "确认", "声称",
];

pub(crate) const BIRTH_BEFORE: &[&str] = &["出生日期", "出生年月日", "出生年月", "出生于", "生日"];

pub(crate) const NAME_BEFORE: &[&str] = &[
    "客户",
    "姓名",
    "名字",
    "坐席",
    "客服",
    "联系人",
    "户名",
    "持卡人",
    "收件人",
    "收货人",
    "开户人",
    "申请人",
    "借款人",
    "投保人",
    "被保险人",
    "受益人",
    "委托人",
    "代理人",
    "经办人",
    "法定代表人",
    "法人",
    "担保人",
    "配偶",
    "寄件人",
    "账户名",
    "用户",
    "会员",
    "贷款人",
    "承租人",
    "出租人",
    "来电人",
    "客户姓名",
    "客户名称",
    "本人",
    "户主",
    "业主",
    "车主",
    "患者",
    "学员",
    "员工",
    "租客",
    "买家",
    "卖家",
    "收款人",
    "付款人",
    "汇款人",
    "转账给",
    "转给",
    "致电",
    "名叫",
    "叫做",
];

pub(crate) const TITLES: &[&str] = &[
    "先生",
    "女士",
    "小姐",
    "老师",
    "经理",
    "总经理",
    "总监",
    "主任",
    "师傅",
    "阿姨",
    "同学",
    "律师",
    "医生",
    "老板",
    "太太",
    "夫人",
    "教授",
    "董事长",
    "行长",
    "处长",
    "科长",
    "部长",
    "局长",
    "院长",
    "校长",
    "博士",
    "大夫",
    "会计",
    "主管",
    "专员",
    "顾问",
];

pub(crate) const ADDRESS_BEFORE: &[&str] = &[
    "地址",
    "住址",
    "家住",
    "住在",
    "现住",
    "居住地",
    "寄往",
    "寄到",
    "寄至",
    "送到",
    "送至",
    "住所",
    "户籍地",
    "所在地",
    "通讯地址",
    "家庭地址",
    "收货地址",
    "办公地址",
    "联系地址",
];

/// Provinces and provincial-level units, with and without their suffix.
pub(crate) const PROVINCES: &[&str] = &[
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
];

/// Prefecture-level cities (names without 市) and the best-known districts of the
/// largest cities (with 区, so that a bare word such as 朝阳 does not start an address).
pub(crate) const CITIES: &[&str] = &[
    "石家庄",
    "唐山",
    "秦皇岛",
    "邯郸",
    "邢台",
    "保定",
    "张家口",
    "承德",
    "沧州",
    "廊坊",
    "衡水",
    "太原",
    "大同",
    "阳泉",
    "长治",
    "晋城",
    "朔州",
    "晋中",
    "运城",
    "忻州",
    "临汾",
    "吕梁",
    "呼和浩特",
    "包头",
    "乌海",
    "赤峰",
    "通辽",
    "鄂尔多斯",
    "呼伦贝尔",
    "沈阳",
    "大连",
    "鞍山",
    "抚顺",
    "本溪",
    "丹东",
    "锦州",
    "营口",
    "阜新",
    "辽阳",
    "盘锦",
    "铁岭",
    "葫芦岛",
    "长春",
    "四平",
    "辽源",
    "通化",
    "白山",
    "松原",
    "白城",
    "延边",
    "哈尔滨",
    "齐齐哈尔",
    "鸡西",
    "鹤岗",
    "双鸭山",
    "大庆",
    "伊春",
    "佳木斯",
    "七台河",
    "牡丹江",
    "绥化",
    "南京",
    "无锡",
    "徐州",
    "常州",
    "苏州",
    "南通",
    "连云港",
    "淮安",
    "盐城",
    "扬州",
    "镇江",
    "泰州",
    "宿迁",
    "杭州",
    "宁波",
    "温州",
    "嘉兴",
    "湖州",
    "绍兴",
    "金华",
    "衢州",
    "舟山",
    "台州",
    "丽水",
    "合肥",
    "芜湖",
    "蚌埠",
    "淮南",
    "马鞍山",
    "淮北",
    "铜陵",
    "安庆",
    "黄山市",
    "滁州",
    "阜阳",
    "宿州",
    "六安",
    "亳州",
    "池州",
    "宣城",
    "福州",
    "厦门",
    "莆田",
    "三明",
    "泉州",
    "漳州",
    "南平",
    "龙岩",
    "宁德",
    "南昌",
    "景德镇",
    "萍乡",
    "九江",
    "新余",
    "鹰潭",
    "赣州",
    "吉安",
    "宜春",
    "抚州",
    "上饶",
    "济南",
    "青岛",
    "淄博",
    "枣庄",
    "东营",
    "烟台",
    "潍坊",
    "济宁",
    "泰安",
    "威海",
    "日照",
    "临沂",
    "德州",
    "聊城",
    "滨州",
    "菏泽",
    "郑州",
    "开封市",
    "洛阳",
    "平顶山",
    "安阳",
    "鹤壁",
    "新乡",
    "焦作",
    "濮阳",
    "许昌",
    "漯河",
    "三门峡",
    "南阳",
    "商丘",
    "信阳",
    "周口",
    "驻马店",
    "武汉",
    "黄石",
    "十堰",
    "宜昌",
    "襄阳",
    "鄂州",
    "荆门",
    "孝感",
    "荆州",
    "黄冈",
    "咸宁",
    "随州",
    "恩施",
    "长沙",
    "株洲",
    "湘潭",
    "衡阳",
    "邵阳",
    "岳阳",
    "常德",
    "张家界",
    "益阳",
    "郴州",
    "永州",
    "怀化",
    "娄底",
    "广州",
    "韶关",
    "深圳",
    "珠海",
    "汕头",
    "佛山",
    "江门",
    "湛江",
    "茂名",
    "肇庆",
    "惠州",
    "梅州",
    "汕尾",
    "河源",
    "阳江",
    "清远",
    "东莞",
    "中山市",
    "潮州",
    "揭阳",
    "云浮",
    "南宁",
    "柳州",
    "桂林",
    "梧州",
    "北海市",
    "防城港",
    "钦州",
    "贵港",
    "玉林",
    "百色",
    "贺州",
    "河池",
    "来宾市",
    "崇左",
    "海口",
    "三亚",
    "儋州",
    "成都",
    "自贡",
    "攀枝花",
    "泸州",
    "德阳",
    "绵阳",
    "广元",
    "遂宁",
    "内江",
    "乐山",
    "南充",
    "眉山",
    "宜宾",
    "广安",
    "达州",
    "雅安",
    "巴中",
    "资阳",
    "贵阳",
    "六盘水",
    "遵义",
    "安顺",
    "毕节",
    "铜仁",
    "昆明",
    "曲靖",
    "玉溪",
    "保山",
    "昭通",
    "丽江",
    "普洱市",
    "临沧",
    "大理",
    "西双版纳",
    "拉萨",
    "日喀则",
    "西安",
    "铜川",
    "宝鸡",
    "咸阳",
    "渭南",
    "延安",
    "汉中",
    "榆林",
    "安康市",
    "商洛",
    "兰州",
    "嘉峪关",
    "金昌",
    "白银",
    "天水",
    "武威",
    "张掖",
    "平凉",
    "酒泉",
    "庆阳",
    "定西",
    "陇南",
    "西宁",
    "银川",
    "石嘴山",
    "吴忠",
    "固原",
    "中卫",
    "乌鲁木齐",
    "克拉玛依",
    "吐鲁番",
    "哈密",
    "喀什",
    "伊犁",
    "昌吉",
    "阿克苏",
    "库尔勒",
    "东城区",
    "西城区",
    "朝阳区",
    "海淀区",
    "丰台区",
    "石景山区",
    "通州区",
    "昌平区",
    "大兴区",
    "顺义区",
    "房山区",
    "黄浦区",
    "徐汇区",
    "长宁区",
    "静安区",
    "普陀区",
    "虹口区",
    "杨浦区",
    "浦东新区",
    "闵行区",
    "宝山区",
    "嘉定区",
    "松江区",
    "青浦区",
    "福田区",
    "罗湖区",
    "南山区",
    "宝安区",
    "龙岗区",
    "龙华区",
    "天河区",
    "越秀区",
    "海珠区",
    "白云区",
    "番禺区",
    "荔湾区",
    "黄埔区",
    "西湖区",
    "上城区",
    "拱墅区",
    "滨江区",
    "萧山区",
    "余杭区",
    "武侯区",
    "锦江区",
    "青羊区",
    "金牛区",
    "成华区",
    "高新区",
    "江岸区",
    "武昌区",
    "洪山区",
    "鼓楼区",
    "玄武区",
    "秦淮区",
    "建邺区",
    "雁塔区",
    "碑林区",
    "和平区",
    "南开区",
    "河西区",
    "市南区",
    "市北区",
    "历下区",
    "渝中区",
    "江北区",
    "沙坪坝区",
    "九龙坡区",
    "南岸区",
    "思明区",
    "湖里区",
    "滨海新区",
    "经济开发区",
];

/// Words that end an address (or a name) being read: another value's label.
pub(crate) const LABELS: &[&str] = &[
    "电话",
    "手机",
    "联系",
    "邮编",
    "邮政",
    "身份证",
    "证件",
    "卡号",
    "账号",
    "帐号",
    "银行卡",
    "邮箱",
    "护照",
    "金额",
    "余额",
    "日期",
    "时间",
    "备注",
    "号码",
    "编号",
    "客户",
    "姓名",
];

/// Every character that begins a word of the trigger lexicon.
pub(crate) static TRIGGERS: CharSet = CharSet::empty()
    .with_firsts(NAME_BEFORE)
    .with_firsts(TITLES)
    .with_firsts(ADDRESS_BEFORE)
    .with_firsts(PROVINCES)
    .with_firsts(CITIES)
    .with_firsts(BIRTH_BEFORE)
    .with_firsts(NAME_VERBS);

/// A filter on the first two characters of lexicon words: one bit per hashed pair, so
/// that a common first character (`大`, `上`, `中`) costs a lookup only when the next
/// character could continue a word. False positives (about 1%) just cost the lookup.
pub(crate) struct PairSet([u64; 1024]);

const fn pair_hash(a: u32, b: u32) -> u32 {
    (a.wrapping_mul(0x9E37_79B1) ^ b.wrapping_mul(0x85EB_CA77)) >> 16
}

impl PairSet {
    const fn with_words(mut self, words: &[&str]) -> PairSet {
        let mut k = 0;
        while k < words.len() {
            let b = words[k].as_bytes();
            let (c1, w) = decode(b, 0);
            let (c2, _) = decode(b, w);
            let h = pair_hash(c1, c2);
            self.0[(h >> 6) as usize] |= 1 << (h & 63);
            k += 1;
        }
        self
    }

    #[inline]
    pub fn may_contain(&self, a: u32, b: u32) -> bool {
        let h = pair_hash(a, b);
        self.0[(h >> 6) as usize] & (1 << (h & 63)) != 0
    }
}

pub(crate) static TRIGGER_PAIRS: PairSet = PairSet([0; 1024])
    .with_words(NAME_BEFORE)
    .with_words(TITLES)
    .with_words(ADDRESS_BEFORE)
    .with_words(PROVINCES)
    .with_words(CITIES)
    .with_words(BIRTH_BEFORE)
    .with_words(NAME_VERBS);

static LABEL_FIRSTS: CharSet = CharSet::empty().with_firsts(LABELS);

/// The two ideographs at byte `i` as one sortable key.
#[inline]
pub(crate) fn pair_at(s: &[u8], i: usize) -> Option<u64> {
    let a = ideograph_at(s, i)?;
    let b = ideograph_at(s, i + 3)?;
    Some(u64::from(a) << 32 | u64::from(b))
}

fn word_pair(w: &str) -> u64 {
    pair_at(w.as_bytes(), 0).unwrap_or(u64::MAX)
}

/// An open-addressing table from a two-character key to a range of a word list.
pub(crate) struct PairMap {
    slots: Vec<(u64, u32, u32)>,
}

impl PairMap {
    /// `sorted` keys (equal keys adjacent); each distinct key maps to its range.
    fn new(sorted: &[u64]) -> PairMap {
        let size = (sorted.len() * 4).next_power_of_two().max(16);
        let mut slots = vec![(0u64, 0u32, 0u32); size];
        let mut i = 0;
        while i < sorted.len() {
            let key = sorted[i];
            let len = sorted[i..].iter().take_while(|&&k| k == key).count();
            let mut h = Self::slot(key, size);
            while slots[h].0 != 0 {
                h = (h + 1) & (size - 1);
            }
            slots[h] = (key, i as u32, len as u32);
            i += len;
        }
        PairMap { slots }
    }

    #[inline]
    fn slot(key: u64, size: usize) -> usize {
        (pair_hash((key >> 32) as u32, key as u32) as usize) & (size - 1)
    }

    #[inline]
    fn get(&self, key: u64) -> Option<std::ops::Range<usize>> {
        let mask = self.slots.len() - 1;
        let mut h = Self::slot(key, self.slots.len());
        loop {
            let (k, start, len) = self.slots[h];
            if k == key {
                return Some(start as usize..(start + len) as usize);
            }
            if k == 0 {
                return None;
            }
            h = (h + 1) & mask;
        }
    }
}

/// An exact set of two-character words.
pub(crate) struct Pairs(PairMap);

impl Pairs {
    pub fn new(words: &[&str]) -> Pairs {
        let mut keys: Vec<u64> = words.iter().map(|w| word_pair(w)).collect();
        keys.sort_unstable();
        Pairs(PairMap::new(&keys))
    }

    #[inline]
    pub fn contains_at(&self, s: &[u8], i: usize) -> bool {
        pair_at(s, i).is_some_and(|k| self.0.get(k).is_some())
    }
}

/// The trigger lexicon, indexed by the first two characters, longest word first.
pub(crate) struct Lexicon {
    index: PairMap,
    words: Vec<(&'static str, Kind)>,
    pub stop_bigrams: Pairs,
    pub compound_surnames: Pairs,
}

impl Lexicon {
    pub fn get() -> &'static Lexicon {
        static LEXICON: OnceLock<Lexicon> = OnceLock::new();
        LEXICON.get_or_init(|| {
            let mut words = Vec::new();
            for (list, kind) in [
                (NAME_BEFORE, Kind::NameBefore),
                (TITLES, Kind::Title),
                (ADDRESS_BEFORE, Kind::AddressBefore),
                (PROVINCES, Kind::Place),
                (CITIES, Kind::Place),
                (BIRTH_BEFORE, Kind::BirthBefore),
                (NAME_VERBS, Kind::NameVerb),
            ] {
                for &w in list {
                    words.push((word_pair(w), w, kind));
                }
            }
            words.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.len().cmp(&a.1.len())));
            let keys: Vec<u64> = words.iter().map(|w| w.0).collect();
            Lexicon {
                index: PairMap::new(&keys),
                words: words.iter().map(|w| (w.1, w.2)).collect(),
                stop_bigrams: Pairs::new(STOP_BIGRAMS),
                compound_surnames: Pairs::new(&COMPOUND_SURNAMES),
            }
        })
    }

    /// The longest lexicon word at byte `i` of `s`, whose first character is `c`.
    #[inline]
    pub fn at(&self, s: &[u8], i: usize, c: u32) -> Option<(&'static str, Kind)> {
        let next = ideograph_at(s, i + 3)?;
        if !TRIGGER_PAIRS.may_contain(c, next) {
            return None;
        }
        let range = self.index.get(u64::from(c) << 32 | u64::from(next))?;
        self.words[range]
            .iter()
            .find(|w| s[i..].starts_with(w.0.as_bytes()))
            .copied()
    }

    /// Whether a word of the given kinds, or a label, starts at byte `i`.
    pub fn stops_at(&self, s: &[u8], i: usize) -> bool {
        let Some(c) = ideograph_at(s, i) else {
            return false;
        };
        if LABEL_FIRSTS.contains(c) && LABELS.iter().any(|w| s[i..].starts_with(w.as_bytes())) {
            return true;
        }
        match Some(c) {
            Some(c) if TRIGGERS.contains(c) => {
                matches!(
                    self.at(s, i, c),
                    Some((
                        _,
                        Kind::NameBefore
                            | Kind::Title
                            | Kind::AddressBefore
                            | Kind::BirthBefore
                            | Kind::NameVerb
                    ))
                )
            }
            _ => false,
        }
    }
}

/// Single-character surnames: the 100 most common and some 100 more.
pub(crate) static SURNAMES: CharSet = CharSet::empty().with_chars(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩邓冯曹彭曾肖田董潘袁蔡蒋余于杜叶程\
     魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾\
     龚邵万覃武钱戴严莫孔向常汤康易乔赖文施洪牛樊葛邢安齐庞颜倪温芦俞章鲁葛伍殷左翟聂耿柳甘\
     祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶\
     解牟艾尤阳时穆农司卓古吉缪简车项连芮栾晏褚娄桂邬窦仇岳关糜戚焦麦",
);

/// Surnames that are also common words; after one of these the next character must not
/// make an ordinary word (see [`STOP_BIGRAMS`]).
pub(crate) const STOP_BIGRAMS: &[&str] = &[
    "于是", "于今", "于昨", "于本", "于明", "于上", "于下", "于近", "于当", "于前", "于次", "于该",
    "于月", "于年", "向银", "向我", "向本", "向客", "向其", "向他", "向她", "向对", "向公", "常用",
    "常常", "方面", "方式", "方便", "方案", "方法", "方向", "高度", "高兴", "高级", "高端", "高于",
    "金额", "金融", "金卡", "万一", "万元", "安全", "安装", "安排", "明天", "明确", "明白", "明细",
    "文件", "成功", "成为", "成本", "时间", "时候", "全部", "余额", "余下", "马上", "付款", "付费",
    "任何", "钱款", "管理", "包括", "申请", "司机", "房贷", "房产", "车贷", "车辆", "平台", "平安",
    "单位", "原因", "宁可", "程序", "何时", "许多", "曾经", "周末", "周期", "黄金", "董事", "谢谢",
    "范围", "顾问", "严重", "严格", "温馨", "康复", "关系", "关于", "关注", "关联", "关闭", "关键",
    "解决", "解释", "解除", "项目", "简单", "连续", "连接", "季度", "史上", "华为", "路上", "邮政",
    "阳光", "吉祥", "游戏", "牛奶", "尚未", "章程", "伍佰", "江苏", "江西", "黄山", "石油", "白金",
    "龙头", "雷同", "毛利", "段时", "齐全", "章节", "甘肃", "车主", "古代", "田地", "夏天", "孙子",
    "陈述", "卢布", "鲁莽", "能否", "宋体", "苏州", "钟头", "干部", "吴江", "叶子", "秦皇", "常州",
    "艾滋", "柴油", "包装", "简称", "成员", "成都", "计划", "和平", "金华", "林业", "陆续", "连云",
];

/// Characters that do not appear in a given name in our heuristic: function words, verbs
/// and nouns that typically follow a name in a call-centre note.
pub(crate) static STOP_GIVEN: CharSet = CharSet::empty().with_chars(
    "的了是在有和与及或要来去说称表示需已未不没也都很就还又再被把让给对向从到于等为着过吗呢吧啊哦\
     呀嗯您你我他她它们这那哪什么怎个些位次件条块分秒年日时号码电话手机卡账户先生女士小姐经\
     理总老师客名人员行款钱费单额期想问知道请帮办申投诉咨询反映求确认核实查告回复处联系致拨打\
     接收寄送取存转汇交付退换开关办挂销补领签约购买卖借贷还欠逾诈骗报警投保赔理保险银信用额度\
     工作单位地址住现籍所在省市区县镇乡村路街道巷号楼室栋层座门牌邮编护照证件身份证号码编码\
     今昨前后上下左右中内外早晚午夜周本该此其各每某另同共全部所以因而但则并且或者即便仍然已经\
     曾将会能可应该必须需要希望认为觉得表示反馈建议提出提供填写登记核对查看发现",
);

/// Characters before a name that do not glue to it: function words and the last
/// characters of context words.
pub(crate) static NAME_BOUNDARY: CharSet = CharSet::empty()
    .with_chars("的是和与跟给找叫请问位向对被让由等及同帮将把告知称为了在致联系户名人员主工属方");

/// Compound surnames (the display mask keeps the same list whole).
pub(crate) use crate::mask::COMPOUND_SURNAMES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lexicon_word_is_a_trigger_and_found_at_its_start() {
        let lex = Lexicon::get();
        for list in [
            NAME_BEFORE,
            TITLES,
            ADDRESS_BEFORE,
            PROVINCES,
            CITIES,
            BIRTH_BEFORE,
            NAME_VERBS,
        ] {
            for w in list {
                let b = w.as_bytes();
                let (c, _) = decode(b, 0);
                assert!(TRIGGERS.contains(c), "{w}");
                let (found, _) = lex.at(b, 0, c).unwrap();
                assert!(w.starts_with(found), "{w}");
            }
        }
    }

    #[test]
    fn charset_decodes_what_it_stores() {
        let set = CharSet::empty().with_chars("a张𠀀");
        assert!(set.contains('a' as u32));
        assert!(set.contains('张' as u32));
        assert!(!set.contains('王' as u32));
        assert!(
            !SURNAMES.contains('欧' as u32),
            "compound surnames are a separate list"
        );
        assert!(!SURNAMES.contains('姓' as u32));
    }
}
