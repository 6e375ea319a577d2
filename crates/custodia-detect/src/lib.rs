//! What Chinese personal data looks like: validators, display masks and synthetic data.
//!
//! The vault stores one canonical form per value so that blind indexes and `unique`
//! constraints match however an operator typed it (full-width digits, `+86`, dashes), and
//! refuses malformed values at write time, when a typo is cheap to fix. Masks decide what
//! a reader without clear access may still see. Everything here is a pure function on
//! `&str`: no I/O, so the vault, the scanner and the benchmarks share exactly one notion of
//! "a valid mobile number". Errors carry only a static reason, never the refused value, so
//! nothing in this crate can leak personal data through an error message or a log line.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

pub use custodia_core::PiiType;

mod civil;
pub use civil::{format_timestamp, parse_timestamp};
pub mod find;
pub mod mask;
pub mod synth;
pub mod validate;

/// Why a value was refused. The message never contains the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Invalid {}

/// Validate `raw` as a value of type `ty` and return its canonical (normalized) form.
/// The canonical form is what gets stored and what blind indexes are computed on, so the
/// same value written in any surface form must give the same canonical string.
pub fn normalize(ty: PiiType, raw: &str) -> Result<String, Invalid> {
    use validate as v;
    match ty {
        PiiType::PersonName => v::person_name(raw),
        PiiType::CnResidentId => v::resident_id(raw),
        PiiType::CnMobile => v::mobile(raw),
        PiiType::CnLandline => v::landline(raw),
        PiiType::BankCard => v::bank_card(raw),
        PiiType::Email => v::email(raw),
        PiiType::Address => v::address(raw),
        PiiType::Uscc => v::uscc(raw),
        PiiType::Ipv4 => v::ipv4(raw),
        PiiType::Ipv6 => v::ipv6(raw),
        PiiType::CnPassport => v::passport(raw),
        PiiType::HkMacauPermit => v::hk_macau_permit(raw),
        PiiType::HkId => v::hk_id(raw),
        PiiType::TwId => v::tw_id(raw),
        PiiType::CnLicensePlate => v::license_plate(raw),
        PiiType::PostalCode => v::postal_code(raw),
        PiiType::DateOfBirth => v::date_of_birth(raw),
    }
}

/// The masked view of a stored value under a field's mask profile. Values of plain
/// (non-PII) types get the generic mask under the default profile.
pub fn mask_field(
    profile: custodia_core::MaskProfile,
    ty: custodia_core::FieldType,
    canonical: &str,
) -> String {
    use custodia_core::{FieldType, MaskProfile};
    match (profile, ty) {
        (MaskProfile::Default, FieldType::Pii(t)) => mask(t, canonical),
        (MaskProfile::Default | MaskProfile::Generic, _) => mask::generic(canonical),
        (MaskProfile::Last4, _) => {
            let n = canonical.chars().count();
            if n <= 4 {
                mask::generic(canonical)
            } else {
                canonical
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i + 4 >= n { c } else { '*' })
                    .collect()
            }
        }
        (MaskProfile::Full, _) => canonical.chars().map(|_| '*').collect(),
    }
}

/// The default display mask (DESIGN.md) of an already-canonical value.
///
/// Never panics, whatever the input; a value not in canonical shape gets the generic mask
/// (first and last characters kept), and a non-empty input always comes back with at
/// least one `*`.
pub fn mask(ty: PiiType, canonical: &str) -> String {
    use mask as m;
    match ty {
        PiiType::PersonName => m::person_name(canonical),
        PiiType::CnResidentId => m::resident_id(canonical),
        PiiType::CnMobile => m::mobile(canonical),
        PiiType::CnLandline => m::landline(canonical),
        PiiType::BankCard => m::bank_card(canonical),
        PiiType::Email => m::email(canonical),
        PiiType::Address => m::address(canonical),
        PiiType::Uscc => m::uscc(canonical),
        PiiType::Ipv4 => m::ipv4(canonical),
        PiiType::Ipv6 => m::ipv6(canonical),
        PiiType::DateOfBirth => m::date_of_birth(canonical),
        PiiType::PostalCode => m::postal_code(canonical),
        PiiType::CnPassport
        | PiiType::HkMacauPermit
        | PiiType::HkId
        | PiiType::TwId
        | PiiType::CnLicensePlate => m::generic(canonical),
    }
}

