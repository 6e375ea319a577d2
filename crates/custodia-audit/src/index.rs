//! What the investigation index (`GET /v1/audit/events`) keeps of an event: its time and one
//! key per filterable value — `actor:<name>`, `record:<id>` for each record id,
//! `action:<action>`, `purpose:<purpose>`, `outcome:<outcome>`. The index lives beside the
//! log, outside the tree; it only narrows which events a search reads, and every event it
//! names is checked against the filter again.

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
    pub keys: Vec<String>,
}

/// The index key of one filter value.
pub fn key(kind: &str, value: &str) -> String {
    let mut k = String::with_capacity(kind.len() + 1 + value.len());
    k.push_str(kind);
    k.push(':');
    k.push_str(value);
    k
}

/// The entry of a stored event; `None` if the bytes are not an event (verification reports
/// those; the index leaves them out).
pub fn entry(event: &[u8]) -> Option<Entry> {
    let e: Indexed = serde_json::from_slice(event).ok()?;
    let mut keys = Vec::with_capacity(4 + e.record_ids.len());
    keys.push(key("actor", &e.actor));
    keys.push(key("action", &e.action));
    keys.push(key("outcome", &e.outcome));
    if let Some(p) = &e.purpose {
        keys.push(key("purpose", p));
    }
    keys.extend(e.record_ids.iter().map(|r| key("record", r)));
    keys.sort_unstable();
    keys.dedup();
    Some(Entry {
        time_ms: e.time_ms,
        keys,
    })
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
        assert_eq!(entry.time_ms, 1_795_543_247_000);
        assert_eq!(
            entry.keys,
            [
                "action:read",
                "actor:li \"lei\"",
                "outcome:ok",
                "purpose:kyc",
                "record:r1",
                "record:r2"
            ]
        );
        let bare = Event {
            purpose: None,
            record_ids: vec![],
            ..e
        };
        assert_eq!(
            super::entry(&bare.canonical()).expect("an event").keys,
            ["action:read", "actor:li \"lei\"", "outcome:ok"]
        );
        assert_eq!(super::entry(b"{\"not\":\"an event\"}"), None);
    }
}
