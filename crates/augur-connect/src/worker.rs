//! The worker: connectors, their lifecycle, and what the REST API reads and changes.
//!
//! Each connector has a supervisor task that owns its running tasks and converges them on
//! what the connector should be doing: its config (a new config restarts every task), its
//! target state (`STARTED` runs tasks; `PAUSED` and `STOPPED` stop them, so a paused capture
//! really closes its replication connection and a paused sink leaves its group), and restart
//! requests (a per-task epoch). REST calls change that desired state under a short lock, write
//! it to the config topic first, and wake the supervisor; `pause`, `resume` and `restart`
//! answer at once (202), `stop` and `DELETE` wait until the tasks are down.
//!
//! A task that fails shows `FAILED` with its error as `trace` and stays so until restarted;
//! one that is told to stop drains and commits first (capture confirms its last position and
//! saves its offsets). The supervisor is the one writer of the status topic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use augur_core::shutdown::{self, ShutdownTrigger};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tokio::task::{AbortHandle, JoinHandle};

use crate::cluster::assignor::Work;
use crate::cluster::herder::Configured;
use crate::config::WorkerConfig;
use crate::entities::{
    ConnectorInfo, ConnectorOffset, ConnectorOffsets, ConnectorState, ConnectorStateInfo,
    ConnectorTaskId, TaskInfo, TaskState,
};
use crate::error::{ApiError, ApiErrorKind};
use crate::mask;
use crate::offsets::group_offsets;
use crate::plugins::{self, Plugin};
use crate::store::{Restart, Restored, StateStore, StatusRecord, TargetState};
use crate::tail::{self, Tail};
use crate::tasks::TaskPlan;

mod edit;
mod log;
mod owned;

use owned::status_key;

pub(crate) use edit::OffsetEntry;

/// A connector's or task's state, as Kafka Connect reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not running on any worker (yet).
    Unassigned,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Failed; the trace says why.
    Failed,
    /// A restart was requested and has not happened yet.
    Restarting,
    /// Stopped (the connector keeps its config, its tasks are gone).
    Stopped,
}

impl State {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
            State::Stopped => "STOPPED",
        }
    }

    /// A state by name.
    pub fn parse(s: &str) -> Option<State> {
        [
            State::Unassigned,
            State::Running,
            State::Paused,
            State::Failed,
            State::Restarting,
            State::Stopped,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A state with its failure trace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    /// The state.
    state: State,
    /// Why it failed (secrets scrubbed).
    trace: Option<String>,
}

impl Status {
    /// A state without trace.
    fn new(state: State) -> Status {
        Status { state, trace: None }
    }

    /// `FAILED` with `trace`.
    fn failed(trace: String) -> Status {
        Status {
            state: State::Failed,
            trace: Some(trace),
        }
    }

    /// A connector's `{"state","worker_id"[,"trace"]}`.
    fn connector_state(&self, worker_id: &str) -> ConnectorState {
        ConnectorState {
            state: self.state,
            worker_id: worker_id.to_string(),
            trace: self.trace.clone(),
        }
    }

    /// Task `id`'s `{"id","state","worker_id"[,"trace"]}`.
    fn task_state(&self, worker_id: &str, id: usize) -> TaskState {
        TaskState {
            id,
            state: self.state,
            worker_id: worker_id.to_string(),
            trace: self.trace.clone(),
        }
    }
}

/// One task as the REST API sees it.
#[derive(Debug, Clone)]
struct TaskView {
    /// Its status.
    status: Status,
    /// Bumped by each restart request; a running task of an older epoch is restarted.
    epoch: u64,
}

impl TaskView {
    /// A task not started yet.
    fn new() -> TaskView {
        TaskView {
            status: Status::new(State::Unassigned),
            epoch: 0,
        }
    }
}

/// What a connector should be doing and what it is doing, shared between the REST API and
/// its supervisor.
#[derive(Debug)]
struct View {
    /// The config as submitted (secrets included; never returned unmasked).
    config: BTreeMap<String, String>,
    /// Its class.
    plugin: Plugin,
    /// Bumped by each new config.
    generation: u64,
    /// What it should be doing.
    target: TargetState,
    /// Deleted: the supervisor stops the tasks and exits.
    deleted: bool,
    /// Bumped by every change; the supervisor reports the version it converged on.
    version: u64,
    /// Bumped by each connector restart request (retries a config that failed to parse).
    restarts: u64,
    /// The connector's status.
    connector: Status,
    /// Its tasks' statuses (empty while stopped).
    tasks: Vec<TaskView>,
}

/// One connector.
#[derive(Debug)]
struct Connector {
    /// Its name.
    name: String,
    /// Desired and current state.
    view: Mutex<View>,
    /// Wakes the supervisor.
    wake: Notify,
    /// The last version the supervisor converged on.
    applied: watch::Sender<u64>,
    /// The supervisor.
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl Connector {
    /// The view, even if a panic poisoned the lock.
    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a change and wakes the supervisor; returns the change's version.
    fn changed(&self, view: &mut View) -> u64 {
        view.version += 1;
        self.wake.notify_one();
        view.version
    }

    /// Waits until the supervisor converged on `version` (or `timeout` passed).
    async fn wait_applied(&self, version: u64, timeout: Duration) {
        let mut rx = self.applied.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|v| *v >= version)).await;
    }
}

