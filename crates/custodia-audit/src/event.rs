//! Audit events: who did what to which customer records, for what purpose, with what
//! outcome — ids, field names and modes only, never a personal value. An event's leaf in the
//! tree is the hash of its canonical JSON encoding (fields in declaration order, no
//! whitespace), so any change to a stored event changes the tree.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One audited act. (`Default` — time 0, empty strings — serves tests and tools that
/// build an event field by field; the server names every field of the events it records.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// User, service account or token name.
    pub actor: String,
    /// `user`, `service` or `token`.
    pub actor_kind: String,
    /// A short reference to the session (first 16 hex digits of its hash), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `read`, `search`, `create`, `update`, `delete`, `verify`, `list`, `login`, …
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_ids: Vec<String>,
    /// For administrative acts: the user, service account or collection acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Field → `clear`, `masked` or `omitted`, as given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// For searches: the searched field names and the blind-index references, not values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub searched: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ok` or the error code.
    pub outcome: String,
}

impl Event {
    /// The canonical bytes hashed into the tree.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events serialize")
    }

    pub fn from_canonical(bytes: &[u8]) -> Option<Event> {
        let e: Event = serde_json::from_slice(bytes).ok()?;
        // Only the canonical form is accepted: a re-encoded equal event is a different leaf.
        (e.canonical() == bytes).then_some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            time_ms: 1_795_543_247_000,
            actor: "li_lei".into(),
            actor_kind: "user".into(),
            session: Some("0123456789abcdef".into()),
            client_addr: Some("10.1.2.3".into()),
            request_id: Some("req-1".into()),
            action: "read".into(),
            collection: Some("customers".into()),
            record_ids: vec!["01a20ee5-faf1-7909-9a91-8b6f6780a508".into()],
            target: None,
            fields: BTreeMap::from([
                ("mobile".into(), "masked".into()),
                ("segment".into(), "clear".into()),
            ]),
            searched: BTreeMap::new(),
            purpose: Some("customer_service".into()),
            reason: None,
            outcome: "ok".into(),
        }
    }

    #[test]
    fn canonical_form_round_trips_and_is_the_only_form() {
        let e = sample();
        let bytes = e.canonical();
        assert_eq!(Event::from_canonical(&bytes), Some(e.clone()));
        let pretty = serde_json::to_vec_pretty(&e).unwrap();
        assert_eq!(Event::from_canonical(&pretty), None);
        let mut changed = bytes.clone();
        let at = changed.iter().position(|&b| b == b'l').unwrap();
        changed[at] = b'L';
        assert_ne!(Event::from_canonical(&changed), Some(e));
    }
}
