//! A member of a Kafka group through the broker's group coordinator, as Kafka Connect's
//! `WorkerGroupMember` is one: find the coordinator, the two-step join (`MEMBER_ID_REQUIRED`),
//! the leader's or follower's sync, heartbeats, and a graceful leave. The caller decides what
//! the metadata and assignments say; this type only moves them.

use std::time::Duration;

use augur_core::{Error, ErrorKind};

use super::link::Link;
use super::secure::LoadedSecurity;
use super::wire::{self, JoinRequest, JoinResponse, Reader, api};

/// Error codes the member reacts to.
pub mod code {
    /// No error.
    pub const NONE: i16 = 0;
    /// The coordinator is loading.
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    /// No coordinator yet.
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// This broker is not the group's coordinator.
    pub const NOT_COORDINATOR: i16 = 16;
    /// A generation that is not the group's.
    pub const ILLEGAL_GENERATION: i16 = 22;
    /// The protocol offered does not match the group's.
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    /// The member is not (or no longer) in the group.
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    /// The group is rebalancing: join again.
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    /// The first join step: use the member id given and join again.
    pub const MEMBER_ID_REQUIRED: i16 = 79;
}

/// How a member joins its group.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// Brokers to find the coordinator through (`host:port`).
    pub bootstrap: Vec<String>,
    /// `group.id`.
    pub group_id: String,
    /// `client.id` of the requests.
    pub client_id: String,
    /// The protocol type (`connect`).
    pub protocol_type: String,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `rebalance.timeout.ms`.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// TLS and SASL for the connections to the brokers.
    pub security: LoadedSecurity,
}

/// What a heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Still a member of the current generation.
    Stable,
    /// The group is rebalancing (or moved on): join again.
    Rejoin,
}

/// One member of a group.
#[derive(Debug)]
pub struct Member {
    /// Settings.
    cfg: MemberConfig,
    /// The coordinator connection, once found.
    link: Option<Link>,
    /// The id the coordinator gave this member (empty before the first join).
    member_id: String,
    /// The generation last joined.
    generation: i32,
}

/// Whether an error code means "find the coordinator again".
fn coordinator_moved(code: i16) -> bool {
    matches!(
        code,
        code::COORDINATOR_LOAD_IN_PROGRESS
            | code::COORDINATOR_NOT_AVAILABLE
            | code::NOT_COORDINATOR
    )
}

/// Refuses a broker that lacks a version this client sends.
async fn check_versions(link: &mut Link, timeout: Duration) -> Result<(), Error> {
    let body = link.call(api::API_VERSIONS, &[], timeout).await?;
    let (_, supported) = wire::api_versions(&mut Reader::new(&body))
        .map_err(|e| protocol_error("ApiVersions", e))?;
    // The SASL APIs were used (or not needed) before this check.
    let group_apis = wire::VERSIONS
        .into_iter()
        .filter(|(k, _)| !matches!(*k, api::SASL_HANDSHAKE | api::SASL_AUTHENTICATE));
    for (key, version) in group_apis {
        let ok = supported
            .iter()
            .any(|(k, min, max)| *k == key && (*min..=*max).contains(&version));
        if !ok {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "the broker at {} does not support API {key} version {version}, which worker clusters need",
                    link.addr()
                ),
            ));
        }
    }
    Ok(())
}

fn protocol_error(what: &str, e: wire::WireError) -> Error {
    Error::new(ErrorKind::Protocol, format!("a malformed {what} response")).with_source(e)
}

impl Member {
    /// A member that has not joined yet.
    pub fn new(cfg: MemberConfig) -> Member {
        Member {
            cfg,
            link: None,
            member_id: String::new(),
            generation: -1,
        }
    }

    /// The member id (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation last joined.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Whether the coordinator knows this member (it has joined and was not evicted).
    pub fn is_member(&self) -> bool {
        !self.member_id.is_empty()
    }

    /// Forgets the member id (the next join starts afresh).
    pub fn forget(&mut self) {
        self.member_id.clear();
        self.generation = -1;
    }

    /// `heartbeat.interval.ms`.
    pub fn heartbeat_interval(&self) -> Duration {
        self.cfg.heartbeat_interval
    }

    /// `session.timeout.ms`.
    pub fn session_timeout(&self) -> Duration {
        self.cfg.session_timeout
    }

    /// A request timeout well past what the coordinator may hold a request for.
    fn timeout(&self) -> Duration {
        self.cfg.rebalance_timeout.max(self.cfg.session_timeout) + Duration::from_secs(5)
    }