/// Everything the worker shares.
#[derive(Debug)]
struct Shared {
    /// The worker's settings.
    config: WorkerConfig,
    /// `host:port`, reported as every status's `worker_id`.
    worker_id: String,
    /// The Kafka cluster id.
    cluster_id: String,
    /// The state topics.
    store: Arc<StateStore>,
    /// Connectors by name.
    connectors: Mutex<BTreeMap<String, Arc<Connector>>>,
    /// Serializes changes (as Kafka Connect's herder does), so check-then-write is atomic.
    admin: tokio::sync::Mutex<()>,
    /// Set once the worker is shutting down.
    stopping: AtomicBool,
    /// Target states by connector, as read from the config topic.
    targets: Mutex<BTreeMap<String, TargetState>>,
    /// The offset of the last config record applied.
    applied: watch::Sender<i64>,
    /// What runs here: `None` on a lone worker (everything), else the leader's assignment.
    owned: Mutex<Option<Work>>,
    /// The last status record of every unit (kept in a cluster).
    statuses: Mutex<BTreeMap<String, StatusRecord>>,
    /// The work the configs ask for, for the herder.
    configured: watch::Sender<Configured>,
    /// This worker's REST URL (`http://host:port/`), as the group knows it.
    url: String,
    /// The leader's URL, in a cluster (`None` while unknown).
    leader: watch::Sender<Option<String>>,
    /// TLS for requests forwarded to an HTTPS leader (in a cluster whose REST API is HTTPS, or
    /// with `rest_ca` set).
    forward_tls: Option<Arc<rustls::ClientConfig>>,
    /// The herder (in a cluster): stops it, and its task.
    herder: Mutex<Option<(ShutdownTrigger, JoinHandle<()>)>>,
    /// The state topic readers (stop when dropped).
    tails: Mutex<Vec<Tail>>,
}

/// The worker: cheap to clone, shared by every request handler.
#[derive(Debug, Clone)]
pub struct Worker {
    /// The shared state.
    shared: Arc<Shared>,
}

/// A connector config from a request, checked: its class and its validated settings.
fn check_config(config: &BTreeMap<String, String>) -> Result<Plugin, ApiError> {
    let Some(class) = config
        .get("connector.class")
        .filter(|c| !c.trim().is_empty())
    else {
        return Err(ApiError::bad_request(format!(
            "Connector config {} contains no connector type",
            json!(mask::mask_config(config))
        )));
    };
    let plugin = Plugin::lookup(class)?;
    let v = TaskPlan::validate(plugin, config);
    if !v.errors.is_empty() {
        return Err(ApiError::bad_request(plugins::invalid_config_message(
            &v.errors, config,
        )));
    }
    Ok(plugin)
}

impl Worker {
    /// A worker over `store`, starting every restored connector in its target state and
    /// following the config topic (and, in a cluster, the status topic and the group).
    pub fn start(
        config: WorkerConfig,
        worker_id: String,
        store: Arc<StateStore>,
        restored: Restored,
    ) -> Result<Worker, augur_core::Error> {
        let applied = match restored.config_from.first() {
            Some((_, rdkafka::Offset::Offset(n))) => n - 1,
            _ => -1,
        };
        let cluster = config.cluster.enabled;
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://{worker_id}/");
        let forward_tls = crate::forward::client_tls(&config)?;
        let worker = Worker {
            shared: Arc::new(Shared {
                worker_id,
                cluster_id: restored.cluster_id,
                store,
                connectors: Mutex::new(BTreeMap::new()),
                admin: tokio::sync::Mutex::new(()),
                stopping: AtomicBool::new(false),
                targets: Mutex::new(BTreeMap::new()),
                applied: watch::Sender::new(applied),
                owned: Mutex::new(cluster.then(Work::default)),
                statuses: Mutex::new(restored.statuses),
                configured: watch::Sender::new((Work::default(), applied)),
                url,
                leader: watch::Sender::new(None),
                forward_tls,
                herder: Mutex::new(None),
                tails: Mutex::new(Vec::new()),
                config,
            }),
        };
        for (name, stored) in restored.connectors {
            let plugin = log::plugin_of(&stored.config);
            worker.targets().insert(name.clone(), stored.target);
            tracing::info!(connector = %name, target = ?stored.target, "resuming connector");
            worker.insert(name, stored.config, plugin, stored.target);
        }
        worker.publish_configured();
        let cfg = &worker.shared.config;
        let (config_tail, rx) = tail::follow(cfg, &cfg.config_topic, &restored.config_from)?;
        tokio::spawn(worker.clone().apply_log(rx));
        let mut tails = vec![config_tail];
        if cluster {
            let (status_tail, rx) = tail::follow(cfg, &cfg.status_topic, &restored.status_from)?;
            tokio::spawn(worker.clone().follow_statuses(rx));
            tails.push(status_tail);
            worker.start_herder()?;
        }
        *worker
            .shared
            .tails
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = tails;
        Ok(worker)
    }

