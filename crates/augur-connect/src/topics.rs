//! Connectors' active topics (KIP-558): the topics each connector has written to (capture,
//! enrichment output) or read from (sinks, enrichment input) since it was created or its set was
//! reset, kept in the status topic as Kafka Connect keeps them (`topic-<topic>-connector-<name>`
//! → `{"topic":{"name","connector","task","discoverTimestamp"}}`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{Value, json};

/// The status-topic key of `connector`'s use of `topic`.
pub(crate) fn key(topic: &str, connector: &str) -> String {
    format!("topic-{topic}-connector-{connector}")
}

/// The record of `connector`'s task `task` first using `topic` at `now_ms`.
pub(crate) fn value(topic: &str, connector: &str, task: usize, now_ms: u64) -> Vec<u8> {
    json!({"topic": {"name": topic, "connector": connector, "task": task, "discoverTimestamp": now_ms}})
        .to_string()
        .into_bytes()
}

/// Active topics by connector.
#[derive(Debug, Default)]
pub(crate) struct ActiveTopics {
    map: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl ActiveTopics {
    /// Replays status records: topic records add, their tombstones remove (as Kafka Connect
    /// parses the key: the topic ends at the first `-connector-`).
    pub(crate) fn restore(records: &[crate::store::RawRecord]) -> ActiveTopics {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (k, v) in records {
            let Some(rest) = k
                .as_deref()
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| k.strip_prefix("topic-"))
            else {
                continue;
            };
            let Some((topic, connector)) = rest.split_once("-connector-") else {
                continue;
            };
            let live = v
                .as_deref()
                .and_then(|v| serde_json::from_slice::<Value>(v).ok())
                .is_some_and(|v| v.get("topic").is_some_and(Value::is_object));
            let set = map.entry(connector.to_string()).or_default();
            if live {
                set.insert(topic.to_string());
            } else {
                set.remove(topic);
            }
        }
        map.retain(|_, s| !s.is_empty());
        ActiveTopics {
            map: Mutex::new(map),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `topic` to `connector`'s set; true if it was not there.
    pub(crate) fn insert(&self, connector: &str, topic: &str) -> bool {
        self.lock()
            .entry(connector.to_string())
            .or_default()
            .insert(topic.to_string())
    }

    /// `connector`'s topics, sorted.
    pub(crate) fn get(&self, connector: &str) -> Vec<String> {
        self.lock()
            .get(connector)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Empties `connector`'s set; returns what it held.
    pub(crate) fn take(&self, connector: &str) -> Vec<String> {
        self.lock()
            .remove(connector)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &str, v: Option<Vec<u8>>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        (Some(k.as_bytes().to_vec()), v)
    }

    #[test]
    fn records_replay_with_tombstones_and_odd_names() {
        let recs = vec![
            rec(&key("a.b", "sink"), Some(value("a.b", "sink", 0, 1))),
            rec(
                &key("my-topic", "my-connector-x"),
                Some(value("my-topic", "my-connector-x", 1, 2)),
            ),
            rec(&key("gone", "sink"), Some(value("gone", "sink", 0, 3))),
            rec(&key("gone", "sink"), None),
            rec("status-connector-sink", Some(b"{}".to_vec())),
        ];
        let t = ActiveTopics::restore(&recs);
        assert_eq!(t.get("sink"), vec!["a.b"]);
        assert_eq!(t.get("my-connector-x"), vec!["my-topic"]);
        assert!(t.insert("sink", "c"));
        assert!(!t.insert("sink", "c"));
        assert_eq!(t.take("sink"), vec!["a.b", "c"]);
        assert!(t.get("sink").is_empty());
    }
}
