//! Which connectors and tasks run here: all of them on a lone worker; in a cluster, what the
//! group's leader assigned to this worker (the herder applies each assignment). Statuses of
//! the units another worker runs come from the status topic, with that worker's id.

use std::collections::BTreeSet;

use tokio::sync::mpsc;

use super::{Shared, Status, View, Worker};
use crate::cluster::assignor::Work;
use crate::cluster::herder::Herder;
use crate::cluster::member::MemberConfig;
use crate::entities::{ConnectorState, TaskState};
use crate::store::{StatusRecord, TargetState};
use crate::tail::Followed;
use crate::tasks::TaskPlan;

/// The status-topic key of a connector (`task: None`) or one of its tasks.
pub(super) fn status_key(name: &str, task: Option<usize>) -> String {
    match task {
        None => format!("status-connector-{name}"),
        Some(t) => format!("status-task-{name}-{t}"),
    }
}

impl Shared {
    /// Whether this worker runs `name` (`task: None`) or its task `task`.
    pub(super) fn owns(&self, name: &str, task: Option<usize>) -> bool {
        let owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        match (&*owned, task) {
            (None, _) => true,
            (Some(w), None) => w.connectors.contains(name),
            (Some(w), Some(t)) => w.tasks.contains(&(name.to_string(), t as i32)),
        }
    }

    /// Whether this worker may write `UNASSIGNED` for a unit it no longer runs: only while the
    /// status topic still says this worker has it (Kafka Connect's `putSafe`), so it never
    /// overwrites the new owner's state.
    pub(super) fn may_unassign(&self, key: &str) -> bool {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .is_none_or(|r| r.worker_id == self.worker_id)
    }
}

impl Worker {
    /// The units the configs ask for: every connector, and the tasks of each one that is not
    /// stopped and whose config is valid (`tasks.max` of them, derived on every worker alike).
    fn configured_work(&self) -> Work {
        let mut work = Work::default();
        for (name, conn) in self.map().iter() {
            let v = conn.view();
            work.connectors.insert(name.clone());
            if v.target == TargetState::Stopped {
                continue;
            }
            if let Ok((plan, _)) = TaskPlan::build(v.plugin, &v.config, &self.shared.config) {
                for t in 0..plan.task_count() {
                    work.tasks.insert((name.clone(), t as i32));
                }
            }
        }
        work
    }

    /// Tells the herder what the configs ask for, when it changed.
    pub(super) fn publish_configured(&self) {
        let work = self.configured_work();
        let offset = *self.shared.applied.borrow();
        self.shared.configured.send_if_modified(|c| {
            let changed = c.0 != work;
            if changed {
                *c = (work, offset);
            }
            changed
        });
    }

    /// Applies an assignment: stops `stop` (drained and committed) and starts `start`; returns
    /// once the connectors' supervisors have done so.
    pub(crate) async fn reassign(&self, stop: Work, start: Work) {
        let names: BTreeSet<String> = [&stop, &start]
            .iter()
            .flat_map(|w| {
                w.connectors
                    .iter()
                    .cloned()
                    .chain(w.tasks.iter().map(|(c, _)| c.clone()))
            })
            .collect();
        {
            let mut owned = self.shared.owned.lock().unwrap_or_else(|e| e.into_inner());
            let now = owned.take().unwrap_or_default();
            *owned = Some(now.without(&stop).with(&start));
        }
        let mut waits = Vec::new();
        for name in &names {
            if let Ok(conn) = self.get(name) {
                let version = conn.changed(&mut conn.view());
                waits.push((conn, version));
            }
        }
        for (conn, version) in waits {
            conn.wait_applied(version, self.shared.config.shutdown_timeout)
                .await;
        }
        tracing::info!(
            stopped = stop.connectors.len() + stop.tasks.len(),
            started = start.connectors.len() + start.tasks.len(),
            "assignment applied"
        );
    }