    /// The worker id (`host:port`).
    pub fn worker_id(&self) -> &str {
        &self.shared.worker_id
    }

    /// The Kafka cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.shared.cluster_id
    }

    /// The connectors map.
    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Connector>>> {
        self.shared
            .connectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A connector, or 404.
    fn get(&self, name: &str) -> Result<Arc<Connector>, ApiError> {
        self.map()
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::connector_not_found(name))
    }

    /// 503 once the worker is shutting down.
    fn check_running(&self) -> Result<(), ApiError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(ApiError::new(
                ApiErrorKind::NotReady,
                "The worker is shutting down",
            ));
        }
        Ok(())
    }

    /// Adds a connector and starts its supervisor.
    fn insert(
        &self,
        name: String,
        config: BTreeMap<String, String>,
        plugin: Plugin,
        target: TargetState,
    ) -> Arc<Connector> {
        let (applied, _) = watch::channel(0);
        let conn = Arc::new(Connector {
            name: name.clone(),
            view: Mutex::new(View {
                config,
                plugin,
                generation: 1,
                target,
                deleted: false,
                version: 1,
                restarts: 0,
                connector: Status::new(State::Unassigned),
                tasks: Vec::new(),
            }),
            wake: Notify::new(),
            applied,
            supervisor: Mutex::new(None),
        });
        let handle = tokio::spawn(supervise(self.shared.clone(), conn.clone()));
        *conn.supervisor.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        self.map().insert(name, conn.clone());
        conn
    }

    /// Connector names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    /// `ConnectorInfo`: `{"name","config","tasks","type"}` (secrets hidden).
    pub(crate) fn info(&self, name: &str) -> Result<ConnectorInfo, ApiError> {
        let conn = self.get(name)?;
        let v = conn.view();
        let tasks = (0..v.tasks.len())
            .map(|task| ConnectorTaskId {
                connector: name.to_string(),
                task,
            })
            .collect();
        Ok(ConnectorInfo {
            name: name.to_string(),
            config: mask::mask_config(&v.config),
            tasks,
            connector_type: v.plugin.connector_type(),
        })
    }

    /// The config (secrets hidden).
    pub fn config(&self, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let conn = self.get(name)?;
        let v = conn.view();
        Ok(mask::mask_config(&v.config))
    }

    /// `ConnectorStateInfo`: `{"name","connector":{…},"tasks":[…],"type"}`.
    pub(crate) fn status(&self, name: &str) -> Result<ConnectorStateInfo, ApiError> {
        let conn = self.get(name)?;
        let v = conn.view();
        Ok(self.status_of(name, &v))
    }

    /// The status body of a view.
    fn status_of(&self, name: &str, v: &View) -> ConnectorStateInfo {
        let tasks = v
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| self.task_state(name, i, &t.status))
            .collect();
        ConnectorStateInfo {
            name: name.to_string(),
            connector: self.connector_state(name, v),
            tasks,
            connector_type: v.plugin.connector_type(),
        }
    }

    /// One task's status, or 404.
    pub(crate) fn task_status(&self, name: &str, task: usize) -> Result<TaskState, ApiError> {
        let conn = self.get(name)?;
        let v = conn.view();
        v.tasks
            .get(task)
            .map(|t| self.task_state(name, task, &t.status))
            .ok_or_else(|| {
                ApiError::new(
                    ApiErrorKind::NotFound,
                    format!("No status found for task {name}-{task}"),
                )
            })
    }

    /// `[{"id":{"connector","task"},"config":{…}}]` (secrets hidden).
    pub(crate) fn tasks(&self, name: &str) -> Result<Vec<TaskInfo>, ApiError> {
        let conn = self.get(name)?;
        let v = conn.view();
        let mut config = mask::mask_config(&v.config);
        config.insert("task.class".into(), v.plugin.task_class().into());
        let tasks = (0..v.tasks.len())
            .map(|task| TaskInfo {
                id: ConnectorTaskId {
                    connector: name.to_string(),
                    task,
                },
                config: config.clone(),
            })
            .collect();
        Ok(tasks)
    }

    /// `POST /connectors`: creates a connector in `initial` state. 409 if it exists, 400 for
    /// an invalid config.
    pub(crate) async fn create(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        initial: TargetState,
    ) -> Result<ConnectorInfo, ApiError> {
        self.check_running()?;
        let plugin = check_config(&config)?;
        let _admin = self.shared.admin.lock().await;
        if self.map().contains_key(name) {
            return Err(ApiError::connector_exists(name));
        }
        let store = &self.shared.store;
        // The target state goes first: a crash in between leaves an unused target state, not
        // a running connector that was meant to be paused.
        if initial != TargetState::Started {
            store.put_target_state(name, initial).await.map_err(|e| {
                ApiError::internal(format!("Failed to store the connector's state: {e}"))
            })?;
        }
        let offset = store.put_config(name, &config).await.map_err(|e| {
            ApiError::internal(format!("Failed to store the connector config: {e}"))
        })?;
        tracing::debug!(connector = %name, class = %plugin.class(), initial = ?initial, "connector config written");
        self.read_back(offset).await?;
        self.info(name)
    }

    /// `PUT /connectors/{name}/config`: creates (`true`) or updates (`false`) a connector; an
    /// update restarts its tasks with the new config.
    pub(crate) async fn put_config(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
    ) -> Result<(bool, ConnectorInfo), ApiError> {
        self.check_running()?;
        let existing = self.map().get(name).cloned();
        let Some(conn) = existing else {
            return self
                .create(name, config, TargetState::Started)
                .await
                .map(|info| (true, info));
        };
        let config = mask::unmask_with(config, &conn.view().config);
        check_config(&config)?;
        let _admin = self.shared.admin.lock().await;
        Ok((false, self.replace_config(&conn, name, config).await?))
    }

    /// Replaces an existing connector's config (the caller holds the admin lock) and restarts
    /// its tasks with it; an unchanged config changes nothing.
    async fn replace_config(
        &self,
        conn: &Connector,
        name: &str,
        config: BTreeMap<String, String>,
    ) -> Result<ConnectorInfo, ApiError> {
        let plugin = check_config(&config)?;
        let (deleted, unchanged) = {
            let v = conn.view();
            (v.deleted, v.config == config)
        };
        if deleted {
            return Err(ApiError::connector_not_found(name));
        }
        if unchanged {
            return self.info(name);
        }
        let offset = self
            .shared
            .store
            .put_config(name, &config)
            .await
            .map_err(|e| {
                ApiError::internal(format!("Failed to store the connector config: {e}"))
            })?;
        tracing::debug!(connector = %name, class = %plugin.class(), "connector config written");
        self.read_back(offset).await?;
        self.info(name)
    }

    /// `DELETE /connectors/{name}`: removes the connector after stopping its tasks (its
    /// offsets stay).
    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let conn = self.get(name)?;
        let _admin = self.shared.admin.lock().await;
        let deleted = conn.view().deleted;
        if deleted {
            return Err(ApiError::connector_not_found(name));
        }
        let offset = self
            .shared
            .store
            .delete_connector(name)
            .await
            .map_err(|e| ApiError::internal(format!("Failed to delete the connector: {e}")))?;
        self.read_back(offset).await?;
        // The lock is held until the tasks are down: a connector created again under the
        // same name waits, instead of racing the old tasks (for a replication slot, say).
        let handle = conn
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = tokio::time::timeout(self.shared.config.shutdown_timeout, h).await;
        }
        drop(_admin);
        Ok(())
    }

    /// `pause`, `resume` and `stop`: sets the target state; with `wait`, returns once the
    /// tasks are down.
    pub async fn set_target(
        &self,
        name: &str,
        target: TargetState,
        wait: bool,
    ) -> Result<(), ApiError> {
        self.check_running()?;
        let conn = self.get(name)?;
        let version = {
            let _admin = self.shared.admin.lock().await;
            let current = conn.view().target;
            if current != target {
                let offset = self
                    .shared
                    .store
                    .put_target_state(name, target)
                    .await
                    .map_err(|e| {
                        ApiError::internal(format!("Failed to store the connector's state: {e}"))
                    })?;
                self.read_back(offset).await?;
            }
            conn.view().version
        };
        if wait {
            conn.wait_applied(version, self.shared.config.shutdown_timeout)
                .await;
        }
        Ok(())
    }

    /// `POST /connectors/{name}/restart`: restarts the connector (retrying a config that
    /// failed) and, with `include_tasks`, its tasks (with `only_failed`, the failed ones).
    /// Returns the status to answer with 202, or `None` for the plain restart (204).
    pub(crate) async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Option<ConnectorStateInfo>, ApiError> {
        self.check_running()?;
        let conn = self.get(name)?;
        let before = self.status_of(name, &conn.view());
        let restart = Restart::Connector {
            only_failed,
            include_tasks,
        };
        self.request_restart(name, restart).await?;
        tracing::info!(connector = %name, include_tasks, only_failed, "connector restart requested");
        if !include_tasks && !only_failed {
            return Ok(None);
        }
        Ok(Some(restart_plan(before, include_tasks, only_failed)))
    }

    /// `POST /connectors/{name}/tasks/{task}/restart`.
    pub async fn restart_task(&self, name: &str, task: usize) -> Result<(), ApiError> {
        self.check_running()?;
        let conn = self.get(name)?;
        if task >= conn.view().tasks.len() {
            return Err(ApiError::new(
                ApiErrorKind::NotFound,
                format!("Task {name}-{task} not found"),
            ));
        }
        self.request_restart(name, Restart::Task(task)).await?;
        tracing::info!(connector = %name, task, "task restart requested");
        Ok(())
    }

    /// Writes a restart request and waits until it was applied here.
    async fn request_restart(&self, name: &str, restart: Restart) -> Result<(), ApiError> {
        let _admin = self.shared.admin.lock().await;
        let offset = self
            .shared
            .store
            .put_restart(name, restart)
            .await
            .map_err(|e| ApiError::internal(format!("Failed to store the restart request: {e}")))?;
        self.read_back(offset).await
    }

    /// `GET /connectors/{name}/offsets`: a source's stored offsets, or a sink's committed
    /// group offsets.
    pub(crate) async fn offsets(&self, name: &str) -> Result<ConnectorOffsets, ApiError> {
        let conn = self.get(name)?;
        let (plugin, config) = {
            let v = conn.view();
            (v.plugin, v.config.clone())
        };
        if plugin == Plugin::Capture {
            let offsets = self
                .shared
                .store
                .offsets(name)
                .into_iter()
                .map(|(partition, offset)| ConnectorOffset::source(partition, offset))
                .collect();
            return Ok(ConnectorOffsets { offsets });
        }
        let plan = TaskPlan::build(plugin, &config, &self.shared.config)
            .map_err(|v| {
                ApiError::bad_request(plugins::invalid_config_message(&v.errors, &config))
            })?
            .0;
        let Some((group, topics)) = plan.group() else {
            return Ok(ConnectorOffsets::default());
        };
        let committed = group_offsets(&self.shared.config, group, topics)
            .await
            .map_err(|e| {
                ApiError::internal(format!(
                    "Failed to read the connector's offsets: {}",
                    e.full_message()
                ))
            })?;
        let offsets = committed.into_iter().map(ConnectorOffset::sink).collect();
        Ok(ConnectorOffsets { offsets })
    }

    /// Stops every connector's tasks (drained and committed, up to the shutdown timeout) and
    /// flushes the state topics. Target states are kept: the next start resumes them.
    pub async fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        // In a cluster, leaving the group first hands this worker's work to the others.
        self.stop_herder().await;
        let connectors: Vec<Arc<Connector>> = self.map().values().cloned().collect();
        let mut handles = Vec::new();
        for c in &connectors {
            c.wake.notify_one();
            if let Some(h) = c
                .supervisor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                handles.push(h);
            }
        }
        let all = futures_join(handles);
        if tokio::time::timeout(
            self.shared.config.shutdown_timeout + Duration::from_secs(5),
            all,
        )
        .await
        .is_err()
        {
            tracing::warn!("connectors did not stop within the shutdown timeout");
        }
        self.shared.store.flush(Duration::from_secs(10)).await;
        self.shared
            .tails
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        tracing::info!(connectors = connectors.len(), "worker stopped");
    }
}

