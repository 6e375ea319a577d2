//! Schema proposals: from the columns of a CSV file or a table, a vault collection schema
//! (TOML) that `custodia collections put` and `custodia init --collection` accept as is.

use crate::ColumnReport;
use custodia_core::{Level, PiiType};
use std::collections::HashSet;
use std::fmt::Write as _;

/// Types that are looked up by exact value (a blind index is worth its cost).
fn identifier(t: PiiType) -> bool {
    matches!(
        t,
        PiiType::PersonName
            | PiiType::CnResidentId
            | PiiType::CnMobile
            | PiiType::CnLandline
            | PiiType::BankCard
            | PiiType::Email
            | PiiType::Uscc
            | PiiType::CnPassport
            | PiiType::HkMacauPermit
            | PiiType::HkId
            | PiiType::TwId
            | PiiType::CnLicensePlate
    )
}

/// Field names for common Chinese headers (names must be `[a-z][a-z0-9_]*`).
const CN_HEADERS: &[(&str, &str)] = &[
    ("姓名", "full_name"),
    ("客户姓名", "full_name"),
    ("客户名称", "customer_name"),
    ("户名", "account_name"),
    ("身份证号", "id_no"),
    ("身份证号码", "id_no"),
    ("证件号码", "id_no"),
    ("手机", "mobile"),
    ("手机号", "mobile"),
    ("手机号码", "mobile"),
    ("电话", "phone"),
    ("联系电话", "phone"),
    ("银行卡号", "bank_card"),
    ("卡号", "card_no"),
    ("账号", "account_no"),
    ("邮箱", "email"),
    ("电子邮箱", "email"),
    ("地址", "address"),
    ("住址", "address"),
    ("联系地址", "address"),
    ("邮编", "postal_code"),
    ("性别", "gender"),
    ("年龄", "age"),
    ("出生日期", "date_of_birth"),
    ("生日", "date_of_birth"),
    ("统一社会信用代码", "uscc"),
    ("车牌号", "license_plate"),
    ("护照号", "passport_no"),
    ("密码", "password"),
    ("备注", "note"),
    ("金额", "amount"),
    ("余额", "balance"),
    ("日期", "date"),
    ("客户号", "customer_no"),
    ("客户编号", "customer_no"),
    ("网点", "branch"),
];

/// A valid field name for a column header.
fn field_name(header: &str, ty: Option<PiiType>, index: usize) -> String {
    let h = header.trim();
    if let Some((_, n)) = CN_HEADERS.iter().find(|(cn, _)| *cn == h) {
        return n.to_string();
    }
    let mut n = String::new();
    for c in h.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && !n.is_empty() && !n.ends_with('_') {
                // camelCase → snake_case
                n.push('_');
            }
            n.push(c.to_ascii_lowercase());
        } else if !n.is_empty() && !n.ends_with('_') {
            n.push('_');
        }
    }
    let n = n.trim_matches('_').to_string();
    let n: String = n.chars().take(60).collect();
    if n.starts_with(|c: char| c.is_ascii_lowercase()) {
        return n;
    }
    match ty {
        Some(PiiType::PersonName) => "full_name".into(),
        Some(PiiType::CnResidentId) => "id_no".into(),
        Some(t) => t.id().to_string(),
        None if !n.is_empty() => format!("f_{n}"),
        None => format!("field_{}", index + 1),
    }
}

/// A column counts as of a PII type when at least this share of its values matched.
const TYPE_SHARE: f64 = 0.5;

