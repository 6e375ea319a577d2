//! Custodia's use-cases: what happens when a customer record is written, read, searched,
//! changed or destroyed. The vault validates with `custodia-detect`, encrypts with
//! `custodia-crypto` and persists through a `custodia-store` backend; it never hands a
//! plaintext personal value to the store.
#![forbid(unsafe_code)]

mod error;
pub mod keyring;
pub mod stored;
pub mod values;

pub use custodia_core::{Attributes, CollectionSchema, FieldDef, Level, Tier};
pub use custodia_crypto::Suite;
pub use custodia_store::NewRecord;
pub use error::VaultError;
pub use keyring::Keyring;

use custodia_crypto::{aad, Aead, SealedRoot};
use custodia_store::{
    now_unix, IndexEntry, RecordRow, RecordUpdate, Store, TokenRow, UpdateOutcome,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, VaultError>;

/// How long a node trusts a cached schema before re-reading it (other nodes may change it).
const SCHEMA_REFRESH: Duration = Duration::from_secs(5);
/// Upper bound on search results.
pub const MAX_SEARCH_LIMIT: i64 = 100;
pub const DEFAULT_SEARCH_LIMIT: i64 = 20;

/// A record as written by a client.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RecordInput {
    pub fields: Map<String, Value>,
    #[serde(default)]
    pub attributes: Attributes,
}

/// A change to a record: fields set to `null` are removed; attributes given replace the old.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RecordPatch {
    #[serde(default)]
    pub fields: Map<String, Value>,
    #[serde(default)]
    pub attributes: Option<AttributesPatch>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesPatch {
    pub tier: Option<Tier>,
    pub branch: Option<String>,
}

/// A record's canonical field values, validated (name, value).
#[derive(Clone, Debug)]
pub struct Validated {
    pub values: Vec<(String, String)>,
    pub attributes: Attributes,
}

/// A decrypted record. C3 fields are never part of it.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub id: String,
    pub version: i64,
    pub attributes: Attributes,
    pub fields: Map<String, Value>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub version: i64,
}

struct CachedSchema {
    schema: Arc<CollectionSchema>,
    version: i64,
    loaded_at: Instant,
}

pub struct Vault {
    store: Arc<dyn Store>,
    keys: Keyring,
    schemas: RwLock<HashMap<String, CachedSchema>>,
    tokens: RwLock<HashMap<String, TokenRow>>,
}

const META_SEALED_ROOT: &str = "sealed_root";

impl Vault {
    /// Creates the root key, seals it under the passphrase and stores it. Fails if the
    /// database already holds a vault.
    pub async fn init(
        store: Arc<dyn Store>,
        suite: Suite,
        passphrase: &[u8],
        dev: bool,
    ) -> Result<Vault> {
        if store.get_meta(META_SEALED_ROOT).await?.is_some() {
            return Err(VaultError::AlreadyInitialized);
        }
        let root = suite.generate_key();
        let sealed =
            custodia_crypto::seal_root(suite, passphrase, &root, custodia_crypto::root_params(dev))
                .map_err(|e| VaultError::KeyDamaged(e.to_string()))?;
        let json = serde_json::to_string(&sealed).expect("sealed root serializes");
        if !store.insert_meta(META_SEALED_ROOT, &json).await? {
            return Err(VaultError::AlreadyInitialized);
        }
        Ok(Vault::with_root(store, suite, root))
    }

    /// Opens an initialized vault by unsealing its root key.
    pub async fn open(store: Arc<dyn Store>, passphrase: &[u8]) -> Result<Vault> {
        let json = store
            .get_meta(META_SEALED_ROOT)
            .await?
            .ok_or(VaultError::NotInitialized)?;
        let sealed: SealedRoot = serde_json::from_str(&json)
            .map_err(|_| VaultError::KeyDamaged("sealed root record".into()))?;
        let root = custodia_crypto::unseal_root(&sealed, passphrase).map_err(|e| match e {
            custodia_crypto::CryptoError::Passphrase => VaultError::BadPassphrase,
            other => VaultError::KeyDamaged(other.to_string()),
        })?;
        Ok(Vault::with_root(store, sealed.suite, root))
    }