/// Awaits every handle.
async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

/// A running task.
#[derive(Debug)]
struct Running {
    /// The epoch it was started for.
    epoch: u64,
    /// Asks it to stop.
    trigger: ShutdownTrigger,
    /// Its wrapper (reports the outcome).
    join: JoinHandle<()>,
    /// The task itself, aborted if it does not stop in time.
    abort: AbortHandle,
}

/// The parsed config of one generation.
#[derive(Debug)]
struct PlanState {
    /// The generation it was parsed from.
    generation: u64,
    /// The restart count it was parsed at (a failed parse is retried on restart).
    restarts: u64,
    /// The plan, or the 400-style message that explains why the config is invalid.
    result: Result<Arc<TaskPlan>, String>,
}

/// A connector's supervisor state.
#[derive(Debug, Default)]
struct Supervisor {
    /// Running tasks by id.
    running: Vec<Option<Running>>,
    /// The current generation's plan.
    plan: Option<PlanState>,
    /// Status records as last written.
    published: BTreeMap<String, StatusRecord>,
}

/// What a supervisor pass works from: the connector's view as the pass began.
#[derive(Debug)]
struct Pass {
    /// The connector's config.
    config: BTreeMap<String, String>,
    /// The config's generation.
    generation: u64,
    /// The target state.
    target: TargetState,
    /// The restart count.
    restarts: u64,
    /// The view's version.
    version: u64,
    /// Deleted, or the worker is stopping: stop everything and finish.
    finish: bool,
    /// How long tasks get to stop.
    timeout: Duration,
}