    /// Keeps the last status record of every unit, as read from the status topic.
    pub(super) async fn follow_statuses(self, mut rx: mpsc::Receiver<Followed>) {
        while let Some((_, (key, value))) = rx.recv().await {
            let Some(key) = key.and_then(|k| String::from_utf8(k).ok()) else {
                continue;
            };
            if !key.starts_with("status-") {
                continue;
            }
            let mut map = self.statuses();
            match value.as_deref().and_then(StatusRecord::parse) {
                Some(r) => map.insert(key, r),
                None => map.remove(&key),
            };
        }
    }

    /// Status records by key.
    fn statuses(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, StatusRecord>> {
        self.shared
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A unit's status: this worker's own if it runs the unit, else the status topic's.
    fn unit_status(&self, name: &str, task: Option<usize>, local: &Status) -> (Status, String) {
        let own = || (local.clone(), self.shared.worker_id.clone());
        if self.shared.owns(name, task) {
            return own();
        }
        match self.statuses().get(&status_key(name, task)) {
            Some(r) => (
                Status {
                    state: r.state,
                    trace: r.trace.clone(),
                },
                r.worker_id.clone(),
            ),
            None => own(),
        }
    }

    /// The connector's `{"state","worker_id"[,"trace"]}`.
    pub(super) fn connector_state(&self, name: &str, v: &View) -> ConnectorState {
        let (s, worker) = self.unit_status(name, None, &v.connector);
        s.connector_state(&worker)
    }

    /// Task `id`'s `{"id","state","worker_id"[,"trace"]}`.
    pub(super) fn task_state(&self, name: &str, id: usize, local: &Status) -> TaskState {
        let (s, worker) = self.unit_status(name, Some(id), local);
        s.task_state(&worker, id)
    }

    /// Joins the worker cluster: the herder runs until the worker shuts down.
    pub(super) fn start_herder(&self) -> Result<(), augur_core::Error> {
        let cfg = &self.shared.config;
        let security = cfg.link_security()?.load()?;
        let member = MemberConfig {
            bootstrap: cfg
                .bootstrap_servers
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
            group_id: cfg.group_id.clone(),
            client_id: format!("{}-worker", cfg.group_id),
            protocol_type: "connect".into(),
            session_timeout: cfg.cluster.session_timeout,
            rebalance_timeout: cfg.cluster.rebalance_timeout,
            heartbeat_interval: cfg.cluster.heartbeat_interval,
            security,
        };
        let max_delay = cfg.cluster.max_delay.as_millis().min(i32::MAX as u128) as i32;
        let herder = Herder::new(member, self.shared.url.clone(), max_delay)
            .publish_leader(self.shared.leader.clone());
        let configured = self.shared.configured.subscribe();
        let (trigger, shutdown) = augur_core::shutdown::channel();
        let worker = self.clone();
        let apply = move |stop, start| {
            let w = worker.clone();
            async move { w.reassign(stop, start).await }
        };
        let handle = tokio::spawn(async move {
            if let Err(e) = herder.run(configured, apply, shutdown).await {
                tracing::warn!(error = %e.full_message(), "leaving the worker group failed");
            }
        });
        *self.shared.herder.lock().unwrap_or_else(|e| e.into_inner()) = Some((trigger, handle));
        Ok(())
    }

    /// The TLS client config for forwarding to an HTTPS leader, when there is one.
    pub(crate) fn forward_tls(&self) -> Option<std::sync::Arc<rustls::ClientConfig>> {
        self.shared.forward_tls.clone()
    }

    /// In a cluster: the leader's URL (`None` while unknown) and this worker's; `None` on a
    /// lone worker.
    pub(crate) fn leadership(&self) -> Option<(Option<String>, String)> {
        let cfg = &self.shared.config;
        cfg.cluster.enabled.then(|| {
            let leader = self.shared.leader.borrow().clone();
            (leader, self.shared.url.clone())
        })
    }

    /// Leaves the cluster: this worker's work stops here (and moves to the others).
    pub(super) async fn stop_herder(&self) {
        let herder = self
            .shared
            .herder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((trigger, handle)) = herder {
            trigger.trigger();
            let limit = self.shared.config.shutdown_timeout + std::time::Duration::from_secs(5);
            if tokio::time::timeout(limit, handle).await.is_err() {
                tracing::warn!("leaving the worker group took too long");
            }
        }
    }
}