/// Full-width ASCII (U+FF01..U+FF5E) to half-width, U+3000 ideographic space to ' '.
///
/// Chinese input methods produce full-width digits and punctuation as readily as ASCII,
/// so every validator folds first. Borrows when there is nothing to fold.
pub fn fold_width(s: &str) -> Cow<'_, str> {
    // By bytes: U+FF01..U+FF5E is EF BC 81..BF or EF BD 80..9E, U+3000 is E3 80 80 (a
    // decode of every character cost more than the rest of some validators).
    let b = s.as_bytes();
    let wide_at = |p: usize| {
        matches!(
            (b[p], b.get(p + 1), b.get(p + 2)),
            (0xEF, Some(0xBC), Some(0x81..=0xBF))
                | (0xEF, Some(0xBD), Some(0x80..=0x9E))
                | (0xE3, Some(0x80), Some(0x80))
        )
    };
    // (Values are short: a plain loop beats setting up `memchr` for each.)
    if s.is_ascii() || !(0..b.len()).any(|p| matches!(b[p], 0xEF | 0xE3) && wide_at(p)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| match c {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One valid surface form per type and its canonical form.
    const SAMPLES: [(PiiType, &str, &str); 17] = [
        (PiiType::PersonName, "  张  小明 ", "张 小明"),
        (
            PiiType::CnResidentId,
            "110105 19491231 002x",
            "11010519491231002X",
        ),
        (PiiType::CnMobile, "+86 138-1234-5678", "13812345678"),
        (PiiType::CnLandline, "(010) 1234 5678", "010-12345678"),
        (PiiType::BankCard, "4111 1111 1111 1111", "4111111111111111"),
        (
            PiiType::Email,
            " Zhang.San@Example.COM ",
            "zhang.san@example.com",
        ),
        (
            PiiType::Address,
            "北京市朝阳区  建国路88号",
            "北京市朝阳区 建国路88号",
        ),
        (PiiType::Uscc, "91350100m000100y43", "91350100M000100Y43"),
        (PiiType::Ipv4, "１９２．１６８．１．１", "192.168.1.1"),
        (PiiType::Ipv6, "2001:0DB8:0:0:0:0:0:1", "2001:db8::1"),
        (PiiType::CnPassport, "ea1234567", "EA1234567"),
        (PiiType::HkMacauPermit, "c12345678", "C12345678"),
        (PiiType::HkId, "A123456(3)", "A1234563"),
        (PiiType::TwId, "a123456789", "A123456789"),
        (PiiType::CnLicensePlate, "粤b·12345", "粤B12345"),
        (PiiType::PostalCode, " 100020 ", "100020"),
        (PiiType::DateOfBirth, "1990/1/5", "1990-01-05"),
    ];

    #[test]
    fn normalize_dispatches_every_type_and_is_idempotent() {
        let covered: BTreeSet<PiiType> = SAMPLES.iter().map(|s| s.0).collect();
        assert_eq!(
            covered.len(),
            PiiType::ALL.len(),
            "a PII type has no sample"
        );
        for (ty, raw, canonical) in SAMPLES {
            assert_eq!(normalize(ty, raw).as_deref(), Ok(canonical), "{ty}");
            assert_eq!(normalize(ty, canonical).as_deref(), Ok(canonical), "{ty}");
        }
    }

    #[test]
    fn normalize_checks_the_type_it_is_given() {
        // A valid mobile number is not a valid value of the other digit-string types.
        for ty in [
            PiiType::CnResidentId,
            PiiType::BankCard,
            PiiType::CnLandline,
            PiiType::PostalCode,
            PiiType::Uscc,
        ] {
            assert!(normalize(ty, "13812345678").is_err(), "{ty}");
        }
    }

    #[test]
    fn mask_dispatches_every_type_and_hides_something() {
        for (ty, _, canonical) in SAMPLES {
            let masked = mask(ty, canonical);
            assert!(masked.contains('*'), "{ty}");
            assert_ne!(masked, canonical, "{ty}");
        }
    }

    #[test]
    fn fold_width_folds_full_width_ascii_and_ideographic_space() {
        assert_eq!(fold_width("ＡＢＣ１２３　！～＋（）"), "ABC123 !~+()");
        assert_eq!(fold_width("张三１３８"), "张三138");
        assert!(matches!(fold_width("plain ascii"), Cow::Borrowed(_)));
        assert!(matches!(fold_width("张三"), Cow::Borrowed(_)));
        assert!(matches!(fold_width("张　三"), Cow::Owned(_)));
        // Just outside the folded range stays as it is.
        assert_eq!(fold_width("\u{FF00}\u{FF5F}"), "\u{FF00}\u{FF5F}");
    }

    #[test]
    fn invalid_displays_its_reason() {
        let err = Invalid("mobile number must have 11 digits");
        assert_eq!(err.to_string(), "mobile number must have 11 digits");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert_eq!(boxed.to_string(), "mobile number must have 11 digits");
    }

    #[test]
    fn normalize_and_mask_never_panic_on_odd_input() {
        let long = "9".repeat(10_000);
        let odd = [
            "",
            " ",
            "a",
            "😀😀",
            "\u{0}",
            "张",
            "+",
            "(",
            ")",
            "()",
            "-",
            "@",
            "@@",
            ".",
            ":",
            "::",
            "１",
            "年月日",
            "1990年",
            "京",
            "京·",
            "A(",
            "A123456(",
            "(3)",
            "\u{3000}",
            "\u{FF5E}",
            "e\u{301}",
            "区区区",
            long.as_str(),
        ];
        for ty in PiiType::ALL {
            for s in odd {
                let _ = normalize(ty, s);
                let masked = mask(ty, s);
                if !s.is_empty() {
                    assert!(masked.contains('*'), "{ty} mask revealed an odd input");
                }
            }
        }
    }
}

#[cfg(test)]
mod mask_profile_tests {
    use super::*;
    use custodia_core::{FieldType, MaskProfile};

    #[test]
    fn profiles_hide_what_they_promise() {
        let mobile = FieldType::Pii(PiiType::CnMobile);
        assert_eq!(
            mask_field(MaskProfile::Default, mobile, "13812345678"),
            "138****5678"
        );
        assert_eq!(
            mask_field(MaskProfile::Last4, mobile, "13812345678"),
            "*******5678"
        );
        assert_eq!(mask_field(MaskProfile::Full, mobile, "138"), "***");
        assert_eq!(
            mask_field(MaskProfile::Generic, mobile, "13812345678"),
            "13*******78"
        );
        assert_eq!(
            mask_field(MaskProfile::Default, FieldType::String, "gold"),
            "g**d"
        );
        assert_eq!(
            mask_field(MaskProfile::Last4, FieldType::String, "abc"),
            "a*c"
        );
    }
}