impl Pass {
    /// Reads the connector's view (briefly locked) and whether the worker is stopping.
    fn begin(shared: &Shared, conn: &Connector) -> Pass {
        let (config, generation, target, deleted, restarts, version) = {
            let v = conn.view();
            (
                v.config.clone(),
                v.generation,
                v.target,
                v.deleted,
                v.restarts,
                v.version,
            )
        };
        Pass {
            config,
            generation,
            target,
            restarts,
            version,
            finish: deleted || shared.stopping.load(Ordering::Acquire),
            timeout: shared.config.shutdown_timeout,
        }
    }
}

/// The tasks a pass wants running.
#[derive(Debug)]
struct Wanted {
    /// The current plan, if the config is valid.
    plan: Option<Arc<TaskPlan>>,
    /// The task count (0 without a plan).
    n: usize,
    /// Whether tasks should run at all.
    run: bool,
    /// Each task view's epoch (a restarted task has a new one).
    epochs: Vec<u64>,
    /// Whether each task runs on this worker.
    owned: Vec<bool>,
}

/// Parses `config` into a task plan (the class is looked up again: a stored config may name a
/// class this build does not have), logging warnings; or the message explaining why it is
/// invalid.
fn build_plan(
    shared: &Shared,
    name: &str,
    config: &BTreeMap<String, String>,
) -> Result<Arc<TaskPlan>, String> {
    let class = config
        .get("connector.class")
        .map(String::as_str)
        .unwrap_or("");
    let built = Plugin::lookup(class)
        .map_err(|e| e.message().to_string())
        .and_then(|p| {
            TaskPlan::build(p, config, &shared.config)
                .map_err(|v| plugins::invalid_config_message(&v.errors, config))
        });
    match built {
        Ok((plan, warnings)) => {
            for w in warnings {
                tracing::warn!(connector = %name, "{w}");
            }
            Ok(Arc::new(plan))
        }
        Err(msg) => {
            tracing::error!(connector = %name, "connector config is invalid; fix it with PUT /connectors/{{name}}/config");
            Err(msg)
        }
    }
}

