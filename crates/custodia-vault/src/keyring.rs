//! The key hierarchy: root key (sealed by a passphrase) → versioned collection KEKs (wrapped
//! by the root key) → one DEK per record (wrapped by a KEK). Blind-index keys are derived
//! from the root key per collection and field, so they never need storing.
//!
//! Every wrap binds its context in the AAD, so a wrapped key copied to another collection,
//! record or version fails to unwrap.

use crate::error::VaultError;
use custodia_crypto::{aad, b64, unb64, Aead, Key, MacKey, Suite};
use custodia_store::{DekRow, Store};
use std::collections::BTreeMap;
// Keyed by collection and field names from schemas (not by callers' input): a fast hasher.
use foldhash::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a node trusts its idea of a collection's newest KEK version before asking the
/// store again; bounds how long a node keeps wrapping new DEKs under a rotated-out KEK.
pub const KEK_REFRESH: Duration = Duration::from_secs(5);

/// A KEK with its cipher keyed once.
pub struct Kek {
    pub aead: Aead,
}

struct KekSet {
    keys: BTreeMap<i64, Arc<Kek>>,
    loaded_at: Instant,
}

pub struct Keyring {
    pub(crate) suite: Suite,
    root: Key,
    index_root: Key,
    secrets_root: Key,
    keks: RwLock<HashMap<String, KekSet>>,
    /// collection → field → pre-keyed blind-index MAC.
    index_macs: RwLock<HashMap<String, HashMap<String, Arc<MacKey>>>>,
}

/// A record's unwrapped data key with its id.
pub struct Dek {
    pub key_id: String,
    pub key: Key,
}

fn damaged(what: &str) -> VaultError {
    VaultError::KeyDamaged(what.to_string())
}

impl Keyring {
    pub fn new(suite: Suite, root: Key) -> Keyring {
        let index_root = suite.derive(&root, b"custodia/blind-index/v1", 32);
        let secrets_root = suite.derive(&root, b"custodia/secrets/v1", suite.key_len());
        Keyring {
            suite,
            root,
            index_root,
            secrets_root,
            keks: RwLock::new(HashMap::default()),
            index_macs: RwLock::new(HashMap::default()),
        }
    }

    /// Seals a small service secret (a user's TOTP seed) bound to `label`.
    pub fn seal_secret(&self, label: &str, secret: &[u8]) -> String {
        let aead = self
            .suite
            .aead(&self.secrets_root)
            .expect("derived key has the suite's length");
        custodia_crypto::b64(&aead.seal(label.as_bytes(), secret))
    }