    /// The coordinator connection, found through the bootstrap brokers if needed.
    async fn coordinator(&mut self) -> Result<&mut Link, Error> {
        if self.link.is_none() {
            self.link = Some(self.find().await?);
        }
        self.link
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "no coordinator connection"))
    }

    /// Asks each bootstrap broker in turn for the group's coordinator and connects to it.
    async fn find(&self) -> Result<Link, Error> {
        let t = Duration::from_secs(10);
        let mut last = None;
        for addr in &self.cfg.bootstrap {
            let found = async {
                let mut link =
                    Link::connect(addr, &self.cfg.client_id, t, &self.cfg.security).await?;
                let body = link
                    .call(
                        api::FIND_COORDINATOR,
                        &wire::find_coordinator(&self.cfg.group_id),
                        t,
                    )
                    .await?;
                let c = wire::coordinator(&mut Reader::new(&body))
                    .map_err(|e| protocol_error("FindCoordinator", e))?;
                if c.error != code::NONE {
                    return Err(Error::new(
                        ErrorKind::Connection,
                        format!(
                            "no coordinator for group {} yet (error {})",
                            self.cfg.group_id, c.error
                        ),
                    ));
                }
                let mut link = Link::connect(
                    &format!("{}:{}", c.host, c.port),
                    &self.cfg.client_id,
                    t,
                    &self.cfg.security,
                )
                .await?;
                check_versions(&mut link, t).await?;
                Ok(link)
            };
            match found.await {
                Ok(link) => return Ok(link),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Config, "no bootstrap brokers")))
    }

    /// One request to the coordinator; a broken connection is dropped (the next call finds the
    /// coordinator again).
    async fn call(&mut self, api_key: i16, body: &[u8]) -> Result<Vec<u8>, Error> {
        // A call cancelled midway (a shutdown during a join) leaves its response unread.
        if self.link.as_ref().is_some_and(Link::is_poisoned) {
            self.link = None;
        }
        let timeout = self.timeout();
        let link = self.coordinator().await?;
        let r = link.call(api_key, body, timeout).await;
        if r.is_err() {
            self.link = None;
        }
        r
    }

    /// Joins (or rejoins) the group offering `protocols` (name and this member's metadata, in
    /// preference order); returns the new generation, its leader and, for the leader, every
    /// member's metadata. Retries what the protocol says to retry, until `rebalance_timeout`
    /// has passed twice.
    pub async fn join(&mut self, protocols: &[(String, Vec<u8>)]) -> Result<JoinResponse, Error> {
        let deadline = tokio::time::Instant::now() + self.cfg.rebalance_timeout * 2;
        loop {
            let body = wire::join(&JoinRequest {
                group: &self.cfg.group_id,
                session_timeout_ms: self.cfg.session_timeout.as_millis() as i32,
                rebalance_timeout_ms: self.cfg.rebalance_timeout.as_millis() as i32,
                member_id: &self.member_id,
                protocol_type: &self.cfg.protocol_type,
                protocols,
            });
            let resp = match self.call(api::JOIN_GROUP, &body).await {
                Ok(b) => wire::joined(&mut Reader::new(&b))
                    .map_err(|e| protocol_error("JoinGroup", e))?,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "join failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match resp.error {
                code::NONE => {
                    self.member_id = resp.member_id.clone();
                    self.generation = resp.generation;
                    return Ok(resp);
                }
                code::MEMBER_ID_REQUIRED => self.member_id = resp.member_id.clone(),
                code::UNKNOWN_MEMBER_ID => self.member_id.clear(),
                code::INCONSISTENT_GROUP_PROTOCOL => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "group {} runs another protocol than {:?}: is group.id shared with a non-Connect group?",
                            self.cfg.group_id,
                            protocols.iter().map(|p| p.0.as_str()).collect::<Vec<_>>()
                        ),
                    ));
                }
                c if coordinator_moved(c) => self.link = None,
                code::REBALANCE_IN_PROGRESS => {}
                other => {
                    return Err(Error::new(
                        ErrorKind::Connection,
                        format!(
                            "group {} refused the join (error {other})",
                            self.cfg.group_id
                        ),
                    ));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("could not join group {} in time", self.cfg.group_id),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Syncs the generation just joined: the leader sends every member's assignment, followers
    /// send none. Returns this member's assignment, or `None` if the group moved on (join
    /// again).
    pub async fn sync(
        &mut self,
        assignments: &[(String, Vec<u8>)],
    ) -> Result<Option<Vec<u8>>, Error> {
        let body = wire::sync(
            &self.cfg.group_id,
            self.generation,
            &self.member_id,
            assignments,
        );
        let b = self.call(api::SYNC_GROUP, &body).await?;
        let (error, assignment) =
            wire::synced(&mut Reader::new(&b)).map_err(|e| protocol_error("SyncGroup", e))?;
        self.after_error("sync", error)
            .map(|ok| ok.then_some(assignment))
    }

    /// One heartbeat.
    pub async fn heartbeat(&mut self) -> Result<Beat, Error> {
        let body = wire::heartbeat(&self.cfg.group_id, self.generation, &self.member_id);
        let b = self.call(api::HEARTBEAT, &body).await?;
        let error =
            wire::error_code(&mut Reader::new(&b)).map_err(|e| protocol_error("Heartbeat", e))?;
        Ok(if self.after_error("heartbeat", error)? {
            Beat::Stable
        } else {
            Beat::Rejoin
        })
    }

    /// `true` for no error, `false` for "join again" (forgetting the member id when the group
    /// no longer knows it), an error otherwise.
    fn after_error(&mut self, what: &str, error: i16) -> Result<bool, Error> {
        match error {
            code::NONE => Ok(true),
            code::REBALANCE_IN_PROGRESS | code::ILLEGAL_GENERATION => Ok(false),
            code::UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                Ok(false)
            }
            c if coordinator_moved(c) => {
                self.link = None;
                Ok(false)
            }
            other => Err(Error::new(
                ErrorKind::Connection,
                format!("group {}: {what} failed (error {other})", self.cfg.group_id),
            )),
        }
    }

    /// Leaves the group (its work moves at once instead of after the session timeout).
    pub async fn leave(&mut self) -> Result<(), Error> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let body = wire::leave(&self.cfg.group_id, &self.member_id);
        let b = self.call(api::LEAVE_GROUP, &body).await?;
        let error =
            wire::error_code(&mut Reader::new(&b)).map_err(|e| protocol_error("LeaveGroup", e))?;
        self.member_id.clear();
        self.generation = -1;
        match error {
            code::NONE | code::UNKNOWN_MEMBER_ID => Ok(()),
            other => Err(Error::new(
                ErrorKind::Connection,
                format!("group {}: leave failed (error {other})", self.cfg.group_id),
            )),
        }
    }
}