/// The proposed schema for `collection` from its columns, as commented TOML.
pub fn propose(collection: &str, source: &str, columns: &[ColumnReport]) -> String {
    let mut name: String = field_name(collection, None, 0)
        .trim_start_matches("f_")
        .to_string();
    if !custodia_core::is_valid_name(&name) {
        name = "proposed".into();
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Proposed by `custodia scan` from {} ({} column(s)). Review the types, levels and\n\
         # flags before loading it: `custodia collections put FILE`.",
        source.replace('\n', " "),
        columns.len()
    );
    let _ = writeln!(o, "name = {}", toml_str(&name));
    let _ = writeln!(
        o,
        "description = {}",
        toml_str(&format!("Proposed from {source}"))
    );
    let mut used = HashSet::new();
    for (i, c) in columns.iter().enumerate() {
        let ty = c.ty.filter(|_| c.share >= TYPE_SHARE);
        let mut f = field_name(&c.column, ty, i);
        if !used.insert(f.clone()) {
            let mut k = 2;
            while !used.insert(format!("{f}_{k}")) {
                k += 1;
            }
            f = format!("{f}_{k}");
        }
        let level = if c.level == Level::C3 {
            Level::C3
        } else {
            ty.map_or(Level::C1, crate::level_of)
        };
        let type_id = match (level, ty) {
            (Level::C3, _) => "string",
            (_, Some(t)) => t.id(),
            (_, None) => c.plain,
        };
        let searchable = level != Level::C3 && ty.is_some_and(identifier);
        let _ = writeln!(o, "\n[[fields]]");
        let why = match (c.ty, level) {
            (_, Level::C3) => {
                "authentication data by its name: stored only as a verifier".to_string()
            }
            (Some(t), _) => format!(
                "{:.0}% of {} sampled values matched {}",
                c.share * 100.0,
                c.sampled,
                t.id()
            ),
            (None, _) => format!("no personal data in {} sampled values", c.sampled),
        };
        let _ = writeln!(o, "# column {}: {why}", toml_str(&c.column));
        let _ = writeln!(o, "name = {}", toml_str(&f));
        let _ = writeln!(o, "type = {}", toml_str(type_id));
        let _ = writeln!(
            o,
            "level = \"{}\"",
            match level {
                Level::C1 => "C1",
                Level::C2 => "C2",
                Level::C3 => "C3",
            }
        );
        if c.always_present {
            let _ = writeln!(o, "required = true");
        }
        if searchable {
            let _ = writeln!(o, "searchable = true");
        }
        if c.column != f {
            let _ = writeln!(o, "description = {}", toml_str(&c.column));
        }
    }
    o
}

fn toml_str(s: &str) -> String {
    // A JSON string is a valid TOML basic string.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_headers() {
        assert_eq!(field_name("手机号码", None, 0), "mobile");
        assert_eq!(field_name("Customer Name", None, 0), "customer_name");
        assert_eq!(field_name("idNo", None, 0), "id_no");
        assert_eq!(field_name("证件", Some(PiiType::CnResidentId), 3), "id_no");
        assert_eq!(field_name("说明", None, 3), "field_4");
        assert_eq!(field_name("2nd phone", None, 0), "f_2nd_phone");
    }

    fn col(
        name: &str,
        ty: Option<PiiType>,
        share: f64,
        level: Level,
        plain: &'static str,
    ) -> ColumnReport {
        ColumnReport {
            table: "t".into(),
            column: name.into(),
            sampled: 10,
            ty,
            share,
            level,
            plain,
            always_present: true,
        }
    }

    #[test]
    fn proposals_parse_and_validate() {
        let cols = vec![
            col("姓名", Some(PiiType::PersonName), 1.0, Level::C2, "string"),
            col("mobile", Some(PiiType::CnMobile), 0.9, Level::C2, "integer"),
            col("mobile", Some(PiiType::CnMobile), 0.9, Level::C2, "integer"),
            col("note", Some(PiiType::CnMobile), 0.1, Level::C2, "string"),
            col("login_password", None, 0.0, Level::C3, "string"),
            col("balance", None, 0.0, Level::C1, "decimal"),
        ];
        let text = propose("Customer Export", "export.csv", &cols);
        let schema = custodia_core::CollectionSchema::from_toml(&text).expect("parses");
        schema.validate().expect("valid");
        assert_eq!(schema.name, "customer_export");
        let f = |n: &str| schema.field(n).unwrap_or_else(|| panic!("{n} in {text}"));
        assert!(f("full_name").searchable);
        assert!(f("mobile_2").searchable);
        assert_eq!(f("note").level, Level::C1);
        assert_eq!(f("login_password").level, Level::C3);
        assert!(!f("login_password").searchable);
        assert_eq!(f("balance").ty.id(), "decimal");
    }
}