/// Runs a connector's supervisor until it is deleted or the worker stops.
async fn supervise(shared: Arc<Shared>, conn: Arc<Connector>) {
    let mut sup = Supervisor::default();
    loop {
        let notified = conn.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (version, done) = sup.converge(&shared, &conn).await;
        sup.publish(&shared, &conn, done);
        conn.applied.send_replace(version);
        if done {
            // As in Kafka Connect, a deleted connector's active topics are forgotten — once
            // its tasks are down, so none records a topic again.
            if conn.view().deleted {
                shared.store.reset_topics(&conn.name);
            }
            break;
        }
        notified.await;
    }
}

impl Supervisor {
    /// One pass: parses a new config, stops and starts tasks, sets statuses. Returns the
    /// version converged on and whether the supervisor is done.
    async fn converge(&mut self, shared: &Arc<Shared>, conn: &Arc<Connector>) -> (u64, bool) {
        let pass = Pass::begin(shared, conn);

        // A new config (or a restart after a config that failed): stop everything, re-parse.
        let replan = self.plan.as_ref().is_none_or(|p| {
            p.generation != pass.generation || (p.result.is_err() && p.restarts != pass.restarts)
        });
        if replan && !pass.finish {
            self.replan(shared, conn, &pass).await;
        }

        let wanted = self.wanted(shared, conn, &pass);

        // Stop what must not run (paused, stopped, restarted, gone, shutting down).
        self.stop_unwanted(conn, &wanted, pass.timeout).await;

        // Start what should run.
        self.start_wanted(shared, conn, &wanted, pass.generation);

        // Statuses of everything not running.
        self.set_idle_statuses(conn, &pass);
        (pass.version, pass.finish)
    }

    /// Stops every task, parses the connector's config again and clears the task views.
    async fn replan(&mut self, shared: &Shared, conn: &Connector, pass: &Pass) {
        let all: Vec<(usize, Running)> = self
            .running
            .iter_mut()
            .enumerate()
            .filter_map(|(i, r)| r.take().map(|r| (i, r)))
            .collect();
        stop_tasks(&conn.name, all, pass.timeout).await;
        let result = build_plan(shared, &conn.name, &pass.config);
        {
            let mut v = conn.view();
            v.tasks.clear();
        }
        self.plan = Some(PlanState {
            generation: pass.generation,
            restarts: pass.restarts,
            result,
        });
    }

