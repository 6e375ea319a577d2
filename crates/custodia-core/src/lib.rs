//! The vocabulary every other Custodia crate speaks: PII type ids, sensitivity levels
//! (JR/T 0171-2020 C1–C3), the collection schema and the plain record attributes used by
//! policy. Nothing here does I/O or crypto.
#![forbid(unsafe_code)]

pub mod schema;

pub use schema::{
    Attributes, CollectionSchema, FieldDef, FieldType, Level, MaskProfile, PiiType, SchemaError,
    Tier,
};

/// A field or collection name: lowercase ASCII letter first, then letters, digits or `_`,
/// at most 63 characters. Keeping names this tame lets them appear in AAD, SQL-free
/// index keys and metric labels without escaping.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}
