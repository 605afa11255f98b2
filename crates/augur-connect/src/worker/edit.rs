//! Edits of what a connector has stored: a partial config update (`PATCH …/config`), the
//! offsets API for stopped connectors (`PATCH`/`DELETE …/offsets`, KIP-875) and its active
//! topics (`GET …/topics`, `PUT …/topics/reset`, KIP-558).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Connector, Worker};
use crate::entities::ConnectorInfo;
use crate::error::{ApiError, ApiErrorKind};
use crate::mask;
use crate::offsets;
use crate::plugins::{self, Plugin};
use crate::store::TargetState;
use crate::tasks::TaskPlan;

/// One `{"partition","offset"}` entry of an offsets request (`None`: missing or null).
pub(crate) type OffsetEntry = (Option<Value>, Option<Value>);

/// Kafka Connect's answer for a connector whose offsets live elsewhere too (the capture's
/// replication slot is the real position).
const SOURCE_ALTERED: &str = "The Connect framework-managed offsets for this connector have been altered successfully. However, if this connector manages offsets externally, they will need to be manually altered in the system that the connector uses.";
/// Likewise, for a reset.
const SOURCE_RESET: &str = "The Connect framework-managed offsets for this connector have been reset successfully. However, if this connector manages offsets externally, they will need to be manually reset in the system that the connector uses.";
/// Kafka Connect's answer for a connector whose only offsets are the ones Connect manages.
const SINK_ALTERED: &str = "The offsets for this connector have been altered successfully";
/// Likewise, for a reset.
const SINK_RESET: &str = "The offsets for this connector have been reset successfully";