    fn with_root(store: Arc<dyn Store>, suite: Suite, root: custodia_crypto::Key) -> Vault {
        Vault {
            store,
            keys: Keyring::new(suite, root),
            schemas: RwLock::new(HashMap::new()),
            tokens: RwLock::new(HashMap::new()),
        }
    }

    pub fn suite(&self) -> Suite {
        self.keys.suite
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Seals a service secret (a TOTP seed) under a key derived from the root key, bound
    /// to `label` so a sealed secret cannot be moved to another account.
    pub fn seal_secret(&self, label: &str, secret: &[u8]) -> String {
        self.keys.seal_secret(label, secret)
    }

    pub fn open_secret(&self, label: &str, sealed: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        self.keys.open_secret(label, sealed)
    }

    /// Record ids of a collection in id order, for principals granted `list`.
    pub async fn list_ids(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>> {
        self.collection(collection).await?;
        Ok(self.store.list_record_ids(collection, after, limit).await?)
    }

    /// A record's version and plain attributes, without decrypting anything.
    pub async fn attributes(&self, collection: &str, id: &str) -> Result<(i64, Attributes)> {
        self.collection(collection).await?;
        let (row, _) = self
            .store
            .get_record(collection, id)
            .await?
            .ok_or(VaultError::RecordNotFound)?;
        Ok((row.version, Self::attributes_of(&row)))
    }

    /// Schema and its version, then the record: for callers that decide per field.
    pub async fn get_with_schema(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<(Arc<CollectionSchema>, i64, Record)> {
        let (schema, version) = self.collection(collection).await?;
        let rec = self.get(collection, id).await?;
        Ok((schema, version, rec))
    }

    // ----- bearer tokens -------------------------------------------------------------

    /// Creates a random bearer token; only its hash is stored. The token is returned once.
    pub async fn create_token(&self, name: &str, role: &str) -> Result<String> {
        let token = custodia_crypto::random_token();
        self.install_token(&token, name, role).await?;
        Ok(token)
    }

    /// Stores the hash of a token chosen by the operator (e.g. `CUSTODIA_ADMIN_TOKEN`).
    pub async fn install_token(&self, token: &str, name: &str, role: &str) -> Result<()> {
        let hash = custodia_crypto::token_hash(token);
        if self.store.find_token(&hash).await?.is_none() {
            self.store.insert_token(&hash, name, role).await?;
        }
        Ok(())
    }

    /// The principal a bearer token belongs to. Lookup is by SHA-256 of the token, so the
    /// comparison never touches the secret itself.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenRow>> {
        let hash = custodia_crypto::token_hash(token);
        if let Some(t) = self.tokens.read().expect("token cache").get(&hash) {
            return Ok(Some(t.clone()));
        }
        let found = self.store.find_token(&hash).await?;
        if let Some(t) = &found {
            self.tokens
                .write()
                .expect("token cache")
                .insert(hash, t.clone());
        }
        Ok(found)
    }

    // ----- collections ---------------------------------------------------------------

    /// Creates or evolves a collection. Returns the schema version and whether it was new.
    pub async fn put_collection(&self, schema: CollectionSchema) -> Result<(i64, bool)> {
        schema.validate().map_err(|e| VaultError::InvalidSchema {
            field: e.field,
            message: e.message,
        })?;
        let json = serde_json::to_string(&schema).expect("schema serializes");
        let existing = self.store.get_collection(&schema.name).await?;
        let (version, created) = match existing {
            None => match self.store.put_collection(&schema.name, &json, None).await? {
                Some(v) => (v, true),
                None => return Err(schema_race(&schema.name)),
            },
            Some((old_json, old_version)) => {
                let old: CollectionSchema = serde_json::from_str(&old_json)
                    .map_err(|_| VaultError::KeyDamaged("stored schema".into()))?;
                old.check_evolution(&schema)
                    .map_err(|e| VaultError::SchemaConflict {
                        field: e.field,
                        message: e.message,
                    })?;
                match self
                    .store
                    .put_collection(&schema.name, &json, Some(old_version))
                    .await?
                {
                    Some(v) => (v, false),
                    None => return Err(schema_race(&schema.name)),
                }
            }
        };
        self.keys
            .current_kek(self.store.as_ref(), &schema.name)
            .await?;
        self.schemas.write().expect("schema cache").insert(
            schema.name.clone(),
            CachedSchema {
                schema: Arc::new(schema),
                version,
                loaded_at: Instant::now(),
            },
        );
        Ok((version, created))
    }

    /// The schema of a collection and its version.
    pub async fn collection(&self, name: &str) -> Result<(Arc<CollectionSchema>, i64)> {
        if let Some(c) = self.schemas.read().expect("schema cache").get(name) {
            if c.loaded_at.elapsed() < SCHEMA_REFRESH {
                return Ok((c.schema.clone(), c.version));
            }
        }
        let (json, version) = self
            .store
            .get_collection(name)
            .await?
            .ok_or_else(|| VaultError::CollectionNotFound(name.to_string()))?;
        let schema: Arc<CollectionSchema> = Arc::new(
            serde_json::from_str(&json)
                .map_err(|_| VaultError::KeyDamaged("stored schema".into()))?,
        );
        self.schemas.write().expect("schema cache").insert(
            name.to_string(),
            CachedSchema {
                schema: schema.clone(),
                version,
                loaded_at: Instant::now(),
            },
        );
        Ok((schema, version))
    }

    pub async fn list_collections(&self) -> Result<Vec<String>> {
        Ok(self.store.list_collections().await?)
    }

    // ----- records -------------------------------------------------------------------

    /// Validates every field first (nothing is written if one is bad), then encrypts and
    /// stores the record with its DEK and index rows in one transaction.
    pub async fn create(&self, collection: &str, input: RecordInput) -> Result<Written> {
        let (schema, _) = self.collection(collection).await?;
        let (version, kek) = self
            .keys
            .current_kek(self.store.as_ref(), collection)
            .await?;
        let p = self.prepare(&schema, &input, &kek, version)?;
        let written = Written {
            id: p.record.id.clone(),
            version: 1,
        };
        self.store
            .insert_records(collection, std::slice::from_ref(&p))
            .await?;
        Ok(written)
    }

    /// Creates many records; each input gets its own outcome. Valid records are stored in
    /// one transaction. Values that would break a unique field (repeated within the batch or
    /// already stored) are sorted out before it, because a batch that fails on one costs a
    /// rollback of all of them; a batch that still collides (a concurrent writer) is checked
    /// again, and as a last resort stored record by record so that only the duplicate fails.
    pub async fn create_many(
        &self,
        collection: &str,
        inputs: &[RecordInput],
    ) -> Result<Vec<Result<Written>>> {
        let (schema, _) = self.collection(collection).await?;
        let (version, kek) = self
            .keys
            .current_kek(self.store.as_ref(), collection)
            .await?;
        let mut out: Vec<Result<Written>> = Vec::with_capacity(inputs.len());
        let mut slots = Vec::with_capacity(inputs.len());
        let mut records = Vec::with_capacity(inputs.len());
        for input in inputs {
            match self.prepare(&schema, input, &kek, version) {
                Ok(p) => {
                    out.push(Ok(Written {
                        id: p.record.id.clone(),
                        version: 1,
                    }));
                    slots.push(out.len() - 1);
                    records.push(p);
                }
                Err(e) => out.push(Err(e)),
            }
        }
        if schema.fields.iter().any(|f| f.unique) {
            self.drop_duplicates(collection, &mut slots, &mut records, &mut out)
                .await?;
        }
        for _ in 0..2 {
            match self.store.insert_records(collection, &records).await {
                Ok(()) => return Ok(out),
                Err(custodia_store::StoreError::Unique { .. }) => {
                    if !self
                        .drop_duplicates(collection, &mut slots, &mut records, &mut out)
                        .await?
                    {
                        break; // the colliding record is not visible yet: settle row by row
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        for (slot, new) in slots.into_iter().zip(records) {
            if let Err(e) = self
                .store
                .insert_records(collection, std::slice::from_ref(&new))
                .await
            {
                out[slot] = Err(e.into());
            }
        }
        Ok(out)
    }

    /// Removes from a batch the records that would break a unique field — repeated within
    /// the batch or already stored — and sets their outcome. True when it removed any.
    async fn drop_duplicates(
        &self,
        collection: &str,
        slots: &mut Vec<usize>,
        records: &mut Vec<NewRecord>,
        out: &mut [Result<Written>],
    ) -> Result<bool> {
        let dups = self.duplicates_in(collection, records).await?;
        if dups.is_empty() {
            return Ok(false);
        }
        let mut kept_slots = Vec::with_capacity(slots.len());
        let mut kept = Vec::with_capacity(records.len());
        for (pos, (slot, rec)) in slots.drain(..).zip(records.drain(..)).enumerate() {
            match dups.get(&pos) {
                Some(field) => {
                    out[slot] = Err(VaultError::Duplicate {
                        field: field.clone(),
                    })
                }
                None => {
                    kept_slots.push(slot);
                    kept.push(rec);
                }
            }
        }
        *slots = kept_slots;
        *records = kept;
        Ok(true)
    }

    /// The records of a batch that would break a unique field — repeated within the batch
    /// or already stored — with the field they break, by position in the batch.
    async fn duplicates_in(
        &self,
        collection: &str,
        pending: &[NewRecord],
    ) -> Result<HashMap<usize, String>> {
        let mut by_field: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in pending.iter().flat_map(|r| &r.index).filter(|e| e.unique) {
            by_field.entry(&e.field).or_default().push(&e.hash);
        }
        let mut present: HashMap<&str, std::collections::HashSet<String>> = HashMap::new();
        for (field, hashes) in by_field {
            let found = self
                .store
                .unique_hashes_present(collection, field, &hashes)
                .await?;
            present.insert(field, found.into_iter().collect());
        }
        // In order: a record collides with a stored value, or with a record kept before it.
        // Only kept records' values count: one dropped for one field must not take another
        // record down with it for a value nothing else holds.
        let mut dups = HashMap::new();
        let mut kept = std::collections::HashSet::new();
        for (pos, rec) in pending.iter().enumerate() {
            let unique = rec.index.iter().filter(|e| e.unique);
            let collides = unique.clone().find(|e| {
                present
                    .get(e.field.as_str())
                    .is_some_and(|p| p.contains(&e.hash))
                    || kept.contains(&(e.field.as_str(), e.hash.as_str()))
            });
            match collides {
                Some(e) => {
                    dups.insert(pos, e.field.clone());
                }
                None => kept.extend(unique.map(|e| (e.field.as_str(), e.hash.as_str()))),
            }
        }
        Ok(dups)
    }

    fn prepare(
        &self,
        schema: &CollectionSchema,
        input: &RecordInput,
        kek: &keyring::Kek,
        kek_version: i64,
    ) -> Result<NewRecord> {
        input
            .attributes
            .validate()
            .map_err(|e| VaultError::invalid(&e.field, e.message))?;
        let canon = canonical_fields(schema, &input.fields, true)?;
        Ok(self.seal_canonical(schema, &canon, &input.attributes, kek, kek_version))
    }

    /// The cryptographic half of a write: a fresh DEK wrapped under the KEK, every
    /// canonical value sealed under the DEK with its AAD, blind indexes, stored form.
    fn seal_canonical<V: AsRef<str>>(
        &self,
        schema: &CollectionSchema,
        canon: &[(&FieldDef, V)],
        attributes: &Attributes,
        kek: &keyring::Kek,
        kek_version: i64,
    ) -> NewRecord {
        let id = keyring::record_uuid().to_string();
        let (dek, dek_row) = self.keys.wrap_new_dek(kek, kek_version, &schema.name, &id);
        let aead = self
            .suite()
            .aead(&dek.key)
            .expect("a generated DEK fits its suite");
        let mut aad = FieldAad::new(&schema.name, &id, &dek.key_id);
        let mut raw = Vec::with_capacity(64 * canon.len());
        raw.push(1u8);
        let mut index = Vec::new();
        for (def, value) in canon {
            let value = value.as_ref();
            let field_aad = aad.for_field(&def.name);
            if def.level == Level::C3 {
                let sealed = self.seal_field(&aead, field_aad, def, value);
                stored::push_entry(&mut raw, &def.name, &sealed);
            } else {
                stored::push_entry_with(&mut raw, &def.name, |out| {
                    aead.seal_into(field_aad, value.as_bytes(), out)
                });
            }
            if def.searchable {
                index.push(IndexEntry {
                    field: def.name.clone(),
                    hash: self.keys.blind_index(&schema.name, &def.name, value),
                    unique: def.unique,
                });
            }
        }
        let now = now_unix();
        NewRecord {
            record: RecordRow {
                id,
                version: 1,
                tier: attributes.tier.as_str().to_string(),
                branch: attributes.branch.clone(),
                fields: raw,
                created_at: now,
                updated_at: now,
            },
            dek: dek_row,
            index,
        }
    }

    /// Encrypts a canonical value; a C3 value is replaced by its Argon2id verifier first.
    fn seal_field(&self, aead: &Aead, aad: &[u8], def: &FieldDef, canonical: &str) -> Vec<u8> {
        if def.level == Level::C3 {
            let verifier = custodia_crypto::make_verifier(canonical);
            aead.seal(aad, verifier.as_bytes())
        } else {
            aead.seal(aad, canonical.as_bytes())
        }
    }

    async fn open_record(
        &self,
        schema: &CollectionSchema,
        row: &RecordRow,
        dek: Option<&custodia_store::DekRow>,
    ) -> Result<(keyring::Dek, Map<String, Value>)> {
        let dek_row = dek.ok_or(VaultError::Shredded)?;
        let dek = self
            .keys
            .unwrap_dek(self.store.as_ref(), &schema.name, &row.id, dek_row)
            .await?;
        let damaged = || VaultError::KeyDamaged("record field encoding".into());
        // One buffer for the whole record, decrypted in place and wiped afterwards.
        let mut raw = zeroize::Zeroizing::new(row.fields.clone());
        let entries = stored::entry_ranges(&raw).ok_or_else(damaged)?;
        let aead = self
            .suite()
            .aead(&dek.key)
            .map_err(|e| VaultError::KeyDamaged(e.to_string()))?;
        let mut fields = Map::with_capacity(schema.fields.len());
        let mut aad = FieldAad::new(&schema.name, &row.id, &dek.key_id);
        for def in &schema.fields {
            let Some((_, range)) = entries
                .iter()
                .find(|(n, _)| &raw[n.clone()] == def.name.as_bytes())
            else {
                continue;
            };
            let integrity = || VaultError::Integrity {
                field: def.name.clone(),
            };
            let plain = aead
                .open_in_place(aad.for_field(&def.name), &mut raw[range.clone()])
                .map_err(|_| integrity())?;
            if def.level == Level::C3 {
                continue;
            }
            let text = std::str::from_utf8(plain).map_err(|_| integrity())?;
            fields.insert(def.name.clone(), values::to_json(def, text));
        }
        Ok((dek, fields))
    }

    fn attributes_of(row: &RecordRow) -> Attributes {
        Attributes {
            tier: row.tier.parse().unwrap_or_default(),
            branch: row.branch.clone(),
        }
    }

    /// Reads and decrypts a record. A ciphertext that fails authentication (altered, or
    /// copied from another record or field) is an [`VaultError::Integrity`] error naming the
    /// field; nothing of the record is returned then.
    pub async fn get(&self, collection: &str, id: &str) -> Result<Record> {
        let (schema, _) = self.collection(collection).await?;
        let (row, dek) = self
            .store
            .get_record(collection, id)
            .await?
            .ok_or(VaultError::RecordNotFound)?;
        let (_, fields) = self.open_record(&schema, &row, dek.as_ref()).await?;
        Ok(Record {
            id: row.id.clone(),
            version: row.version,
            attributes: Self::attributes_of(&row),
            fields,
        })
    }

    /// Applies a patch if the record is still at `expected_version`.
    pub async fn update(
        &self,
        collection: &str,
        id: &str,
        expected_version: i64,
        patch: RecordPatch,
    ) -> Result<Written> {
        let (schema, _) = self.collection(collection).await?;
        let mut set = Map::new();
        let mut removed = Vec::new();
        for (name, value) in &patch.fields {
            let def = schema.field(name).ok_or_else(|| VaultError::UnknownField {
                field: name.clone(),
            })?;
            if value.is_null() {
                if def.required {
                    return Err(VaultError::MissingField {
                        field: name.clone(),
                    });
                }
                removed.push(def);
            } else {
                set.insert(name.clone(), value.clone());
            }
        }
        let canon = canonical_fields(&schema, &set, false)?;
        let (row, dek_row) = self
            .store
            .get_record(collection, id)
            .await?
            .ok_or(VaultError::RecordNotFound)?;
        if row.version != expected_version {
            return Err(VaultError::VersionMismatch {
                current: row.version,
            });
        }
        let mut attributes = Self::attributes_of(&row);
        if let Some(a) = patch.attributes {
            if let Some(t) = a.tier {
                attributes.tier = t;
            }
            if let Some(b) = a.branch {
                attributes.branch = b;
            }
        }
        attributes
            .validate()
            .map_err(|e| VaultError::invalid(&e.field, e.message))?;
        let dek_row = dek_row.ok_or(VaultError::Shredded)?;
        let dek = self
            .keys
            .unwrap_dek(self.store.as_ref(), collection, id, &dek_row)
            .await?;
        let aead = self
            .suite()
            .aead(&dek.key)
            .map_err(|e| VaultError::KeyDamaged(e.to_string()))?;
        let mut sealed = stored::SealedFields::decode(&row.fields)
            .ok_or_else(|| VaultError::KeyDamaged("record field encoding".into()))?;
        let mut aad = FieldAad::new(collection, id, &dek.key_id);
        let mut index = Vec::new();
        for (def, value) in &canon {
            sealed.set(
                &def.name,
                self.seal_field(&aead, aad.for_field(&def.name), def, value),
            );
            if def.searchable {
                let entry = IndexEntry {
                    field: def.name.clone(),
                    hash: self.keys.blind_index(collection, &def.name, value),
                    unique: def.unique,
                };
                index.push((def.name.clone(), Some(entry)));
            }
        }
        for def in removed {
            sealed.remove(&def.name);
            if def.searchable {
                index.push((def.name.clone(), None));
            }
        }
        let update = RecordUpdate {
            expected_version,
            tier: attributes.tier.as_str().to_string(),
            branch: attributes.branch,
            fields: sealed.encode(),
            index,
        };
        match self.store.update_record(collection, id, &update).await? {
            UpdateOutcome::Updated { version } => Ok(Written {
                id: id.to_string(),
                version,
            }),
            UpdateOutcome::VersionMismatch { current } => {
                Err(VaultError::VersionMismatch { current })
            }
            UpdateOutcome::NotFound => Err(VaultError::RecordNotFound),
        }
    }

    /// Crypto-shreds a record: its DEK and index rows are destroyed with the row, so every
    /// earlier copy of the record's ciphertext becomes unreadable.
    pub async fn delete(&self, collection: &str, id: &str) -> Result<()> {
        self.collection(collection).await?;
        if self.store.delete_record(collection, id).await? {
            Ok(())
        } else {
            Err(VaultError::RecordNotFound)
        }
    }

    /// Finds records by exact values of searchable fields (all conditions must hold). The
    /// values are normalized as on write, so any surface form of a value finds it.
    pub async fn search(
        &self,
        collection: &str,
        conditions: &Map<String, Value>,
        limit: i64,
    ) -> Result<Vec<Record>> {
        let (schema, _) = self.collection(collection).await?;
        if conditions.is_empty() {
            return Err(VaultError::invalid(
                "where",
                "search needs at least one searchable field in 'where'",
            ));
        }
        if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(VaultError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_SEARCH_LIMIT}"),
            ));
        }
        let mut wanted = Vec::new();
        for (name, value) in conditions {
            let def = schema.field(name).ok_or_else(|| VaultError::UnknownField {
                field: name.clone(),
            })?;
            if !def.searchable {
                return Err(VaultError::NotSearchable {
                    field: name.clone(),
                });
            }
            wanted.push((def, values::canonical(def, value)?));
        }
        // The rarest condition is not known, so fetch each list generously and intersect.
        let fetch = if wanted.len() == 1 { limit } else { 10_000 };
        let mut ids: Option<Vec<String>> = None;
        for (def, canonical) in &wanted {
            let hash = self.keys.blind_index(collection, &def.name, canonical);
            let found = self
                .store
                .search(collection, &def.name, &hash, def.unique, fetch)
                .await?;
            ids = Some(match ids {
                None => found,
                Some(prev) => prev.into_iter().filter(|i| found.contains(i)).collect(),
            });
        }
        let mut ids = ids.unwrap_or_default();
        ids.truncate(limit as usize);
        let rows = self.store.get_records(collection, &ids).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (row, dek) in rows {
            let (_, fields) = match self.open_record(&schema, &row, dek.as_ref()).await {
                Ok(v) => v,
                Err(VaultError::Shredded) => continue,
                Err(e) => return Err(e),
            };
            // A truncated MAC could in principle collide: confirm on the decrypted value.
            let confirmed = wanted.iter().all(|(def, canonical)| {
                fields
                    .get(&def.name)
                    .map(|v| values::canonical(def, v).ok().as_deref() == Some(canonical))
                    .unwrap_or(false)
            });
            if confirmed {
                out.push(Record {
                    id: row.id.clone(),
                    version: row.version,
                    attributes: Self::attributes_of(&row),
                    fields,
                });
            }
        }
        Ok(out)
    }

    /// Checks a value against a C3 field's verifier without ever revealing the stored one.
    pub async fn verify(
        &self,
        collection: &str,
        id: &str,
        field: &str,
        value: &Value,
    ) -> Result<bool> {
        let (schema, _) = self.collection(collection).await?;
        let def = schema
            .field(field)
            .ok_or_else(|| VaultError::UnknownField {
                field: field.to_string(),
            })?;
        if def.level != Level::C3 {
            return Err(VaultError::invalid(
                field,
                format!("field '{field}' is not a C3 (verifier-only) field"),
            ));
        }
        let canonical = values::canonical(def, value)?;
        let (row, dek_row) = self
            .store
            .get_record(collection, id)
            .await?
            .ok_or(VaultError::RecordNotFound)?;
        let dek = self
            .keys
            .unwrap_dek(
                self.store.as_ref(),
                collection,
                id,
                dek_row.as_ref().ok_or(VaultError::Shredded)?,
            )
            .await?;
        let sealed = stored::SealedFields::decode(&row.fields)
            .ok_or_else(|| VaultError::KeyDamaged("record field encoding".into()))?;
        let Some(ct) = sealed.get(field) else {
            return Ok(false);
        };
        let integrity = || VaultError::Integrity {
            field: field.to_string(),
        };
        let aead = self
            .suite()
            .aead(&dek.key)
            .map_err(|e| VaultError::KeyDamaged(e.to_string()))?;
        let verifier = aead
            .open_owned(
                FieldAad::new(collection, id, &dek.key_id).for_field(field),
                ct.to_vec(),
            )
            .map_err(|_| integrity())?;
        let verifier = std::str::from_utf8(&verifier).map_err(|_| integrity())?;
        Ok(custodia_crypto::check_verifier(verifier, &canonical))
    }

    /// Encrypts a record in memory exactly as `create` does — validation included — without
    /// storing it (benchmarks).
    pub async fn seal_only(&self, collection: &str, input: &RecordInput) -> Result<NewRecord> {
        let (schema, _) = self.collection(collection).await?;
        let (version, kek) = self
            .keys
            .current_kek(self.store.as_ref(), collection)
            .await?;
        self.prepare(&schema, input, &kek, version)
    }

    /// Validates records into canonical values (benchmarks time the field crypto apart).
    pub async fn validate_many(
        &self,
        collection: &str,
        inputs: &[RecordInput],
    ) -> Result<Vec<Validated>> {
        let (schema, _) = self.collection(collection).await?;
        inputs
            .iter()
            .map(|input| {
                Ok(Validated {
                    values: canonical_fields(&schema, &input.fields, true)?
                        .into_iter()
                        .map(|(d, v)| (d.name.clone(), v))
                        .collect(),
                    attributes: input.attributes.clone(),
                })
            })
            .collect()
    }

    /// The field-crypto half of `create`: DEK, field AEADs, blind indexes, stored form.
    pub async fn seal_validated(&self, collection: &str, v: &Validated) -> Result<NewRecord> {
        let (schema, _) = self.collection(collection).await?;
        let (version, kek) = self
            .keys
            .current_kek(self.store.as_ref(), collection)
            .await?;
        let canon: Vec<(&FieldDef, &str)> = v
            .values
            .iter()
            .filter_map(|(n, val)| schema.field(n).map(|d| (d, val.as_str())))
            .collect();
        Ok(self.seal_canonical(&schema, &canon, &v.attributes, &kek, version))
    }

    /// Decrypts a record sealed by [`Vault::seal_only`] exactly as `get` does.
    pub async fn open_only(&self, collection: &str, new: &NewRecord) -> Result<Map<String, Value>> {
        let (schema, _) = self.collection(collection).await?;
        Ok(self
            .open_record(&schema, &new.record, Some(&new.dek))
            .await?
            .1)
    }

    /// Adds a new KEK version for the collection and re-wraps its DEKs.
    pub async fn rotate(&self, collection: &str) -> Result<(i64, u64)> {
        self.collection(collection).await?;
        self.keys.rotate(self.store.as_ref(), collection).await
    }

    /// Second pass of a rotation: re-wraps DEKs that nodes with a stale KEK cache created
    /// under an older KEK while the first pass ran.
    pub async fn finish_rotation(&self, collection: &str, version: i64) -> Result<u64> {
        self.keys
            .rewrap_to(self.store.as_ref(), collection, version)
            .await
    }

    pub async fn count(&self, collection: &str) -> Result<i64> {
        Ok(self.store.count_records(collection).await?)
    }
}

fn schema_race(name: &str) -> VaultError {
    VaultError::SchemaConflict {
        field: "name".into(),
        message: format!("collection '{name}' was changed concurrently; retry"),
    }
}

/// Validates a set of fields against the schema: unknown fields, missing required ones (on
/// create), then each value. Returns canonical values in schema order.
fn canonical_fields<'s>(
    schema: &'s CollectionSchema,
    fields: &Map<String, Value>,
    creating: bool,
) -> Result<Vec<(&'s FieldDef, String)>> {
    for name in fields.keys() {
        if schema.field(name).is_none() {
            return Err(VaultError::UnknownField {
                field: name.clone(),
            });
        }
    }
    let mut out = Vec::with_capacity(fields.len());
    for def in &schema.fields {
        match fields.get(&def.name) {
            None | Some(Value::Null) => {
                if creating && def.required {
                    return Err(VaultError::MissingField {
                        field: def.name.clone(),
                    });
                }
            }
            Some(v) => out.push((def, values::canonical(def, v)?)),
        }
    }
    Ok(out)
}

/// Builds each field's AAD — collection ‖ record id ‖ field ‖ key id, length-prefixed —
/// in one reused buffer. Ids are UUIDs and go in as their 16 bytes, which keeps the AAD (and
/// so the GHASH work per field) short.
struct FieldAad {
    buf: Vec<u8>,
    collection_and_id: usize,
    key_id: Vec<u8>,
}

/// A UUID as its 16 bytes; anything else (never written by Custodia) as its text.
fn id_bytes(id: &str) -> Vec<u8> {
    match uuid::Uuid::try_parse(id) {
        Ok(u) => u.as_bytes().to_vec(),
        Err(_) => id.as_bytes().to_vec(),
    }
}

impl FieldAad {
    fn new(collection: &str, record_id: &str, key_id: &str) -> FieldAad {
        let buf = aad(&[collection.as_bytes(), &id_bytes(record_id)]);
        FieldAad {
            collection_and_id: buf.len(),
            buf,
            key_id: id_bytes(key_id),
        }
    }

    fn for_field(&mut self, field: &str) -> &[u8] {
        self.buf.truncate(self.collection_and_id);
        for part in [field.as_bytes(), &self.key_id[..]] {
            self.buf
                .extend_from_slice(&(part.len() as u32).to_be_bytes());
            self.buf.extend_from_slice(part);
        }
        &self.buf
    }
}
