//! The config topic as the worker's one source of truth: every change (from this worker's REST
//! API or another worker's) is written there first and applied here when read back, in the
//! topic's order, as Kafka Connect's herders apply `KafkaConfigBackingStore` updates. A REST
//! call that wrote a record waits until it was read back (read-your-writes).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Connector, Status, Worker};
use crate::error::{ApiError, ApiErrorKind};
use crate::plugins::Plugin;
use crate::store::{ConfigChange, Restart, TargetState};
use crate::tail::Followed;
use crate::worker::State;

/// How long a REST call waits for its own write to be read back.
const READ_BACK: Duration = Duration::from_secs(30);

/// A connector class's plugin; an unknown class is left for the supervisor to report.
pub(super) fn plugin_of(config: &BTreeMap<String, String>) -> Plugin {
    config
        .get("connector.class")
        .and_then(|c| Plugin::find(c))
        .unwrap_or(Plugin::Capture)
}

impl Worker {
    /// Applies config records as they are read, until the reader stops.
    pub(super) async fn apply_log(self, mut rx: mpsc::Receiver<Followed>) {
        while let Some((offset, (key, value))) = rx.recv().await {
            if let Some(change) = ConfigChange::parse(key.as_deref(), value.as_deref()) {
                self.apply(change);
            }
            self.publish_configured();
            self.shared.applied.send_if_modified(|at| {
                let newer = offset > *at;
                *at = (*at).max(offset);
                newer
            });
        }
    }

    /// Applies one change to the connectors.
    fn apply(&self, change: ConfigChange) {
        match change {
            ConfigChange::Config(name, Some(config)) => self.apply_config(name, config),
            ConfigChange::Config(name, None) => self.apply_delete(&name),
            ConfigChange::Target(name, target) => self.apply_target(name, target),
            ConfigChange::Restart(name, restart) => {
                if let Ok(conn) = self.get(&name) {
                    apply_restart(&conn, restart);
                }
            }
        }
    }

    /// A new connector, or a new config of one (its tasks restart with it).
    fn apply_config(&self, name: String, config: BTreeMap<String, String>) {
        let plugin = plugin_of(&config);
        let existing = self.map().get(&name).cloned();
        let Some(conn) = existing else {
            let target = self.targets().get(&name).copied();
            tracing::info!(connector = %name, class = %plugin.class(), "connector created");
            self.insert(name, config, plugin, target.unwrap_or(TargetState::Started));
            return;
        };
        let mut v = conn.view();
        if v.config != config {
            v.config = config;
            v.plugin = plugin;
            v.generation += 1;
            conn.changed(&mut v);
            tracing::info!(connector = %name, class = %plugin.class(), "connector config updated; restarting its tasks");
        }
    }

    /// A deleted connector: its supervisor stops the tasks and finishes.
    fn apply_delete(&self, name: &str) {
        let Some(conn) = self.map().remove(name) else {
            return;
        };
        let mut v = conn.view();
        v.deleted = true;
        conn.changed(&mut v);
        tracing::info!(connector = %name, "connector deleted");
    }

    /// A target state (kept for a connector whose config comes later, as `POST` writes it
    /// first).
    fn apply_target(&self, name: String, target: Option<TargetState>) {
        match target {
            Some(t) => {
                self.targets().insert(name.clone(), t);
            }
            None => {
                self.targets().remove(&name);
            }
        }
        if let (Some(t), Ok(conn)) = (target, self.get(&name)) {
            let mut v = conn.view();
            if v.target != t {
                v.target = t;
                conn.changed(&mut v);
                tracing::info!(connector = %name, target = ?t, "connector target state changed");
            }
        }
    }

    /// Target states by connector.
    pub(super) fn targets(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TargetState>> {
        self.shared
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the record at `offset` was applied here.
    pub(super) async fn read_back(&self, offset: i64) -> Result<(), ApiError> {
        let mut rx = self.shared.applied.subscribe();
        match tokio::time::timeout(READ_BACK, rx.wait_for(|at| *at >= offset)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::new(
                ApiErrorKind::Internal,
                "Timed out reading the config topic back after writing to it",
            )),
        }
    }
}

/// A restart request: the connector (retrying a config that failed) and, with
/// `include_tasks`, its tasks (with `only_failed`, the failed ones); or one task.
fn apply_restart(conn: &Connector, restart: Restart) {
    let mut v = conn.view();
    let (only_failed, include_tasks) = match restart {
        Restart::Task(task) => {
            let Some(t) = v.tasks.get_mut(task) else {
                return;
            };
            t.epoch += 1;
            t.status = Status::new(State::Restarting);
            conn.changed(&mut v);
            return;
        }
        Restart::Connector {
            only_failed,
            include_tasks,
        } => (only_failed, include_tasks),
    };
    if !only_failed || v.connector.state == State::Failed {
        v.restarts += 1;
        if include_tasks || v.connector.state == State::Failed {
            v.connector = Status::new(State::Restarting);
        }
    }
    if include_tasks {
        for t in v.tasks.iter_mut() {
            if !only_failed || t.status.state == State::Failed {
                t.epoch += 1;
                t.status = Status::new(State::Restarting);
            }
        }
    }
    conn.changed(&mut v);
}
