//! The membership loop of one worker in a cluster, as Kafka Connect's distributed herder runs
//! it: join with this worker's URL, config offset and current allocation; the leader assigns
//! (incremental cooperative) and syncs; the worker stops what was revoked and starts what was
//! assigned (through the caller's `apply`), then rejoins at once after a revocation, after the
//! leader's scheduled delay, when the configured work changes, or when a heartbeat says the
//! group is rebalancing. Leaving on shutdown moves its work at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use augur_core::Error;
use augur_core::shutdown::Shutdown;
use tokio::sync::watch;

use super::assignor::{Assignor, Work};
use super::member::{Beat, Member, MemberConfig};
use super::wire::{Assignment, WorkerMetadata};

/// The configured work and the config offset it was read at, as the worker's config reader
/// publishes it.
pub type Configured = (Work, i64);

/// One worker's membership.
#[derive(Debug)]
pub struct Herder {
    /// The group member.
    member: Member,
    /// The leader's assignor (used while this worker leads).
    assignor: Assignor,
    /// This worker's REST URL.
    url: String,
    /// What this worker runs.
    running: Work,
    /// Bumped by every rejoin, so the metadata always changes (Tansu ignores an identical
    /// rejoin).
    rejoin: i32,
    /// The last generation this worker completed.
    last_completed: i32,
    /// The leader's URL, once known.
    leader_url: Option<String>,
    /// Where the leader's URL is published (`None` while unknown).
    leader_tx: Option<watch::Sender<Option<String>>>,
}

/// Connect's protocols, `compatible` (incremental cooperative) first.
fn protocols(url: &str, offset: i64, running: &Work, rejoin: i32) -> Vec<(String, Vec<u8>)> {
    let allocation = (!running.is_empty()).then(|| {
        Assignment {
            version: 1,
            assigned: running.to_units(),
            ..Assignment::default()
        }
        .encode()
    });
    let meta = |version| WorkerMetadata {
        version,
        url: url.to_string(),
        config_offset: offset,
        allocation: if version >= 1 {
            allocation.clone()
        } else {
            None
        },
        rejoin: Some(rejoin),
    };
    vec![
        ("compatible".into(), meta(1).encode()),
        ("default".into(), meta(0).encode()),
    ]
}

impl Herder {
    /// A worker with REST URL `url` that has not joined yet; as leader it holds lost work back
    /// for `max_delay_ms` (`scheduled.rebalance.max.delay.ms`).
    pub fn new(cfg: MemberConfig, url: impl Into<String>, max_delay_ms: i32) -> Herder {
        Herder {
            member: Member::new(cfg),
            assignor: Assignor::new(max_delay_ms),
            url: url.into(),
            running: Work::default(),
            rejoin: 0,
            last_completed: -1,
            leader_url: None,
            leader_tx: None,
        }
    }

    /// Publishes the leader's URL to `tx` after every rebalance (`None` while this worker is
    /// not a member).
    pub fn publish_leader(mut self, tx: watch::Sender<Option<String>>) -> Herder {
        self.leader_tx = Some(tx);
        self
    }

    /// Records the leader's URL (`None`: unknown).
    fn set_leader(&mut self, url: Option<String>) {
        if let Some(tx) = &self.leader_tx {
            tx.send_replace(url.clone());
        }
        self.leader_url = url;
    }

    /// What this worker runs.
    pub fn running(&self) -> &Work {
        &self.running
    }

    /// The leader's REST URL, once a rebalance completed.
    pub fn leader_url(&self) -> Option<&str> {
        self.leader_url.as_deref()
    }

    /// One rebalance: join, assign if leading, sync. Returns this worker's assignment (what to
    /// stop and what to start); `None` if the group moved on during the sync.
    pub async fn rebalance(
        &mut self,
        configured: &Configured,
    ) -> Result<Option<Assignment>, Error> {
        self.rejoin = self.rejoin.wrapping_add(1);
        let offered = protocols(&self.url, configured.1, &self.running, self.rejoin);
        let joined = self.member.join(&offered).await?;
        tracing::debug!(
            generation = joined.generation,
            leader = %joined.leader,
            member = %joined.member_id,
            members = joined.members.len(),
            "joined the worker group"
        );
        let assignments = if joined.leader == joined.member_id {
            self.lead(&joined.members, configured, joined.generation)
        } else {
            Vec::new()
        };
        let Some(bytes) = self.member.sync(&assignments).await? else {
            tracing::debug!(
                generation = joined.generation,
                "the group moved on during the sync; joining again"
            );
            return Ok(None);
        };
        let a = Assignment::decode(&bytes).map_err(|e| {
            Error::new(augur_core::ErrorKind::Protocol, "a malformed assignment").with_source(e)
        })?;
        self.last_completed = joined.generation;
        self.set_leader(Some(a.leader_url.clone()));
        Ok(Some(a))
    }

