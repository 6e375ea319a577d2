//! Collection schemas: the fields of a customer record, their types and levels.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

/// The PII type ids of DESIGN.md, shared by the detector, the schema and masking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiType {
    PersonName,
    CnResidentId,
    CnMobile,
    CnLandline,
    BankCard,
    Email,
    Address,
    Uscc,
    Ipv4,
    Ipv6,
    CnPassport,
    HkMacauPermit,
    HkId,
    TwId,
    CnLicensePlate,
    PostalCode,
    DateOfBirth,
}

impl PiiType {
    pub const ALL: [PiiType; 17] = [
        PiiType::PersonName,
        PiiType::CnResidentId,
        PiiType::CnMobile,
        PiiType::CnLandline,
        PiiType::BankCard,
        PiiType::Email,
        PiiType::Address,
        PiiType::Uscc,
        PiiType::Ipv4,
        PiiType::Ipv6,
        PiiType::CnPassport,
        PiiType::HkMacauPermit,
        PiiType::HkId,
        PiiType::TwId,
        PiiType::CnLicensePlate,
        PiiType::PostalCode,
        PiiType::DateOfBirth,
    ];

    pub fn id(self) -> &'static str {
        match self {
            PiiType::PersonName => "person_name",
            PiiType::CnResidentId => "cn_resident_id",
            PiiType::CnMobile => "cn_mobile",
            PiiType::CnLandline => "cn_landline",
            PiiType::BankCard => "bank_card",
            PiiType::Email => "email",
            PiiType::Address => "address",
            PiiType::Uscc => "uscc",
            PiiType::Ipv4 => "ipv4",
            PiiType::Ipv6 => "ipv6",
            PiiType::CnPassport => "cn_passport",
            PiiType::HkMacauPermit => "hk_macau_permit",
            PiiType::HkId => "hk_id",
            PiiType::TwId => "tw_id",
            PiiType::CnLicensePlate => "cn_license_plate",
            PiiType::PostalCode => "postal_code",
            PiiType::DateOfBirth => "date_of_birth",
        }
    }

    pub fn from_id(id: &str) -> Option<PiiType> {
        PiiType::ALL.into_iter().find(|t| t.id() == id)
    }
}

impl fmt::Display for PiiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Sensitivity level per JR/T 0171-2020.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Level {
    /// Internal data.
    C1,
    /// Identifying data: ID numbers, mobile, card numbers, address, name.
    C2,
    /// Authentication data: stored only as a verifier, never returned.
    C3,
}

impl Level {
    /// The JR/T 0197-2020 level this maps to (C3→4, C2→3, C1→2).
    pub fn jrt0197(self) -> u8 {
        match self {
            Level::C1 => 2,
            Level::C2 => 3,
            Level::C3 => 4,
        }
    }
}

/// A field's type: a PII type (validated and normalized by `custodia-detect`) or a plain one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    Pii(PiiType),
    String,
    Integer,
    Decimal,
    Date,
    Boolean,
    Enum,
}

impl FieldType {
    pub fn id(self) -> &'static str {
        match self {
            FieldType::Pii(t) => t.id(),
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Date => "date",
            FieldType::Boolean => "boolean",
            FieldType::Enum => "enum",
        }
    }
}

impl FromStr for FieldType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "string" => FieldType::String,
            "integer" => FieldType::Integer,
            "decimal" => FieldType::Decimal,
            "date" => FieldType::Date,
            "boolean" => FieldType::Boolean,
            "enum" => FieldType::Enum,
            other => FieldType::Pii(PiiType::from_id(other).ok_or_else(|| {
                format!("unknown field type '{other}': expected a PII type id or string|integer|decimal|date|boolean|enum")
            })?),
        })
    }
}

impl Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for FieldType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut names: Vec<&str> = PiiType::ALL.iter().map(|t| t.id()).collect();
        names.extend(["string", "integer", "decimal", "date", "boolean", "enum"]);
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(names))
            .into()
    }
}
impl ToSchema for FieldType {}

