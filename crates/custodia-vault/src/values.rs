//! Turning a JSON field value into its canonical stored text and back, per field type.
//! Messages name the field and the rule, never the value.

use crate::error::VaultError;
use custodia_core::{FieldDef, FieldType};
use serde_json::Value;

const MAX_STRING_CHARS: usize = 4096;

/// Validates and normalizes one field value; returns the canonical text that is encrypted
/// (and, for searchable fields, blind-indexed).
pub fn canonical(def: &FieldDef, value: &Value) -> Result<String, VaultError> {
    let name = def.name.as_str();
    let need_string = || VaultError::invalid(name, format!("field '{name}' must be a string"));
    match def.ty {
        FieldType::Pii(t) => {
            let s = value.as_str().ok_or_else(need_string)?;
            custodia_detect::normalize(t, s).map_err(|e| {
                VaultError::invalid(name, format!("field '{name}' is not a valid {t}: {e}"))
            })
        }
        FieldType::String => {
            let s = value.as_str().ok_or_else(need_string)?;
            if s.chars().count() > MAX_STRING_CHARS {
                return Err(VaultError::invalid(
                    name,
                    format!("field '{name}' is longer than {MAX_STRING_CHARS} characters"),
                ));
            }
            if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(VaultError::invalid(
                    name,
                    format!("field '{name}' contains control characters"),
                ));
            }
            Ok(s.to_string())
        }
        FieldType::Integer => {
            let n = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            n.map(|n| n.to_string()).ok_or_else(|| {
                VaultError::invalid(name, format!("field '{name}' must be a 64-bit integer"))
            })
        }
        FieldType::Decimal => {
            let s = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => String::new(),
            };
            decimal(&s).ok_or_else(|| {
                VaultError::invalid(
                    name,
                    format!("field '{name}' must be a decimal number (at most 18 integer and 9 fraction digits)"),
                )
            })
        }
        FieldType::Date => {
            let s = value.as_str().ok_or_else(need_string)?;
            custodia_detect::validate::calendar_date(s)
                .map_err(|e| VaultError::invalid(name, format!("field '{name}': {e}")))
        }
        FieldType::Boolean => match value {
            Value::Bool(b) => Ok(b.to_string()),
            Value::String(s) if s == "true" || s == "false" => Ok(s.clone()),
            _ => Err(VaultError::invalid(
                name,
                format!("field '{name}' must be true or false"),
            )),
        },
        FieldType::Enum => {
            let s = value.as_str().ok_or_else(need_string)?;
            if def.values.iter().any(|v| v == s) {
                Ok(s.to_string())
            } else {
                Err(VaultError::invalid(
                    name,
                    format!("field '{name}' must be one of: {}", def.values.join(", ")),
                ))
            }
        }
    }
}

/// The JSON form of a stored canonical value.
pub fn to_json(def: &FieldDef, canonical: &str) -> Value {
    match def.ty {
        FieldType::Integer => canonical
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(canonical)),
        FieldType::Boolean => Value::Bool(canonical == "true"),
        _ => Value::from(canonical),
    }
}

fn decimal(s: &str) -> Option<String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 18 || frac.len() > 9 || !digits(int) || !digits(frac) {
        return None;
    }
    if body.ends_with('.') {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::with_capacity(s.len());
    if neg && (int != "0" || frac.bytes().any(|b| b != b'0')) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_core::Level;
    use serde_json::json;

    fn def(ty: &str) -> FieldDef {
        FieldDef {
            mask: Default::default(),
            name: "f".into(),
            ty: ty.parse().unwrap(),
            level: Level::C2,
            required: false,
            searchable: false,
            unique: false,
            values: if ty == "enum" {
                vec!["a".into(), "b".into()]
            } else {
                vec![]
            },
            description: None,
        }
    }

    #[test]
    fn plain_types_normalize() {
        assert_eq!(canonical(&def("integer"), &json!(42)).unwrap(), "42");
        assert_eq!(canonical(&def("integer"), &json!(" 7 ")).unwrap(), "7");
        assert!(canonical(&def("integer"), &json!(1.5)).is_err());
        assert_eq!(
            canonical(&def("decimal"), &json!("003.50")).unwrap(),
            "3.50"
        );
        assert_eq!(canonical(&def("decimal"), &json!(-0.0)).unwrap(), "0.0");
        assert!(canonical(&def("decimal"), &json!("1e5")).is_err());
        assert!(canonical(&def("decimal"), &json!("1.")).is_err());
        assert_eq!(
            canonical(&def("date"), &json!("2024-02-29")).unwrap(),
            "2024-02-29"
        );
        assert!(canonical(&def("date"), &json!("2023-02-29")).is_err());
        assert_eq!(canonical(&def("boolean"), &json!(true)).unwrap(), "true");
        assert!(canonical(&def("enum"), &json!("c")).is_err());
        assert!(canonical(&def("string"), &json!("a\u{0}b")).is_err());
        assert_eq!(to_json(&def("integer"), "42"), json!(42));
        assert_eq!(to_json(&def("boolean"), "false"), json!(false));
    }

    #[test]
    fn pii_errors_name_the_field_not_the_value() {
        let e = canonical(&def("cn_mobile"), &json!("15412345678")).unwrap_err();
        assert_eq!(e.field(), Some("f"));
        assert!(!e.to_string().contains("15412345678"));
        assert_eq!(
            canonical(&def("cn_mobile"), &json!("+86 138-1234-5678")).unwrap(),
            "13812345678"
        );
    }
}