    /// The leader's assignments for every member.
    fn lead(
        &mut self,
        members: &[(String, Vec<u8>)],
        configured: &Configured,
        generation: i32,
    ) -> Vec<(String, Vec<u8>)> {
        let mut current: BTreeMap<String, Work> = BTreeMap::new();
        for (id, meta) in members {
            let running = WorkerMetadata::decode(meta)
                .ok()
                .and_then(|m| m.allocation)
                .and_then(|a| Assignment::decode(&a).ok())
                .map(|a| Work::from_units(&a.assigned))
                .unwrap_or_default();
            current.insert(id.clone(), running);
        }
        let plan = self.assignor.assign(
            &current,
            &configured.0,
            generation,
            self.last_completed,
            now_ms(),
        );
        plan.members
            .into_iter()
            .map(|(id, p)| {
                let a = Assignment {
                    version: 1,
                    error: 0,
                    leader: self.member.member_id().to_string(),
                    leader_url: self.url.clone(),
                    config_offset: configured.1,
                    assigned: p.assigned.to_units(),
                    revoked: p.revoked.to_units(),
                    delay_ms: plan.delay_ms,
                };
                (id, a.encode())
            })
            .collect()
    }

    /// Runs the membership until `shutdown`: after each rebalance `apply(stop, start)` must
    /// have stopped (and committed) `stop` and started `start` before it returns. Leaves the
    /// group at the end. `configured` changing triggers a rebalance.
    pub async fn run<F, Fut>(
        mut self,
        mut configured: watch::Receiver<Configured>,
        mut apply: F,
        mut shutdown: Shutdown,
    ) -> Result<(), Error>
    where
        F: FnMut(Work, Work) -> Fut,
        Fut: Future<Output = ()>,
    {
        let interval = self.member.heartbeat_interval();
        let session = self.member.session_timeout();
        'rebalance: loop {
            // Evicted (or never joined): whatever still runs here may already run elsewhere.
            if !self.member.is_member() && !self.running.is_empty() {
                tracing::warn!("no longer a member of the group; stopping this worker's work");
                apply(std::mem::take(&mut self.running), Work::default()).await;
            }
            let snapshot = configured.borrow_and_update().clone();
            let a = tokio::select! {
                r = self.rebalance(&snapshot) => r,
                _ = shutdown.wait() => break 'rebalance,
            };
            let a = match a {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "rebalance failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.wait() => break 'rebalance,
                    }
                }
            };
            let (stop, start) = (Work::from_units(&a.revoked), Work::from_units(&a.assigned));
            let revoked = !stop.is_empty();
            self.running = self.running.without(&stop).with(&start);
            apply(stop, start).await;
            if revoked {
                continue;
            }
            let delay = (a.delay_ms > 0)
                .then(|| tokio::time::Instant::now() + Duration::from_millis(a.delay_ms as u64));
            let mut last_ok = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break 'rebalance,
                    r = configured.changed() => {
                        if r.is_err() { break 'rebalance; }
                        continue 'rebalance;
                    }
                    _ = sleep_until(delay) => continue 'rebalance,
                    _ = tokio::time::sleep(interval) => match self.member.heartbeat().await {
                        Ok(Beat::Stable) => last_ok = tokio::time::Instant::now(),
                        Ok(Beat::Rejoin) => continue 'rebalance,
                        Err(e) if last_ok.elapsed() > session => {
                            // The group has surely moved this worker's work elsewhere.
                            tracing::warn!(error = %e, "no heartbeat for a session timeout; stopping this worker's work");
                            apply(std::mem::take(&mut self.running), Work::default()).await;
                            self.member.forget();
                            self.set_leader(None);
                            continue 'rebalance;
                        }
                        Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
                    },
                }
            }
        }
        self.set_leader(None);
        let stop = std::mem::take(&mut self.running);
        apply(stop, Work::default()).await;
        self.member.leave().await
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