/// One field of a collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub level: Level,
    #[serde(default)]
    pub required: bool,
    /// Keep a blind index so the field can be found by exact value.
    #[serde(default)]
    pub searchable: bool,
    /// At most one record per value (enforced through the blind index).
    #[serde(default)]
    pub unique: bool,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How the field looks to a reader allowed only its masked view (default: by type).
    #[serde(default, skip_serializing_if = "MaskProfile::is_default")]
    pub mask: MaskProfile,
}

/// Display-mask profiles a field can choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskProfile {
    /// The type's own mask (DESIGN.md: surname kept, mobile 3+4, card 6+4, id 6+4, …).
    #[default]
    Default,
    /// First and last two characters kept.
    Generic,
    /// Only the last four characters kept.
    Last4,
    /// Nothing kept: one `*` per character.
    Full,
}

impl MaskProfile {
    pub fn is_default(&self) -> bool {
        *self == MaskProfile::Default
    }
}

/// A collection of customer records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionSchema {
    /// Optional in an API body (the path names the collection); required in a TOML file.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schema(min_items = 1, max_items = 128)]
    pub fields: Vec<FieldDef>,
}

/// A schema problem, naming where it is. Schemas hold no personal data, so messages may
/// quote names from the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchemaError {
    pub field: String,
    pub message: String,
}

fn schema_err(field: impl Into<String>, message: impl Into<String>) -> SchemaError {
    SchemaError {
        field: field.into(),
        message: message.into(),
    }
}

pub const MAX_FIELDS: usize = 128;

impl CollectionSchema {
    pub fn from_toml(text: &str) -> Result<Self, SchemaError> {
        toml::from_str(text).map_err(|e| schema_err("schema", e.to_string()))
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks the schema on its own.
    pub fn validate(&self) -> Result<(), SchemaError> {
        if !crate::is_valid_name(&self.name) {
            return Err(schema_err(
                "name",
                "collection name must match [a-z][a-z0-9_]{0,62}",
            ));
        }
        if self.fields.is_empty() {
            return Err(schema_err(
                "fields",
                "a collection needs at least one field",
            ));
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(schema_err(
                "fields",
                format!("at most {MAX_FIELDS} fields per collection"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            let at = |m: &str| schema_err(f.name.clone(), m.to_string());
            if !crate::is_valid_name(&f.name) {
                return Err(schema_err(
                    "fields.name",
                    "field names must match [a-z][a-z0-9_]{0,62}",
                ));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(at("field name declared twice"));
            }
            if f.ty == FieldType::Enum && f.values.is_empty() {
                return Err(at("an enum field needs a non-empty 'values' list"));
            }
            if f.ty != FieldType::Enum && !f.values.is_empty() {
                return Err(at("'values' is only for enum fields"));
            }
            if f.level == Level::C3 && (f.searchable || f.unique) {
                return Err(at(
                    "C3 fields are stored only as verifiers and cannot be searchable or unique",
                ));
            }
            if f.unique && !f.searchable {
                return Err(at("a unique field must also be searchable"));
            }
        }
        Ok(())
    }

    /// Checks that `next` can replace `self` over existing records: fields may be added
    /// and their `required`/description changed; an existing field keeps its type, level,
    /// searchable and unique flags (changing those would need a re-encryption or re-index
    /// of every record, which is not offered yet).
    pub fn check_evolution(&self, next: &CollectionSchema) -> Result<(), SchemaError> {
        for old in &self.fields {
            let Some(new) = next.field(&old.name) else {
                return Err(schema_err(
                    old.name.clone(),
                    "an existing field cannot be removed",
                ));
            };
            if new.ty != old.ty
                || new.level != old.level
                || new.searchable != old.searchable
                || new.unique != old.unique
            {
                return Err(schema_err(
                    old.name.clone(),
                    "an existing field's type, level, searchable and unique flags cannot change",
                ));
            }
            if new.required && !old.required {
                return Err(schema_err(
                    old.name.clone(),
                    "an existing optional field cannot become required",
                ));
            }
        }
        for new in &next.fields {
            if new.required && self.field(&new.name).is_none() {
                return Err(schema_err(
                    new.name.clone(),
                    "a field added to an existing collection cannot be required",
                ));
            }
        }
        Ok(())
    }
}

/// The customer's value class, used by policy.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    #[default]
    Standard,
    High,
    Vip,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::High => "high",
            Tier::Vip => "vip",
        }
    }
}

impl FromStr for Tier {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "standard" => Ok(Tier::Standard),
            "high" => Ok(Tier::High),
            "vip" => Ok(Tier::Vip),
            _ => Err(()),
        }
    }
}