impl Worker {
    /// `PATCH /connectors/{name}/config`: the stored config with `patch` applied (a `None`
    /// value removes the key), validated and applied as a `PUT` would be. 404 for an unknown
    /// connector (a patch never creates one).
    pub(crate) async fn patch_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> Result<ConnectorInfo, ApiError> {
        self.check_running()?;
        let conn = self.get(name)?;
        let _admin = self.shared.admin.lock().await;
        let current = conn.view().config.clone();
        let mut set = BTreeMap::new();
        let mut config = current.clone();
        for (k, v) in patch {
            match v {
                Some(v) => {
                    set.insert(k, v);
                }
                None => {
                    config.remove(&k);
                }
            }
        }
        // Masked secrets sent back unchanged keep their stored values.
        config.extend(mask::unmask_with(set, &current));
        match config.get("name") {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )));
            }
            _ => {
                config.insert("name".into(), name.to_string());
            }
        }
        self.replace_config(&conn, name, config).await
    }

    /// `GET /connectors/{name}/topics`: the topics the connector has used, sorted (none for a
    /// connector that does not exist, as in Kafka Connect); 403 when tracking is off.
    pub(crate) fn active_topics(&self, name: &str) -> Result<Vec<String>, ApiError> {
        self.tracking(false)?;
        Ok(self.shared.store.active_topics(name))
    }

    /// `PUT /connectors/{name}/topics/reset`: forgets them; 403 when tracking or its reset is
    /// off.
    pub(crate) fn reset_topics(&self, name: &str) -> Result<(), ApiError> {
        self.tracking(true)?;
        self.shared.store.reset_topics(name);
        tracing::info!(connector = %name, "active topics reset");
        Ok(())
    }

    /// 403 unless topic tracking (and, with `reset`, its reset) is enabled.
    fn tracking(&self, reset: bool) -> Result<(), ApiError> {
        let cfg = &self.shared.config;
        let forbidden = |m: &str| Err(ApiError::new(ApiErrorKind::Forbidden, m));
        if !cfg.topic_tracking {
            return forbidden("Topic tracking is disabled.");
        }
        if reset && !cfg.topic_tracking_reset {
            return forbidden("Topic tracking reset is disabled.");
        }
        Ok(())
    }

    /// `PATCH /connectors/{name}/offsets`: writes the given offsets of a stopped connector.
    pub(crate) async fn alter_offsets(
        &self,
        name: &str,
        entries: Vec<OffsetEntry>,
    ) -> Result<&'static str, ApiError> {
        if entries.is_empty() {
            return Err(ApiError::bad_request(
                "Partitions / offsets need to be provided for an alter offsets request",
            ));
        }
        self.check_running()?;
        let conn = self.get(name)?;
        let _admin = self.shared.admin.lock().await;
        let (plugin, config) = self.stopped(&conn, name).await?;
        if plugin == Plugin::Capture {
            self.alter_source_offsets(name, entries).await?;
            tracing::info!(connector = %name, "source offsets altered");
            return Ok(SOURCE_ALTERED);
        }
        let changes = offsets::parse_sink_offsets(&entries).map_err(ApiError::bad_request)?;
        let plan = self.plan(plugin, &config)?;
        let Some((group, _)) = plan.group() else {
            return Ok(SINK_ALTERED);
        };
        offsets::alter_group_offsets(&self.shared.config, group, changes, plan.starts_at_end())
            .await
            .map_err(|e| {
                ApiError::internal(format!(
                    "Failed to alter consumer group offsets for connector {name}: {}",
                    e.full_message()
                ))
            })?;
        tracing::info!(connector = %name, "consumer group offsets altered");
        Ok(SINK_ALTERED)
    }

    /// `DELETE /connectors/{name}/offsets`: removes every offset of a stopped connector (a
    /// capture's stored offsets; a sink's or enrichment's consumer group).
    pub(crate) async fn reset_offsets(&self, name: &str) -> Result<&'static str, ApiError> {
        self.check_running()?;
        let conn = self.get(name)?;
        let _admin = self.shared.admin.lock().await;
        let (plugin, config) = self.stopped(&conn, name).await?;
        if plugin == Plugin::Capture {
            let stored = self.shared.store.offsets(name);
            let entries = stored.into_iter().map(|(p, _)| (Some(p), None)).collect();
            self.alter_source_offsets(name, entries).await?;
            tracing::info!(connector = %name, "source offsets reset");
            return Ok(SOURCE_RESET);
        }
        let plan = self.plan(plugin, &config)?;
        if let Some((group, _)) = plan.group() {
            offsets::delete_group(&self.shared.config, group)
                .await
                .map_err(|e| {
                    ApiError::internal(format!(
                        "Failed to reset consumer group offsets for connector {name}: {}",
                        e.full_message()
                    ))
                })?;
        }
        tracing::info!(connector = %name, "consumer group offsets reset");
        Ok(SINK_RESET)
    }

    /// The connector's class and config if it is stopped (its tasks down), else 400, as Kafka
    /// Connect refuses offset changes while tasks could still write offsets.
    async fn stopped(
        &self,
        conn: &Connector,
        name: &str,
    ) -> Result<(Plugin, BTreeMap<String, String>), ApiError> {
        let (target, version, plugin, config) = {
            let v = conn.view();
            (v.target, v.version, v.plugin, v.config.clone())
        };
        if target != TargetState::Stopped {
            return Err(ApiError::bad_request(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
            )));
        }
        // `stop` answered once the tasks were down; a restart request since is applied first.
        conn.wait_applied(version, self.shared.config.shutdown_timeout)
            .await;
        Ok((plugin, config))
    }

    /// The connector's task plan, or 400 for a config that does not parse.
    fn plan(
        &self,
        plugin: Plugin,
        config: &BTreeMap<String, String>,
    ) -> Result<TaskPlan, ApiError> {
        TaskPlan::build(plugin, config, &self.shared.config)
            .map(|(plan, _)| plan)
            .map_err(|v| ApiError::bad_request(plugins::invalid_config_message(&v.errors, config)))
    }

    /// Checks every entry first, then writes them (a `None` offset is a tombstone).
    async fn alter_source_offsets(
        &self,
        name: &str,
        entries: Vec<OffsetEntry>,
    ) -> Result<(), ApiError> {
        let mut checked = Vec::with_capacity(entries.len());
        for (partition, offset) in entries {
            let Some(partition) = partition.filter(Value::is_object) else {
                return Err(ApiError::bad_request(
                    "Source partitions may not be null and must be JSON objects",
                ));
            };
            if let Some(o) = &offset {
                offsets::check_source_offset(o).map_err(ApiError::bad_request)?;
            }
            checked.push((partition, offset));
        }
        for (partition, offset) in checked {
            self.shared
                .store
                .put_offset(name, &partition, offset)
                .await
                .map_err(|e| {
                    ApiError::internal(format!(
                        "Failed to write the connector's offsets: {}",
                        e.full_message()
                    ))
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::offsets::SinkOffsetChange;

    fn change(topic: &str, partition: i32, offset: Option<i64>) -> SinkOffsetChange {
        SinkOffsetChange {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    fn entry(p: Value, o: Value) -> OffsetEntry {
        (
            Some(p).filter(|v| !v.is_null()),
            Some(o).filter(|v| !v.is_null()),
        )
    }

    #[test]
    fn sink_offsets_parse_as_kafka_connect_does() {
        let ok = offsets::parse_sink_offsets(&[
            entry(
                json!({"kafka_topic": "t", "kafka_partition": 0}),
                json!({"kafka_offset": 5}),
            ),
            entry(
                json!({"kafka_topic": "t", "kafka_partition": "1"}),
                json!({"kafka_offset": "7"}),
            ),
            entry(
                json!({"kafka_topic": "t", "kafka_partition": 2}),
                Value::Null,
            ),
        ])
        .unwrap();
        assert_eq!(
            ok,
            vec![
                change("t", 0, Some(5)),
                change("t", 1, Some(7)),
                change("t", 2, None)
            ]
        );
        let err = |p: Value, o: Value| offsets::parse_sink_offsets(&[entry(p, o)]).unwrap_err();
        assert_eq!(
            err(Value::Null, json!({"kafka_offset": 1})),
            "The partition for a sink connector offset cannot be null or missing"
        );
        assert_eq!(
            err(json!({"kafka_topic": "t"}), json!({"kafka_offset": 1})),
            "The partition for a sink connector offset must contain the keys 'kafka_topic' and 'kafka_partition'"
        );
        assert_eq!(
            err(
                json!({"kafka_topic": null, "kafka_partition": 0}),
                Value::Null
            ),
            "Kafka topic names must be valid strings and may not be null"
        );
        assert_eq!(
            err(
                json!({"kafka_topic": "t", "kafka_partition": null}),
                Value::Null
            ),
            "Kafka partitions must be valid numbers and may not be null"
        );
        assert!(
            err(
                json!({"kafka_topic": "t", "kafka_partition": "x"}),
                Value::Null
            )
            .starts_with(
                "Failed to parse the following Kafka partition value in the provided offsets: 'x'"
            )
        );
        assert_eq!(
            err(
                json!({"kafka_topic": "t", "kafka_partition": 0}),
                json!({"offset": 1})
            ),
            "The offset for a sink connector should either be null or contain the key 'kafka_offset'"
        );
        assert!(
            err(
                json!({"kafka_topic": "t", "kafka_partition": 0}),
                json!({"kafka_offset": 1.5})
            )
            .starts_with(
                "Failed to parse the following Kafka offset value in the provided offsets: '1.5'"
            )
        );
        assert!(
            err(
                json!({"kafka_topic": "t", "kafka_partition": 0}),
                json!({"kafka_offset": -3})
            )
            .contains("must not be negative")
        );
    }

    #[test]
    fn source_offsets_keep_debeziums_types() {
        assert!(
            offsets::check_source_offset(&json!({"lsn": 123, "txId": "77", "ts_usec": 1})).is_ok()
        );
        assert!(offsets::check_source_offset(&json!({"lsn": 1, "snapshot": "last"})).is_ok());
        assert!(
            offsets::check_source_offset(&json!({"lsn": "abc"}))
                .unwrap_err()
                .contains("'lsn'")
        );
        assert!(offsets::check_source_offset(&json!({"lsn": -1})).is_err());
        assert!(offsets::check_source_offset(&json!({"snapshot_completed": "yes"})).is_err());
        assert!(offsets::check_source_offset(&json!([1])).is_err());
    }
}
