//! What the investigation index (`GET /v1/audit/events`) keeps of an event: its time and one
//! key per filterable value — the 64-bit FNV-1a hash of `actor:<name>`, `record:<id>` for
//! each record id, `action:<action>`, `purpose:<purpose>`, `outcome:<outcome>`. The index
//! lives beside the log, outside the tree; it only narrows which events a search reads, and
//! every event it names is checked against the filter again — so a hash shared by two values
//! costs a read, never a wrong answer.

use crate::event::EventRef;
use serde::Deserialize;
use std::borrow::Cow;

/// The filterable parts of an event, borrowed from its bytes where they need no unescaping.
#[derive(Deserialize)]
struct Indexed<'a> {
    time_ms: i64,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default, borrow)]
    record_ids: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    purpose: Option<Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
}

/// An event's index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub time_ms: i64,
    /// Sorted, without duplicates.
    pub keys: Vec<i64>,
}

/// The index key of one filter value: FNV-1a (64-bit) over `kind:value`, as stored (a
/// signed 64-bit integer). Part of the index's format: changing it means re-indexing.
pub fn key(kind: &str, value: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in kind.bytes().chain([b':']).chain(value.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h as i64
}

/// The entry of a stored event; `None` if the bytes are not an event (verification reports
/// those; the index leaves them out).
pub fn entry(event: &[u8]) -> Option<Entry> {
    let e: Indexed = serde_json::from_slice(event).ok()?;
    let ids = e.record_ids.iter().map(|r| r.as_ref());
    let filters = Filters {
        time_ms: e.time_ms,
        actor: &e.actor,
        action: &e.action,
        outcome: &e.outcome,
        purpose: e.purpose.as_deref(),
    };
    Some(filters.entry(ids))
}

/// The entry of an event not yet stored, from the fields its stored form will hold: what
/// [`entry`] finds in that form. The appender (SQLite's audit thread, PostgreSQL's append
/// task) hands these to the indexer, which then need not parse the events it was handed.
pub fn entry_of(e: &EventRef<'_>) -> Entry {
    let filters = Filters {
        time_ms: e.time_ms,
        actor: e.actor,
        action: e.action,
        outcome: e.outcome,
        purpose: e.purpose,
    };
    filters.entry(e.record_ids.iter().map(String::as_str))
}

/// The filter values of an event besides its record ids.
struct Filters<'a> {
    time_ms: i64,
    actor: &'a str,
    action: &'a str,
    outcome: &'a str,
    purpose: Option<&'a str>,
}

impl Filters<'_> {
    /// The one place an event's keys are made.
    fn entry<'r>(&self, record_ids: impl ExactSizeIterator<Item = &'r str>) -> Entry {
        let mut keys = Vec::with_capacity(4 + record_ids.len());
        keys.push(key("actor", self.actor));
        keys.push(key("action", self.action));
        keys.push(key("outcome", self.outcome));
        if let Some(p) = self.purpose {
            keys.push(key("purpose", p));
        }
        keys.extend(record_ids.map(|r| key("record", r)));
        keys.sort_unstable();
        keys.dedup();
        Entry {
            time_ms: self.time_ms,
            keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn an_entry_holds_every_filter_value_once() {
        let e = Event {
            time_ms: 1_795_543_247_000,
            actor: "li \"lei\"".into(),
            actor_kind: "user".into(),
            action: "read".into(),
            collection: Some("customers".into()),
            record_ids: vec!["r2".into(), "r1".into(), "r2".into()],
            purpose: Some("kyc".into()),
            outcome: "ok".into(),
            ..Default::default()
        };
        let entry = entry(&e.canonical()).expect("an event");
        // Made before storing, from the borrowed event: the same entry.
        assert_eq!(e.with_ref(entry_of), entry);
        assert_eq!(entry.time_ms, 1_795_543_247_000);
        let mut want = vec![
            key("action", "read"),
            key("actor", "li \"lei\""),
            key("outcome", "ok"),
            key("purpose", "kyc"),
            key("record", "r1"),
            key("record", "r2"),
        ];
        want.sort();
        assert_eq!(entry.keys, want);
        let bare = Event {
            purpose: None,
            record_ids: vec![],
            ..e
        };
        let mut want = vec![
            key("action", "read"),
            key("actor", "li \"lei\""),
            key("outcome", "ok"),
        ];
        want.sort();
        assert_eq!(
            super::entry(&bare.canonical()).expect("an event").keys,
            want
        );
        assert_eq!(super::entry(b"{\"not\":\"an event\"}"), None);
    }

    #[test]
    fn keys_are_fnv1a_of_kind_and_value() {
        // FNV-1a 64 of ":" (computed independently); the stored format depends on it.
        assert_eq!(key("", "") as u64, 0xaf63_b74c_8601_adad);
        assert_ne!(key("actor", "a"), key("record", "a"));
        assert_ne!(key("actor", "ab"), key("actorab", ""));
    }
}
