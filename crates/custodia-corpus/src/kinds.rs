//! The file kinds of a corpus and the records each is made of.
//!
//! The records imitate what a scanner meets on a bank's file shares: call-centre notes
//! typed by agents, application logs, CSV exports with Chinese or English headers, JSON
//! event logs and markdown meeting notes. Planted values sit in the positions where they
//! occur in practice (glued to Chinese text, after `=` in logs, in CSV cells) and next to
//! the numbers that make detection hard (order numbers, timestamps, serials).

use custodia_core::PiiType as T;

use crate::doc::Doc;
use crate::values::Values;

/// What a corpus file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// Free-text call-centre notes, mostly Chinese (`.txt`).
    Notes,
    /// Application log lines, English and Chinese (`.log`).
    Log,
    /// A CSV export with a header row (`.csv`).
    Csv,
    /// One JSON event per line (`.jsonl`).
    JsonLines,
    /// Markdown meeting and visit notes (`.md`).
    Markdown,
}

impl FileKind {
    pub const ALL: [FileKind; 5] = [
        FileKind::Notes,
        FileKind::Log,
        FileKind::Csv,
        FileKind::JsonLines,
        FileKind::Markdown,
    ];

    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Notes => "txt",
            FileKind::Log => "log",
            FileKind::Csv => "csv",
            FileKind::JsonLines => "jsonl",
            FileKind::Markdown => "md",
        }
    }

    /// The folder the kind's files go in.
    pub fn folder(self) -> &'static str {
        match self {
            FileKind::Notes => "callcentre",
            FileKind::Log => "logs",
            FileKind::Csv => "exports",
            FileKind::JsonLines => "events",
            FileKind::Markdown => "wiki",
        }
    }
}

/// Writes one file of `kind` of about `target` bytes (it stops at the first record
/// boundary past the target).
/// `nth` counts the files of the kind so far; CSV files take their schema from it.
pub(crate) fn write_file(kind: FileKind, nth: u64, v: &mut Values, target: usize) -> Doc {
    let mut d = Doc::new(target + 4096);
    match kind {
        FileKind::Notes => {
            while d.len() < target {
                note(v, &mut d);
            }
        }
        FileKind::Log => {
            let day = v.range(1, 28);
            while d.len() < target {
                log_line(v, &mut d, day);
            }
        }
        FileKind::Csv => {
            let schema = nth % CSV_HEADERS.len() as u64;
            csv_header(schema, &mut d);
            while d.len() < target {
                csv_row(schema, v, &mut d);
            }
        }
        FileKind::JsonLines => {
            while d.len() < target {
                json_event(v, &mut d);
            }
        }
        FileKind::Markdown => {
            while d.len() < target {
                markdown_section(v, &mut d);
            }
        }
    }
    d
}

const NAME_TITLES: [&str; 6] = ["先生", "女士", "经理", "总", "老师", ""];
const COMPANIES: [&str; 8] = [
    "深圳市前海星辰科技有限公司",
    "杭州云栖数据服务有限公司",
    "北京华信投资管理有限公司",
    "上海浦江国际贸易有限公司",
    "成都天府软件股份有限公司",
    "广州南粤物流有限公司",
    "武汉光谷医疗器械有限公司",
    "苏州工业园区新材料有限公司",
];

fn timestamp(v: &mut Values) -> String {
    let date = v.date();
    let time = v.time();
    format!("{date} {time}")
}

// ---------------------------------------------------------------------------------------
// Call-centre notes

fn note(v: &mut Values, d: &mut Doc) {
    let ticket = v.neg_ticket_number();
    let ts = timestamp(v);
    d.s("【工单")
        .neg("ticket_number", &ticket)
        .s("】")
        .s(&ts)
        .s(" 坐席：");
    let agent = v.person_name();
    d.pii(T::PersonName, &agent).s("（工号A");
    let emp = v.range(1000, 9999).to_string();
    d.s(&emp).s("）\n");
    let sentences = v.range(2, 5);
    for _ in 0..sentences {
        note_sentence(v, d);
    }
    d.s("\n\n");
}