    /// The tasks this pass wants; sizes (or clears) the task views to match.
    fn wanted(&self, shared: &Shared, conn: &Connector, pass: &Pass) -> Wanted {
        let plan = self
            .plan
            .as_ref()
            .and_then(|p| p.result.as_ref().ok().cloned());
        let n = plan.as_ref().map_or(0, |p| p.task_count());
        let run = !pass.finish && pass.target == TargetState::Started && plan.is_some();
        let epochs: Vec<u64> = {
            let mut v = conn.view();
            if pass.target == TargetState::Stopped || plan.is_none() || pass.finish {
                if !pass.finish {
                    v.tasks.clear();
                }
            } else {
                v.tasks.resize_with(n, TaskView::new);
            }
            v.tasks.iter().map(|t| t.epoch).collect()
        };
        let owned = (0..n).map(|i| shared.owns(&conn.name, Some(i))).collect();
        Wanted {
            plan,
            n,
            run,
            epochs,
            owned,
        }
    }

    /// Stops the running tasks that are not wanted (or were restarted: another epoch), and
    /// sizes the running list to the task count.
    async fn stop_unwanted(&mut self, conn: &Connector, wanted: &Wanted, timeout: Duration) {
        let n = wanted.n;
        let mut to_stop = Vec::new();
        for (i, slot) in self.running.iter_mut().enumerate() {
            let keep = wanted.run
                && i < n
                && wanted.owned[i]
                && slot
                    .as_ref()
                    .is_some_and(|r| wanted.epochs.get(i) == Some(&r.epoch));
            if !keep && let Some(r) = slot.take() {
                to_stop.push((i, r));
            }
        }
        stop_tasks(&conn.name, to_stop, timeout).await;
        self.running.truncate(n);
        self.running.resize_with(n, || None);
    }

    /// Starts the wanted tasks that are not running.
    fn start_wanted(
        &mut self,
        shared: &Arc<Shared>,
        conn: &Arc<Connector>,
        wanted: &Wanted,
        generation: u64,
    ) {
        if wanted.run
            && let Some(plan) = &wanted.plan
        {
            for (i, epoch) in wanted.epochs.iter().enumerate().take(wanted.n) {
                if self.running[i].is_none() && wanted.owned[i] {
                    self.running[i] = Some(start_task(
                        shared,
                        conn,
                        plan.clone(),
                        i,
                        *epoch,
                        generation,
                    ));
                }
            }
        }
    }

    /// Sets the connector's status, and those of the tasks not running, unless a newer
    /// config arrived during the pass.
    fn set_idle_statuses(&self, conn: &Connector, pass: &Pass) {
        let mut v = conn.view();
        if v.generation != pass.generation {
            return;
        }
        let (target, finish) = (pass.target, pass.finish);
        v.connector = match (&self.plan, finish) {
            (_, true) => Status::new(State::Unassigned),
            (
                Some(PlanState {
                    result: Err(msg), ..
                }),
                _,
            ) => Status::failed(msg.clone()),
            _ => Status::new(match target {
                TargetState::Started => State::Running,
                TargetState::Paused => State::Paused,
                TargetState::Stopped => State::Stopped,
            }),
        };
        for (i, t) in v.tasks.iter_mut().enumerate() {
            if self.running.get(i).is_none_or(|r| r.is_none()) {
                t.status = Status::new(match (target, finish) {
                    (TargetState::Paused, false) => State::Paused,
                    _ => State::Unassigned,
                });
            }
        }
    }

    /// Writes the status records of the units this worker runs that changed since the last
    /// pass; a unit it no longer runs gets `UNASSIGNED` (unless another worker's state is
    /// there already), one that is gone a tombstone.
    fn publish(&mut self, shared: &Shared, conn: &Connector, done: bool) {
        let name = &conn.name;
        let mut now: BTreeMap<String, StatusRecord> = BTreeMap::new();
        let mut exists: BTreeSet<String> = BTreeSet::new();
        let (deleted, generation) = {
            let v = conn.view();
            let record = |s: &Status| StatusRecord {
                state: s.state,
                trace: s.trace.clone(),
                worker_id: shared.worker_id.clone(),
                generation: v.generation,
            };
            if !v.deleted {
                let units = std::iter::once((None, &v.connector)).chain(
                    v.tasks
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (Some(i), &t.status)),
                );
                for (unit, status) in units {
                    let key = status_key(name, unit);
                    if shared.owns(name, unit) {
                        now.insert(key.clone(), record(status));
                    }
                    exists.insert(key);
                }
            }
            (v.deleted, v.generation)
        };
        for (k, val) in &now {
            if self.published.get(k) != Some(val) {
                shared.store.put_status(k.clone(), Some(val));
            }
        }
        for k in self.published.keys().filter(|k| !now.contains_key(*k)) {
            if !exists.contains(k) {
                shared.store.put_status(k.clone(), None);
            } else if shared.may_unassign(k) {
                let unassigned = StatusRecord {
                    state: State::Unassigned,
                    trace: None,
                    worker_id: shared.worker_id.clone(),
                    generation,
                };
                shared.store.put_status(k.clone(), Some(&unassigned));
            }
        }
        self.published = now;
        if done && deleted {
            tracing::debug!(connector = %name, "status records removed");
        }
    }
}