/// Plain, unencrypted record attributes read by policy. They must not hold personal data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    #[serde(default)]
    pub tier: Tier,
    /// Org unit that owns the customer relationship, e.g. `BJ-001`.
    #[serde(default)]
    pub branch: String,
}

impl Attributes {
    /// A branch (org unit) id, on records and on users alike: at most 64 characters of
    /// A-Z, a-z, 0-9, '-' or '_' (empty: none).
    pub fn is_valid_branch(branch: &str) -> bool {
        branch.len() <= 64
            && branch
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    }

    pub fn validate(&self) -> Result<(), SchemaError> {
        if Self::is_valid_branch(&self.branch) {
            Ok(())
        } else {
            Err(schema_err(
                "attributes.branch",
                "branch must be at most 64 characters of A-Z, a-z, 0-9, '-' or '_'",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, ty: &str, level: Level) -> FieldDef {
        FieldDef {
            mask: MaskProfile::Default,
            name: name.into(),
            ty: ty.parse().unwrap(),
            level,
            required: false,
            searchable: false,
            unique: false,
            values: vec![],
            description: None,
        }
    }

    #[test]
    fn field_type_ids_round_trip() {
        for t in PiiType::ALL {
            assert_eq!(t.id().parse::<FieldType>().unwrap(), FieldType::Pii(t));
        }
        assert_eq!("decimal".parse::<FieldType>().unwrap(), FieldType::Decimal);
        assert!("credit_score".parse::<FieldType>().is_err());
    }

    #[test]
    fn validate_refuses_searchable_c3_and_bad_names() {
        let mut s = CollectionSchema {
            name: "customers".into(),
            description: None,
            fields: vec![field("pin", "string", Level::C3)],
        };
        assert!(s.validate().is_ok());
        s.fields[0].searchable = true;
        assert_eq!(s.validate().unwrap_err().field, "pin");
        s.fields[0].searchable = false;
        s.name = "Customers".into();
        assert_eq!(s.validate().unwrap_err().field, "name");
    }

    #[test]
    fn evolution_allows_adding_optional_fields_only() {
        let old = CollectionSchema {
            name: "c".into(),
            description: None,
            fields: vec![field("mobile", "cn_mobile", Level::C2)],
        };
        let mut next = old.clone();
        next.fields.push(field("email", "email", Level::C2));
        assert!(old.check_evolution(&next).is_ok());
        next.fields[1].required = true;
        assert_eq!(old.check_evolution(&next).unwrap_err().field, "email");
        let mut changed = old.clone();
        changed.fields[0].level = Level::C1;
        assert_eq!(old.check_evolution(&changed).unwrap_err().field, "mobile");
        let removed = CollectionSchema {
            fields: vec![field("x", "string", Level::C1)],
            ..old.clone()
        };
        assert_eq!(old.check_evolution(&removed).unwrap_err().field, "mobile");
    }

    #[test]
    fn attributes_branch_is_checked() {
        let a = Attributes {
            tier: Tier::Vip,
            branch: "BJ-001".into(),
        };
        assert!(a.validate().is_ok());
        let bad = Attributes {
            tier: Tier::Vip,
            branch: "北京".into(),
        };
        assert_eq!(bad.validate().unwrap_err().field, "attributes.branch");
        assert!(Tier::Vip > Tier::High && Tier::High > Tier::Standard);
    }
}