fn note_sentence(v: &mut Values, d: &mut Doc) {
    match v.range(0, 21) {
        0 | 1 => {
            let (name, id, mobile, addr) =
                (v.person_name(), v.resident_id(), v.mobile(), v.address());
            d.s("客户")
                .pii(T::PersonName, &name)
                .s("（身份证")
                .pii(T::CnResidentId, &id);
            d.s("）来电，手机")
                .pii(T::CnMobile, &mobile)
                .s("，要求修改地址为");
            d.pii(T::Address, &addr).s("。");
        }
        2 => {
            let (name, card, amount, date) = (v.person_name(), v.bank_card(), v.amount(), v.date());
            let title = *v.pick(&NAME_TITLES[..2]);
            d.pii(T::PersonName, &name)
                .s(title)
                .s("反映其银行卡")
                .pii(T::BankCard, &card);
            d.s("于")
                .s(&date)
                .s("被扣款")
                .s(&amount)
                .s("元，已提交争议处理。");
        }
        3 => {
            let (name, tel, email) = (v.person_name(), v.landline(), v.email());
            d.s("联系人：")
                .pii(T::PersonName, &name)
                .s("，电话")
                .pii(T::CnLandline, &tel);
            d.s("，邮箱").pii(T::Email, &email).s("。");
        }
        4 => {
            let (addr, post) = (v.address(), v.postal_code());
            d.s("客户要求将纸质账单寄往")
                .pii(T::Address, &addr)
                .s("，邮编");
            d.pii(T::PostalCode, &post).s("。");
        }
        5 => {
            let (name, id, mobile) = (v.person_name(), v.resident_id(), v.mobile());
            d.s("核实身份：姓名")
                .pii(T::PersonName, &name)
                .s("，证件号码：");
            d.pii(T::CnResidentId, &id)
                .s("，预留手机")
                .pii(T::CnMobile, &mobile);
            d.s("，核实通过。");
        }
        6 => {
            let (name, mobile, email) = (v.person_name(), v.mobile(), v.email());
            d.s("Customer ")
                .pii(T::PersonName, &name)
                .s(" called from ");
            d.pii(T::CnMobile, &mobile)
                .s(", asked to update the statement email to ");
            d.pii(T::Email, &email).s(".");
        }
        7 => {
            let company = *v.pick(&COMPANIES);
            let (uscc, contact, mobile) = (v.uscc(), v.person_name(), v.mobile());
            d.s("企业客户")
                .s(company)
                .s("（统一社会信用代码：")
                .pii(T::Uscc, &uscc);
            d.s("）申请开立对公账户，经办人")
                .pii(T::PersonName, &contact);
            d.s("，手机").pii(T::CnMobile, &mobile).s("。");
        }
        8 => {
            let (ip, ts) = (v.ipv4(), timestamp(v));
            d.s("客户反映")
                .s(&ts)
                .s("有陌生设备登录，登录IP ")
                .pii(T::Ipv4, &ip);
            d.s("，已临时冻结网银。");
        }
        9 => {
            let (name, passport) = (v.person_name(), v.passport());
            d.s("客户")
                .pii(T::PersonName, &name)
                .s("出境前办理外币业务，护照号");
            d.pii(T::CnPassport, &passport).s("，已上传影像。");
        }
        10 => {
            let (plate, card) = (v.license_plate(), v.bank_card());
            d.s("车主反映车牌")
                .pii(T::CnLicensePlate, &plate)
                .s("的ETC扣费重复，绑定卡号");
            d.pii(T::BankCard, &card).s("，已转高速公路运营方核查。");
        }
        11 => {
            let (order, serial, amount) =
                (v.neg_order_number(), v.neg_serial_with_id(), v.amount());
            d.s("订单号").neg("order_number", &order).s("，交易流水号");
            d.neg("serial_with_resident_id", &serial)
                .s("，金额")
                .s(&amount)
                .s("元，客户要求退款。");
        }
        12 => {
            let (kind, bad) = if v.chance(0.7) {
                ("resident_id_bad_check", v.neg_resident_id_bad_check())
            } else {
                ("resident_id_bad_date", v.neg_resident_id_bad_date())
            };
            d.s("客户提供的证件号").neg(kind, &bad);
            d.s("校验失败，已请客户重新核对。");
        }
        13 => {
            let bad = v.neg_card_bad_luhn();
            d.s("客户报的卡号")
                .neg("card_bad_luhn", &bad)
                .s("无效，疑似记错一位。");
        }
        14 => {
            let bad = v.neg_mobile_bad_prefix();
            d.s("来电号码")
                .neg("mobile_bad_prefix", &bad)
                .s("为虚拟号段，无法回拨。");
        }
        15 => {
            let (name, mobile) = (v.person_name(), v.mobile());
            let title = *v.pick(&NAME_TITLES[..2]);
            d.pii(T::PersonName, &name).s(title).s("请于工作日用手机");
            d.pii(T::CnMobile, &mobile).s("联系，勿在晚上九点后来电。");
        }
        16 => {
            let (masked, masked_id) = (v.neg_masked_mobile(), v.neg_masked_id());
            d.s("短信已发送至")
                .neg("masked_mobile", &masked)
                .s("，证件号");
            d.neg("masked_resident_id", &masked_id).s("已脱敏展示。");
        }
        17 => {
            let (ver, ts) = (v.neg_version(), v.neg_unix_millis());
            d.s("客户使用的App版本")
                .neg("version", &ver)
                .s("，崩溃时间戳");
            d.neg("unix_millis", &ts).s("，已转技术支持。");
        }
        18 => {
            let (name, dob, id) = (v.person_name(), v.date_of_birth(), v.resident_id());
            d.s("客户")
                .pii(T::PersonName, &name)
                .s("，出生日期")
                .pii(T::DateOfBirth, &dob);
            d.s("，身份证号码")
                .pii(T::CnResidentId, &id)
                .s("，申请调高信用卡额度。");
        }
        19 => {
            let (glued, serial) = (v.neg_glued_mobile(), v.neg_serial_with_mobile());
            d.s("设备序列号").neg("glued_mobile", &glued).s("，保单号");
            d.neg("serial_with_mobile", &serial).s("。");
        }
        20 => {
            let (name, ip6) = (v.person_name(), v.ipv6());
            d.s("客户")
                .pii(T::PersonName, &name)
                .s("反映网银登录异常，来源地址");
            d.pii(T::Ipv6, &ip6).s("。");
        }
        _ => {
            let (name, email, card) = (v.person_name(), v.email(), v.bank_card());
            let title = *v.pick(&NAME_TITLES);
            d.pii(T::PersonName, &name)
                .s(title)
                .s("要求把对账单发到")
                .pii(T::Email, &email);
            d.s("，还款卡")
                .pii(T::BankCard, &card)
                .s("，")
                .s(&v.amount())
                .s("元。");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Application logs

const LOGGERS: [&str; 8] = [
    "c.b.order.OrderService",
    "c.b.auth.LoginController",
    "c.b.kyc.KycService",
    "c.b.pay.CardBindService",
    "c.b.sms.SmsGateway",
    "c.b.risk.RiskEngine",
    "c.b.gw.AccessFilter",
    "c.b.app.VersionCheck",
];

fn log_line(v: &mut Values, d: &mut Doc, day: u64) {
    let level = *v.pick(&["INFO ", "INFO ", "INFO ", "DEBUG", "WARN ", "ERROR"]);
    let thread = v.range(1, 200);
    let head = format!(
        "2023-11-{day:02} {}.{:03} [http-nio-8080-exec-{thread}] {level} {} - traceId={} ",
        v.time(),
        v.range(0, 999),
        v.pick(&LOGGERS),
        v.hex_id(16)
    );
    d.s(&head);
    match v.range(0, 17) {
        0 | 1 => {
            let (order, user, amount, ip) =
                (v.neg_order_number(), v.small_number(), v.amount(), v.ipv4());
            d.s("createOrder orderNo=")
                .neg("order_number", &order)
                .s(" userId=")
                .s(&user);
            d.s(" amount=").s(&amount).s(" clientIp=").pii(T::Ipv4, &ip);
        }
        2 => {
            let (mobile, ip) = (v.mobile(), v.ipv4());
            d.s("登录失败 mobile=")
                .pii(T::CnMobile, &mobile)
                .s(" ip=")
                .pii(T::Ipv4, &ip);
            d.s(" reason=密码错误 retry=").s(&v.range(1, 5).to_string());
        }
        3 => {
            let (name, id, mobile) = (v.person_name(), v.resident_id(), v.mobile());
            d.s("kyc request body: {\"name\":\"")
                .pii(T::PersonName, &name);
            d.s("\",\"idNo\":\"")
                .pii(T::CnResidentId, &id)
                .s("\",\"phone\":\"");
            d.pii(T::CnMobile, &mobile).s("\"}");
        }
        4 => {
            let masked = v.neg_masked_mobile();
            d.s("发送短信验证码至 ")
                .neg("masked_mobile", &masked)
                .s(" 成功 cost=");
            d.s(&v.range(5, 900).to_string()).s("ms");
        }
        5 => {
            let (bad, code) = (v.neg_card_bad_luhn(), v.range(1000, 9999));
            d.s("bind card failed cardNo=").neg("card_bad_luhn", &bad);
            d.s(&format!(" code=E{code} msg=卡号校验失败"));
        }
        6 => {
            let (card, user) = (v.bank_card(), v.small_number());
            d.s("bind card ok userId=")
                .s(&user)
                .s(" cardNo=")
                .pii(T::BankCard, &card);
        }
        7 => {
            let (ver, build) = (v.neg_version(), v.neg_version());
            d.s("client version=").neg("version", &ver).s(" os build ");
            d.neg("version", &build).s(" upgrade=false");
        }
        8 => {
            let (millis, ts) = (v.neg_unix_millis(), v.neg_compact_timestamp());
            d.s("risk score computed ts=")
                .neg("unix_millis", &millis)
                .s(" batch=");
            d.neg("compact_timestamp", &ts)
                .s(&format!(" score=0.{:03}", v.range(0, 999)));
        }
        9 => {
            let ip6 = v.ipv6();
            d.s("accepted connection from [").pii(T::Ipv6, &ip6);
            d.s(&format!("]:{}", v.range(1024, 65535)));
        }
        10 => {
            let (user, email) = (v.small_number(), v.email());
            d.s("user ")
                .s(&user)
                .s(" changed email to ")
                .pii(T::Email, &email);
        }
        11 => {
            let bad = v.neg_mobile_bad_prefix();
            d.s("sms rejected to=")
                .neg("mobile_bad_prefix", &bad)
                .s(" reason=INVALID_NUMBER");
        }
        12 => {
            let (glued, serial) = (v.neg_glued_mobile(), v.neg_serial_with_id());
            d.s("device=").neg("glued_mobile", &glued).s(" txnSerial=");
            d.neg("serial_with_resident_id", &serial);
        }
        13 => {
            let (name, mobile) = (v.person_name(), v.mobile());
            d.s("客户")
                .pii(T::PersonName, &name)
                .s("的手机号")
                .pii(T::CnMobile, &mobile);
            d.s("已加入营销白名单");
        }
        14 => {
            let bad = v.neg_resident_id_bad_check();
            d.s("id check failed idNo=")
                .neg("resident_id_bad_check", &bad);
            d.s(" reason=CHECKSUM");
        }
        15 => {
            let ip = v.ipv4();
            d.s(&format!(
                "GET /api/v1/accounts/{}/balance 200 ",
                v.small_number()
            ));
            d.s(&format!("{}ms remote=", v.range(1, 500)))
                .pii(T::Ipv4, &ip);
        }
        16 => {
            let id = v.resident_id();
            d.s("实名认证通过 certNo=")
                .pii(T::CnResidentId, &id)
                .s(" channel=APP");
        }
        _ => {
            d.s(&format!(
                "health check ok heap={}MB gc={}ms",
                v.range(200, 4000),
                v.range(1, 90)
            ));
        }
    }
    d.s("\n");
}

// ---------------------------------------------------------------------------------------
// CSV exports

const CSV_HEADERS: [&str; 4] = [
    "客户编号,姓名,身份证号,手机,银行卡号,邮箱,地址,开户日期,余额,备注\n",
    "customer_id,name,phone,email,id_no,card_no,address,created_at\n",
    "企业名称,统一社会信用代码,联系人,联系电话,座机,注册地址,邮编\n",
    "order_no,user_id,amount,client_ip,mobile,created_at,device\n",
];

fn csv_header(schema: u64, d: &mut Doc) {
    d.s(CSV_HEADERS[schema as usize]);
}

fn csv_row(schema: u64, v: &mut Values, d: &mut Doc) {
    match schema {
        0 => {
            let (no, name, id, mobile, card, email, addr) = (
                v.small_number(),
                v.person_name(),
                v.resident_id(),
                v.mobile(),
                v.bank_card(),
                v.email(),
                v.address(),
            );
            d.s(&format!("C{no:0>8},")).pii(T::PersonName, &name).s(",");
            d.pii(T::CnResidentId, &id)
                .s(",")
                .pii(T::CnMobile, &mobile)
                .s(",");
            d.pii(T::BankCard, &card).s(",");
            if v.chance(0.9) {
                d.pii(T::Email, &email);
            }
            d.s(",")
                .pii(T::Address, &addr)
                .s(",")
                .s(&v.date())
                .s(",")
                .s(&v.amount());
            d.s(",");
            match v.range(0, 5) {
                0 => {
                    let bad = v.neg_resident_id_bad_check();
                    d.s("\"原证件号")
                        .neg("resident_id_bad_check", &bad)
                        .s("有误, 已更正\"");
                }
                1 => {
                    let other = v.mobile();
                    d.s("\"备用手机: ").pii(T::CnMobile, &other).s("\"");
                }
                2 => {
                    d.s("VIP客户，请优先处理");
                }
                _ => {}
            }
        }
        1 => {
            let (no, name, mobile, email, id, card, addr) = (
                v.small_number(),
                v.person_name(),
                v.mobile(),
                v.email(),
                v.resident_id(),
                v.bank_card(),
                v.address(),
            );
            d.s(&no).s(",").pii(T::PersonName, &name).s(",");
            // A spreadsheet quotes a cell that holds spaces or a plus sign.
            if mobile.contains(' ') || mobile.starts_with('+') {
                d.s("\"").pii(T::CnMobile, &mobile).s("\"");
            } else {
                d.pii(T::CnMobile, &mobile);
            }
            d.s(",")
                .pii(T::Email, &email)
                .s(",")
                .pii(T::CnResidentId, &id)
                .s(",");
            d.pii(T::BankCard, &card)
                .s(",\"")
                .pii(T::Address, &addr)
                .s("\",");
            d.s(&timestamp(v));
        }
        2 => {
            let company = *v.pick(&COMPANIES);
            let (uscc, contact, mobile, tel, addr, post) = (
                v.uscc(),
                v.person_name(),
                v.mobile(),
                v.landline(),
                v.address(),
                v.postal_code(),
            );
            d.s(company)
                .s(",")
                .pii(T::Uscc, &uscc)
                .s(",")
                .pii(T::PersonName, &contact);
            d.s(",")
                .pii(T::CnMobile, &mobile)
                .s(",")
                .pii(T::CnLandline, &tel)
                .s(",");
            d.pii(T::Address, &addr).s(",").pii(T::PostalCode, &post);
        }
        _ => {
            let (order, user, amount, ip) =
                (v.neg_order_number(), v.small_number(), v.amount(), v.ipv4());
            d.neg("order_number", &order).s(",").s(&user).s(",");
            d.s(&amount.replace(',', ""))
                .s(",")
                .pii(T::Ipv4, &ip)
                .s(",");
            if v.chance(0.5) {
                let m = v.mobile();
                d.pii(T::CnMobile, &m);
            } else {
                let m = v.neg_masked_mobile();
                d.neg("masked_mobile", &m);
            }
            d.s(",").s(&timestamp(v)).s(",");
            let glued = v.neg_glued_mobile();
            d.neg("glued_mobile", &glued);
        }
    }
    d.s("\n");
}

// ---------------------------------------------------------------------------------------
// JSON event logs

fn json_event(v: &mut Values, d: &mut Doc) {
    let ts = format!(
        "2023-11-{:02}T{}.{:03}+08:00",
        v.range(1, 28),
        v.time(),
        v.range(0, 999)
    );
    let req = v.hex_id(24);
    d.s(&format!("{{\"ts\":\"{ts}\",\"req_id\":\"{req}\","));
    match v.range(0, 7) {
        0 | 1 => {
            let (name, id, mobile, ip) = (v.person_name(), v.resident_id(), v.mobile(), v.ipv4());
            d.s("\"level\":\"info\",\"event\":\"kyc.submit\",\"customer\":{\"name\":\"");
            d.pii(T::PersonName, &name)
                .s("\",\"id_no\":\"")
                .pii(T::CnResidentId, &id);
            d.s("\",\"mobile\":\"")
                .pii(T::CnMobile, &mobile)
                .s("\"},\"ip\":\"");
            d.pii(T::Ipv4, &ip).s("\"");
        }
        2 => {
            let (card, email, user) = (v.bank_card(), v.email(), v.small_number());
            d.s(&format!(
                "\"level\":\"info\",\"event\":\"card.bind\",\"user_id\":{user},"
            ));
            d.s("\"card_no\":\"")
                .pii(T::BankCard, &card)
                .s("\",\"notify_email\":\"");
            d.pii(T::Email, &email).s("\"");
        }
        3 => {
            let (order, amount, ts_ms) = (v.neg_order_number(), v.amount(), v.neg_unix_millis());
            d.s("\"level\":\"info\",\"event\":\"order.paid\",\"order_no\":\"");
            d.neg("order_number", &order)
                .s("\",\"amount\":")
                .s(&amount.replace(',', ""));
            d.s(",\"paid_at_ms\":").neg("unix_millis", &ts_ms);
        }
        4 => {
            let (ver, bad) = (v.neg_version(), v.neg_card_bad_luhn());
            d.s("\"level\":\"warn\",\"event\":\"card.verify_failed\",\"app_ver\":\"");
            d.neg("version", &ver)
                .s("\",\"card_no\":\"")
                .neg("card_bad_luhn", &bad);
            d.s("\"");
        }
        5 => {
            let (name, addr, post, mobile) =
                (v.person_name(), v.address(), v.postal_code(), v.mobile());
            d.s("\"level\":\"info\",\"event\":\"address.update\",\"recipient\":\"");
            d.pii(T::PersonName, &name)
                .s("\",\"address\":\"")
                .pii(T::Address, &addr);
            d.s("\",\"postcode\":\"")
                .pii(T::PostalCode, &post)
                .s("\",\"phone\":\"");
            d.pii(T::CnMobile, &mobile).s("\"");
        }
        6 => {
            let (ip6, serial) = (v.ipv6(), v.neg_serial_with_mobile());
            d.s("\"level\":\"debug\",\"event\":\"session.open\",\"peer\":\"");
            d.pii(T::Ipv6, &ip6)
                .s("\",\"session\":\"")
                .neg("serial_with_mobile", &serial);
            d.s("\"");
        }
        _ => {
            let (plate, uscc) = (v.license_plate(), v.uscc());
            d.s("\"level\":\"info\",\"event\":\"fleet.policy\",\"plate\":\"");
            d.pii(T::CnLicensePlate, &plate).s("\",\"insured_uscc\":\"");
            d.pii(T::Uscc, &uscc).s("\"");
        }
    }
    d.s("}\n");
}

// ---------------------------------------------------------------------------------------
// Markdown notes

fn markdown_section(v: &mut Values, d: &mut Doc) {
    let date = v.date();
    d.s("# 客户回访纪要 ").s(&date).s("\n\n## 参会人\n\n");
    for _ in 0..v.range(1, 3) {
        let (name, mobile) = (v.person_name(), v.mobile());
        let role = *v.pick(&["客户经理", "理财经理", "风控专员", "联系人"]);
        d.s("- ")
            .s(role)
            .s("：")
            .pii(T::PersonName, &name)
            .s("（")
            .pii(T::CnMobile, &mobile);
        d.s("）\n");
    }
    d.s("\n## 客户信息\n\n| 姓名 | 手机 | 邮箱 | 证件号 |\n|---|---|---|---|\n");
    for _ in 0..v.range(1, 4) {
        let (name, mobile, email, id) = (v.person_name(), v.mobile(), v.email(), v.resident_id());
        d.s("| ")
            .pii(T::PersonName, &name)
            .s(" | ")
            .pii(T::CnMobile, &mobile)
            .s(" | ");
        d.pii(T::Email, &email)
            .s(" | ")
            .pii(T::CnResidentId, &id)
            .s(" |\n");
    }
    d.s("\n## 纪要\n\n");
    let (name, addr) = (v.person_name(), v.address());
    let title = *v.pick(&NAME_TITLES[..2]);
    d.s("1. ")
        .pii(T::PersonName, &name)
        .s(title)
        .s("已搬家，新地址：")
        .pii(T::Address, &addr);
    d.s("。\n");
    let (card, tel) = (v.bank_card(), v.landline());
    d.s("2. 代扣卡更换为 `")
        .pii(T::BankCard, &card)
        .s("`，办公电话 ");
    d.pii(T::CnLandline, &tel).s("。\n");
    let (ticket, amount) = (v.neg_ticket_number(), v.amount());
    d.s("3. 工单 ")
        .neg("ticket_number", &ticket)
        .s(" 已结案，赔付 ")
        .s(&amount);
    d.s(" 元。\n\n```\n");
    let (ver, millis, ip) = (v.neg_version(), v.neg_unix_millis(), v.ipv4());
    d.s("app_version: ")
        .neg("version", &ver)
        .s("\nlast_login_ms: ")
        .neg("unix_millis", &millis);
    d.s("\nlast_login_ip: ").pii(T::Ipv4, &ip).s("\n```\n\n");
}