/// Starts task `id` of `plan` and marks it `RUNNING`; its wrapper records how it ends.
fn start_task(
    shared: &Arc<Shared>,
    conn: &Arc<Connector>,
    plan: Arc<TaskPlan>,
    id: usize,
    epoch: u64,
    generation: u64,
) -> Running {
    let (trigger, shutdown) = shutdown::channel();
    let stop = shutdown.clone();
    let store = shared.store.clone();
    let task = tokio::spawn(async move { plan.run(id, store, shutdown).await });
    let abort = task.abort_handle();
    {
        let mut v = conn.view();
        if let Some(t) = v.tasks.get_mut(id) {
            t.status = Status::new(State::Running);
        }
    }
    tracing::info!(connector = %conn.name, task = id, "task started");
    let conn2 = conn.clone();
    let join = tokio::spawn(async move {
        let result = match task.await {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(augur_core::Error::new(
                augur_core::ErrorKind::Internal,
                format!("the task panicked: {e}"),
            )),
        };
        let asked = stop.is_triggered();
        let name = &conn2.name;
        match result {
            Ok(()) if asked => tracing::info!(connector = %name, task = id, "task stopped"),
            Ok(()) => tracing::info!(connector = %name, task = id, "task finished"),
            Err(e) if asked => {
                tracing::warn!(connector = %name, task = id, error = %e.full_message(), "task failed while stopping; its last changes will be replayed");
            }
            Err(e) => {
                let mut trace = e.full_message();
                if let Some(h) = e.hint() {
                    trace.push_str("\n  fix: ");
                    trace.push_str(h);
                }
                let mut v = conn2.view();
                let trace = mask::scrub(&trace, &v.config);
                tracing::error!(connector = %name, task = id, kind = e.kind().label(), error = %trace, "task failed");
                if v.generation == generation
                    && let Some(t) = v.tasks.get_mut(id).filter(|t| t.epoch == epoch)
                {
                    t.status = Status::failed(trace);
                }
                drop(v);
                conn2.wake.notify_one();
            }
        }
    });
    Running {
        epoch,
        trigger,
        join,
        abort,
    }
}

/// Asks every task in `tasks` to stop, then waits for them (up to `timeout` in all); a task
/// that does not stop in time is aborted.
async fn stop_tasks(name: &str, tasks: Vec<(usize, Running)>, timeout: Duration) {
    if tasks.is_empty() {
        return;
    }
    for (_, r) in &tasks {
        r.trigger.trigger();
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (id, r) in tasks {
        let Running { join, abort, .. } = r;
        if tokio::time::timeout_at(deadline, join).await.is_err() {
            tracing::warn!(connector = %name, task = id, "task did not stop in time; aborted");
            abort.abort();
        }
    }
}

/// The answer to a restart with tasks, Kafka Connect's `RestartPlan`: judged from the status
/// before the request, what it restarts shows `RESTARTING` (the tasks may be running again
/// by the time the answer is sent).
fn restart_plan(
    mut s: ConnectorStateInfo,
    include_tasks: bool,
    only_failed: bool,
) -> ConnectorStateInfo {
    let selected = |state: State| !only_failed || state == State::Failed;
    if selected(s.connector.state) {
        s.connector.state = State::Restarting;
    }
    for t in s.tasks.iter_mut() {
        if include_tasks && selected(t.state) {
            t.state = State::Restarting;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::{ConnectorState, ConnectorType, TaskState};

    fn info(connector: State, tasks: &[State]) -> ConnectorStateInfo {
        let task = |(id, &state): (usize, &State)| TaskState {
            id,
            state,
            worker_id: "w:1".into(),
            trace: None,
        };
        ConnectorStateInfo {
            name: "c".into(),
            connector: ConnectorState {
                state: connector,
                worker_id: "w:1".into(),
                trace: None,
            },
            tasks: tasks.iter().enumerate().map(task).collect(),
            connector_type: ConnectorType::Sink,
        }
    }

    fn states(s: &ConnectorStateInfo) -> Vec<State> {
        let tasks = s.tasks.iter().map(|t| t.state);
        std::iter::once(s.connector.state).chain(tasks).collect()
    }

    #[test]
    fn the_restart_answer_marks_what_the_request_restarts() {
        use State::{Failed, Restarting, Running};
        let s = info(Running, &[Failed, Running]);
        let all = restart_plan(s.clone(), true, false);
        assert_eq!(states(&all), [Restarting, Restarting, Restarting]);
        let failed = restart_plan(s.clone(), true, true);
        assert_eq!(states(&failed), [Running, Restarting, Running]);
        let connector_only = restart_plan(s, false, false);
        assert_eq!(states(&connector_only), [Restarting, Failed, Running]);
    }
}
