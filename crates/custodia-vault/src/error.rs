//! The vault's errors. Each maps to one API error code; none carries a personal value.

use custodia_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("field '{field}' is not in the collection schema")]
    UnknownField { field: String },
    #[error("required field '{field}' is missing")]
    MissingField { field: String },
    #[error("field '{field}' is not searchable")]
    NotSearchable { field: String },
    #[error("{message}")]
    InvalidSchema { field: String, message: String },
    #[error("{message}")]
    SchemaConflict { field: String, message: String },
    #[error("collection '{0}' does not exist")]
    CollectionNotFound(String),
    #[error("record not found")]
    RecordNotFound,
    #[error("record was changed by someone else: current version is {current}")]
    VersionMismatch { current: i64 },
    #[error("another record already has this value in unique field '{field}'")]
    Duplicate { field: String },
    /// A ciphertext failed authentication: altered, or copied from another record or field.
    #[error("field '{field}' failed its integrity check: the ciphertext was altered or does not belong to this record")]
    Integrity { field: String },
    /// The record's data key was destroyed (crypto-shredded); its data can never be read.
    #[error("record was deleted and its data key destroyed")]
    Shredded,
    #[error("the vault is already initialized")]
    AlreadyInitialized,
    #[error("the vault is not initialized: run `custodia init`")]
    NotInitialized,
    #[error("wrong passphrase or damaged sealed root key")]
    BadPassphrase,
    #[error("key material is damaged: {0}")]
    KeyDamaged(String),
    #[error("storage error: {0}")]
    Store(StoreError),
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique { field } => VaultError::Duplicate { field },
            other => VaultError::Store(other),
        }
    }
}

impl VaultError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> VaultError {
        VaultError::InvalidField {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::InvalidField { .. } => "invalid_field",
            VaultError::UnknownField { .. } => "unknown_field",
            VaultError::MissingField { .. } => "missing_field",
            VaultError::NotSearchable { .. } => "not_searchable",
            VaultError::InvalidSchema { .. } => "invalid_schema",
            VaultError::SchemaConflict { .. } => "schema_conflict",
            VaultError::CollectionNotFound(_) => "collection_not_found",
            VaultError::RecordNotFound => "record_not_found",
            VaultError::VersionMismatch { .. } => "version_mismatch",
            VaultError::Duplicate { .. } => "duplicate_value",
            VaultError::Integrity { .. } => "integrity_error",
            VaultError::Shredded => "record_shredded",
            VaultError::AlreadyInitialized => "already_initialized",
            VaultError::NotInitialized => "not_initialized",
            VaultError::BadPassphrase => "bad_passphrase",
            VaultError::KeyDamaged(_) => "key_damaged",
            VaultError::Store(_) => "storage_error",
        }
    }

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            VaultError::InvalidField { field, .. }
            | VaultError::UnknownField { field }
            | VaultError::MissingField { field }
            | VaultError::NotSearchable { field }
            | VaultError::InvalidSchema { field, .. }
            | VaultError::SchemaConflict { field, .. }
            | VaultError::Duplicate { field }
            | VaultError::Integrity { field } => Some(field),
            _ => None,
        }
    }
}
