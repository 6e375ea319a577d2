//! A file being written, with the byte spans of what was planted in it.
//!
//! Offsets are taken from the buffer's length at the moment a value is appended, so they
//! are byte offsets of the file exactly as written, whatever the width of the characters
//! before them (CJK and full-width digits are three bytes in UTF-8).

use custodia_core::PiiType;
use custodia_detect::{mask, normalize};

/// The digit-shaped types a hard negative must never validate as. Postal codes and dates
/// of birth are left out: any six digits not starting with 9, or any past date, validate,
/// so those two types are decided by context words, never by shape alone.
pub(crate) const STRICT_TYPES: [PiiType; 11] = [
    PiiType::CnResidentId,
    PiiType::CnMobile,
    PiiType::CnLandline,
    PiiType::BankCard,
    PiiType::Uscc,
    PiiType::Email,
    PiiType::Ipv4,
    PiiType::Ipv6,
    PiiType::CnPassport,
    PiiType::CnLicensePlate,
    PiiType::HkId,
];

/// Whether `s` validates as none of [`STRICT_TYPES`].
pub(crate) fn validates_as_nothing(s: &str) -> bool {
    STRICT_TYPES.iter().all(|&ty| normalize(ty, s).is_err())
}

/// Whether `s`, a valid value of `ty`, also validates as another strict type, other than
/// an all-digit resident id or USCC passing the Luhn check (see `values`).
pub(crate) fn is_ambiguous(ty: PiiType, s: &str) -> bool {
    STRICT_TYPES.iter().any(|&other| {
        let tolerated =
            other == PiiType::BankCard && matches!(ty, PiiType::CnResidentId | PiiType::Uscc);
        other != ty && !tolerated && normalize(other, s).is_ok()
    })
}

pub(crate) struct Doc {
    pub buf: String,
    pub truth: Vec<(usize, usize, PiiType)>,
    pub negatives: Vec<(usize, usize, &'static str)>,
}

impl Doc {
    pub fn new(capacity: usize) -> Doc {
        Doc {
            buf: String::with_capacity(capacity),
            truth: Vec::new(),
            negatives: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Plain text, neither planted value nor recorded negative.
    pub fn s(&mut self, text: &str) -> &mut Doc {
        self.buf.push_str(text);
        self
    }

    /// A planted value of type `ty` written as `surface`. Panics (showing only the
    /// masked value) if `surface` does not pass the type's validator: a corpus whose
    /// truth holds invalid values would score a correct detector as wrong.
    pub fn pii(&mut self, ty: PiiType, surface: &str) -> &mut Doc {
        if let Err(e) = normalize(ty, surface) {
            panic!(
                "planted {ty} does not validate ({e}): {}",
                mask(ty, &custodia_detect::fold_width(surface))
            );
        }
        assert!(
            !is_ambiguous(ty, surface),
            "planted {ty} also validates as another type"
        );
        let start = self.buf.len();
        self.buf.push_str(surface);
        self.truth.push((start, self.buf.len(), ty));
        self
    }

    /// A hard negative of the given kind: something a detector must not report. Panics
    /// if the whole token validates as any strict type.
    pub fn neg(&mut self, kind: &'static str, token: &str) -> &mut Doc {
        assert!(
            validates_as_nothing(token),
            "hard negative of kind {kind} validates as a PII type"
        );
        let start = self.buf.len();
        self.buf.push_str(token);
        self.negatives.push((start, self.buf.len(), kind));
        self
    }
}