    pub fn open_secret(
        &self,
        label: &str,
        sealed: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, VaultError> {
        let aead = self
            .suite
            .aead(&self.secrets_root)
            .map_err(|_| damaged("secrets key"))?;
        let raw = custodia_crypto::unb64(sealed).ok_or_else(|| damaged("sealed secret"))?;
        aead.open(label.as_bytes(), &raw)
            .map_err(|_| damaged("sealed secret"))
    }

    fn kek_aad(collection: &str, version: i64) -> Vec<u8> {
        aad(&[b"kek", collection.as_bytes(), &version.to_be_bytes()])
    }

    fn dek_aad(collection: &str, record_id: &str, key_id: &str, kek_version: i64) -> Vec<u8> {
        aad(&[
            b"dek",
            collection.as_bytes(),
            record_id.as_bytes(),
            key_id.as_bytes(),
            &kek_version.to_be_bytes(),
        ])
    }

    async fn load_keks(&self, store: &dyn Store, collection: &str) -> Result<(), VaultError> {
        let rows = store.keks(collection).await?;
        let root = self
            .suite
            .aead(&self.root)
            .map_err(|_| damaged("root key"))?;
        let mut keys = BTreeMap::new();
        for row in rows {
            let wrapped = unb64(&row.wrapped).ok_or_else(|| damaged("KEK encoding"))?;
            let key = root
                .open(&Self::kek_aad(collection, row.version), &wrapped)
                .map_err(|_| damaged("KEK failed to unwrap"))?;
            let aead = self
                .suite
                .aead(&Key::from_bytes(key.to_vec()))
                .map_err(|_| damaged("KEK length"))?;
            keys.insert(row.version, Arc::new(Kek { aead }));
        }
        self.keks.write().expect("keyring lock").insert(
            collection.to_string(),
            KekSet {
                keys,
                loaded_at: Instant::now(),
            },
        );
        Ok(())
    }

    /// Adds KEK `version` for a collection; returns false if that version already exists.
    async fn add_kek(
        &self,
        store: &dyn Store,
        collection: &str,
        version: i64,
    ) -> Result<bool, VaultError> {
        let kek = self.suite.generate_key();
        let root = self
            .suite
            .aead(&self.root)
            .map_err(|_| damaged("root key"))?;
        let wrapped = root.seal(&Self::kek_aad(collection, version), kek.expose());
        let added = store
            .insert_kek(collection, version, &b64(&wrapped))
            .await?;
        self.load_keks(store, collection).await?;
        Ok(added)
    }

    /// The newest KEK of a collection, creating version 1 if there is none yet.
    pub async fn current_kek(
        &self,
        store: &dyn Store,
        collection: &str,
    ) -> Result<(i64, Arc<Kek>), VaultError> {
        for _ in 0..3 {
            let fresh = {
                let keks = self.keks.read().expect("keyring lock");
                keks.get(collection).and_then(|s| {
                    (s.loaded_at.elapsed() < KEK_REFRESH)
                        .then(|| s.keys.iter().next_back().map(|(v, k)| (*v, k.clone())))
                        .flatten()
                })
            };
            if let Some(found) = fresh {
                return Ok(found);
            }
            self.load_keks(store, collection).await?;
            let empty = self
                .keks
                .read()
                .expect("keyring lock")
                .get(collection)
                .is_none_or(|s| s.keys.is_empty());
            if empty {
                self.add_kek(store, collection, 1).await?;
            }
        }
        Err(damaged("no KEK could be loaded"))
    }

    async fn kek(
        &self,
        store: &dyn Store,
        collection: &str,
        version: i64,
    ) -> Result<Arc<Kek>, VaultError> {
        let cached = self
            .keks
            .read()
            .expect("keyring lock")
            .get(collection)
            .and_then(|s| s.keys.get(&version).cloned());
        if let Some(k) = cached {
            return Ok(k);
        }
        self.load_keks(store, collection).await?;
        self.keks
            .read()
            .expect("keyring lock")
            .get(collection)
            .and_then(|s| s.keys.get(&version).cloned())
            .ok_or_else(|| damaged("record key refers to an unknown KEK version"))
    }

    /// A fresh DEK for a new record, wrapped under the collection's newest KEK.
    pub async fn new_dek(
        &self,
        store: &dyn Store,
        collection: &str,
        record_id: &str,
    ) -> Result<(Dek, DekRow), VaultError> {
        let (version, kek) = self.current_kek(store, collection).await?;
        Ok(self.wrap_new_dek(&kek, version, collection, record_id))
    }

    pub(crate) fn wrap_new_dek(
        &self,
        kek: &Kek,
        kek_version: i64,
        collection: &str,
        record_id: &str,
    ) -> (Dek, DekRow) {
        let key = self.suite.generate_data_key();
        let key_id = random_uuid().simple().to_string();
        let wrapped = kek.aead.seal(
            &Self::dek_aad(collection, record_id, &key_id, kek_version),
            key.expose(),
        );
        let row = DekRow {
            key_id: key_id.clone(),
            kek_version,
            wrapped: b64(&wrapped),
        };
        (Dek { key_id, key }, row)
    }

    pub async fn unwrap_dek(
        &self,
        store: &dyn Store,
        collection: &str,
        record_id: &str,
        row: &DekRow,
    ) -> Result<Dek, VaultError> {
        let kek = self.kek(store, collection, row.kek_version).await?;
        let wrapped = unb64(&row.wrapped).ok_or_else(|| damaged("DEK encoding"))?;
        let key = kek
            .aead
            .open_owned(
                &Self::dek_aad(collection, record_id, &row.key_id, row.kek_version),
                wrapped,
            )
            .map_err(|_| damaged("record key failed to unwrap"))?;
        Ok(Dek {
            key_id: row.key_id.clone(),
            key: Key::from_bytes(key.to_vec()),
        })
    }

    /// Adds a new KEK version and re-wraps every DEK of the collection under it. Readers
    /// keep working throughout: old KEK versions stay, and each DEK row is swapped by
    /// compare-and-set. Returns the new version and how many DEKs were re-wrapped.
    pub async fn rotate(
        &self,
        store: &dyn Store,
        collection: &str,
    ) -> Result<(i64, u64), VaultError> {
        self.load_keks(store, collection).await?;
        let newest = self
            .keks
            .read()
            .expect("keyring lock")
            .get(collection)
            .and_then(|s| s.keys.keys().next_back().copied())
            .unwrap_or(0);
        let mut version = newest + 1;
        while !self.add_kek(store, collection, version).await? {
            version += 1;
        }
        let rewrapped = self.rewrap_to(store, collection, version).await?;
        Ok((version, rewrapped))
    }

    /// Re-wraps every DEK of the collection still under a KEK older than `version`.
    pub async fn rewrap_to(
        &self,
        store: &dyn Store,
        collection: &str,
        version: i64,
    ) -> Result<u64, VaultError> {
        let new_kek = self.kek(store, collection, version).await?;
        let mut rewrapped = 0u64;
        loop {
            let batch = store.deks_older_than(collection, version, 500).await?;
            if batch.is_empty() {
                break;
            }
            for (record_id, row) in batch {
                let dek = self.unwrap_dek(store, collection, &record_id, &row).await?;
                let wrapped = new_kek.aead.seal(
                    &Self::dek_aad(collection, &record_id, &dek.key_id, version),
                    dek.key.expose(),
                );
                let new_row = DekRow {
                    key_id: dek.key_id.clone(),
                    kek_version: version,
                    wrapped: b64(&wrapped),
                };
                if store
                    .rewrap_dek(collection, &record_id, row.kek_version, &new_row)
                    .await?
                {
                    rewrapped += 1;
                }
            }
        }
        Ok(rewrapped)
    }

    /// The pre-keyed blind-index MAC of one field of one collection.
    fn index_mac(&self, collection: &str, field: &str) -> Arc<MacKey> {
        if let Some(m) = self
            .index_macs
            .read()
            .expect("keyring lock")
            .get(collection)
            .and_then(|f| f.get(field))
        {
            return m.clone();
        }
        let key = self.suite.derive(
            &self.index_root,
            &aad(&[collection.as_bytes(), field.as_bytes()]),
            32,
        );
        let mac = Arc::new(self.suite.mac_key(&key));
        self.index_macs
            .write()
            .expect("keyring lock")
            .entry(collection.to_string())
            .or_default()
            .insert(field.to_string(), mac.clone());
        mac
    }

    pub fn blind_index(&self, collection: &str, field: &str, canonical: &str) -> String {
        self.index_mac(collection, field).blind_index(canonical)
    }
}

/// A v4 UUID from the thread's CSPRNG (one `getrandom` call per id would dominate the cost
/// of creating a record).
pub(crate) fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// A record id: UUIDv7, so ids (and every index keyed by them) grow in insertion order —
/// B-tree appends instead of random page splits on bulk imports. The creation time it
/// reveals is stored beside the record anyway; the 74 random bits keep ids unguessable.
pub(crate) fn record_uuid() -> uuid::Uuid {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid()
}
