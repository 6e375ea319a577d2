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

/// An event with borrowed strings, serialized as [`Event`] is: what the hot paths write,
/// without building an `Event` (a dozen `String`s and two maps per read, then dropped).
/// [`Event::canonical`] goes through it too, so the two cannot encode differently.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EventRef<'a> {
    pub time_ms: i64,
    pub actor: &'a str,
    pub actor_kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    pub action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub record_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    /// Field → mode, **in key order** (as [`Event::fields`], a `BTreeMap`, gives them).
    #[serde(skip_serializing_if = "Pairs::is_empty")]
    pub fields: Pairs<'a>,
    /// Searched field → blind-index reference, in key order.
    #[serde(skip_serializing_if = "Pairs::is_empty")]
    pub searched: Pairs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub outcome: &'a str,
}

/// Key-value pairs serialized as a JSON object, in the order given (keys ascending).
#[derive(Clone, Copy, Debug, Default)]
pub struct Pairs<'a>(pub &'a [(&'a str, &'a str)]);

impl Pairs<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        debug_assert!(
            self.0.windows(2).all(|w| w[0].0 < w[1].0),
            "keys in ascending order, each once"
        );
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl EventRef<'_> {
    /// The canonical bytes hashed into the tree.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(640);
        serde_json::to_writer(&mut out, self).expect("events serialize");
        out
    }
}

impl Event {
    /// The canonical bytes hashed into the tree.
    pub fn canonical(&self) -> Vec<u8> {
        self.with_ref(|e| e.canonical())
    }

    /// `f` of this event borrowed.
    pub fn with_ref<T>(&self, f: impl FnOnce(&EventRef<'_>) -> T) -> T {
        fn pairs(m: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
            m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
        }
        let (fields, searched) = (pairs(&self.fields), pairs(&self.searched));
        f(&EventRef {
            time_ms: self.time_ms,
            actor: &self.actor,
            actor_kind: &self.actor_kind,
            session: self.session.as_deref(),
            client_addr: self.client_addr.as_deref(),
            request_id: self.request_id.as_deref(),
            action: &self.action,
            collection: self.collection.as_deref(),
            record_ids: &self.record_ids,
            target: self.target.as_deref(),
            fields: Pairs(&fields),
            searched: Pairs(&searched),
            purpose: self.purpose.as_deref(),
            reason: self.reason.as_deref(),
            outcome: &self.outcome,
        })
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

    /// Borrowed and owned events encode alike, byte for byte, as the derived `Serialize` of
    /// [`Event`] (the format every stored log was written in) does: every optional field
    /// present, and every one absent.
    #[test]
    fn the_borrowed_encoding_is_the_derived_one() {
        let full = Event {
            target: Some("li_lei".into()),
            searched: BTreeMap::from([
                ("id_no".into(), "bi:3f2a".into()),
                ("mobile".into(), "bi:\"q\"".into()),
            ]),
            reason: Some("complaint 77 \u{2028} 投诉".into()),
            ..sample()
        };
        let bare = Event {
            time_ms: 1,
            actor: "a".into(),
            actor_kind: "token".into(),
            action: "login".into(),
            outcome: "ok".into(),
            ..Event::default()
        };
        for e in [sample(), full, bare] {
            assert_eq!(e.canonical(), serde_json::to_vec(&e).unwrap());
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
