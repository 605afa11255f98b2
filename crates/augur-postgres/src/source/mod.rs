//! The logical replication source: slot and publication management, snapshots, pgoutput
//! decoding and the mapping of PostgreSQL types to Debezium's Connect representation.
//!
//! [`PgSource`]'s [`Source::run`] is the whole lifecycle: preflight checks, publication, slot,
//! snapshot (from the slot's exported snapshot), then streaming. Batches go out on a bounded
//! channel; the slot's confirmed position follows the [`augur_core::ack::AckTracker`]'s
//! durable watermark and nothing else, so a crash at any moment replays instead of skipping.

pub mod catalog;
pub mod columns;
pub mod config;
pub mod decode;
pub mod hstore;
mod incremental;
pub mod pgoutput;
pub mod propagate;
pub mod setup;
pub mod snapshot;
mod stream;
pub mod text;
pub mod types;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_core::event::{ChangeBatch, ChangeEvent, SnapshotMarker, SourceInfo};
use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind, Lsn};
use pgwire_replication::{PgWireError, ReplicationClient, ReplicationConfig, TlsConfig};
use tokio_postgres::Client;

use self::catalog::{CapturedTable, TypeResolver};
use self::config::{SnapshotMode, SourceConfig};
use self::setup::CapturedTableRef;
use self::types::TypeOptions;
use augur_core::offset::{OffsetStore, SourceOffset};
use augur_core::status::SourceStatus;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Session settings pinned on every connection so values print the same way everywhere.
const SESSION_OPTIONS: &str = "-c datestyle=ISO,MDY -c timezone=UTC -c intervalstyle=iso_8601 -c bytea_output=hex -c extra_float_digits=1";

pub use augur_core::source::{Source, SourceContext, SourceExit};

impl Source for PgSource {
    /// Runs the source until shutdown, an error, or (for `initial_only`) the end of the
    /// snapshot. A connection lost after the first successful start (a server restart, a
    /// terminated walsender, a server waiting on a confirmation augur cannot give yet) is
    /// retried with backoff as Debezium does (`errors.max.retries`,
    /// `retriable.restart.connector.wait.ms`), resuming from the slot: nothing is lost, and
    /// what was in flight is replayed.
    fn run(self, cx: SourceContext) -> impl Future<Output = Result<SourceExit, Error>> + Send {
        self.run_retrying(cx)
    }
}

/// The PostgreSQL logical replication source.
pub struct PgSource {
    cfg: SourceConfig,
    offsets: Arc<dyn OffsetStore>,
    shutdown_deadline: Duration,
}

impl std::fmt::Debug for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSource")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// What a start decided about the slot and the snapshot.
struct Plan {
    /// The slot exists and is kept (else it is created).
    slot_exists: bool,
    /// A snapshot is taken before streaming.
    need_snapshot: bool,
}

/// Why emitting stopped early.
enum Halt {
    Shutdown,
    Failed(Error),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

/// Collects events into batches and sends them, registering each with the ack tracker.
struct Emitter<'a> {
    cx: &'a SourceContext,
    shutdown: Shutdown,
    batch: Vec<ChangeEvent>,
    max: usize,
    /// Commit end LSN of the last transaction completed inside the current batch.
    position: Option<Lsn>,
    /// The highest position ever registered.
    registered: Option<Lsn>,
    /// While streaming: give up a send the destination has not taken for this long, so the
    /// replication connection is released instead of holding the server (a walsender waits
    /// for confirmations before its server can shut down).
    release_after: Option<Duration>,
}

/// How long a streaming source waits for a full queue before releasing its connection.
const STALL_RELEASE: Duration = Duration::from_secs(3);

impl<'a> Emitter<'a> {
    fn new(cx: &'a SourceContext, max: usize) -> Self {
        Emitter {
            cx,
            shutdown: cx.shutdown.clone(),
            batch: Vec::with_capacity(max),
            max,
            position: None,
            registered: None,
            release_after: None,
        }
    }

    async fn push(&mut self, ev: ChangeEvent) -> Result<(), Halt> {
        self.batch.push(ev);
        if self.batch.len() >= self.max {
            self.flush().await?;
        }
        Ok(())
    }

    async fn push_all(&mut self, evs: &mut Vec<ChangeEvent>) -> Result<(), Halt> {
        self.batch.append(evs);
        if self.batch.len() >= self.max {
            self.flush().await?;
        }
        Ok(())
    }

    fn commit(&mut self, end_lsn: Lsn) {
        self.position = Some(end_lsn);
    }

    fn pending(&self) -> bool {
        !self.batch.is_empty() || self.position.is_some()
    }

    async fn flush(&mut self) -> Result<(), Halt> {
        if !self.pending() {
            return Ok(());
        }
        tracing::debug!(events = self.batch.len(), position = %self.position.map(|p| p.to_string()).unwrap_or_default(), "flushing batch");
        let position = self.position.take();
        let events = std::mem::replace(&mut self.batch, Vec::with_capacity(self.max));
        self.send(events, position, None).await
    }

    async fn send(
        &mut self,
        events: Vec<ChangeEvent>,
        position: Option<Lsn>,
        heartbeat: Option<i64>,
    ) -> Result<(), Halt> {
        let stalled = async {
            match self.release_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        // Room first, then the acknowledgement is registered: a batch given up while waiting
        // was never registered, so nothing waits for it (it is replayed from the slot).
        let permit = tokio::select! {
            biased;
            r = self.cx.out.reserve() => r.map_err(|_| {
                Halt::Failed(Error::new(ErrorKind::Destination, "the destination stopped accepting changes"))
            })?,
            _ = self.shutdown.wait() => return Err(Halt::Shutdown),
            _ = stalled => return Err(Halt::Failed(Error::new(
                ErrorKind::Connection,
                "the pipeline took no batch for 3 s; releasing the replication connection so the server is never held waiting (resuming from the slot)",
            ))),
        };
        if let Some(p) = position {
            self.registered = Some(self.registered.map_or(p, |r| r.max(p)));
        }
        let ack = self.cx.acks.register(position);
        permit.send(ChangeBatch {
            events,
            heartbeat,
            ack,
        });
        Ok(())
    }
}

impl PgSource {
    /// A source with `cfg`, keeping its offsets in `offsets`.
    pub fn new(cfg: SourceConfig, offsets: Arc<dyn OffsetStore>) -> Self {
        PgSource {
            cfg,
            offsets,
            shutdown_deadline: Duration::from_secs(30),
        }
    }

    /// How long a clean shutdown waits for in-flight batches to become durable.
    pub fn with_shutdown_deadline(mut self, d: Duration) -> Self {
        self.shutdown_deadline = d;
        self
    }

    /// [`Source::run`]: runs, reconnecting after a lost connection.
    async fn run_retrying(self, cx: SourceContext) -> Result<SourceExit, Error> {
        let mut attempt = 0u32;
        let mut started = false;
        let mut shutdown = cx.shutdown.clone();
        loop {
            let mut streamed = false;
            let before = cx.acks.durable().batches;
            let result = self.run_once(&cx, &mut started, &mut streamed).await;
            let e = match result {
                Err(e) if self.retriable(&e, &cx, started) => e,
                other => {
                    cx.report(SourceStatus::Stopped);
                    return other;
                }
            };
            let progressed = streamed && cx.acks.durable().batches > before;
            attempt = if progressed { 1 } else { attempt + 1 };
            if self.cfg.max_retries.is_some_and(|m| attempt > m) {
                cx.report(SourceStatus::Stopped);
                return Err(e.with_hint(format!(
                    "gave up after {} reconnect attempts (errors.max.retries)",
                    attempt - 1
                )));
            }
            let wait =
                Duration::from_millis(200u64 << (attempt - 1).min(10)).min(self.cfg.retry_wait);
            tracing::warn!(error = %e.full_message(), attempt, wait_ms = wait.as_millis() as u64, "source connection lost; resuming from the slot after a pause");
            cx.report(SourceStatus::Starting);
            // Reconnect only once the destination takes batches again, after a pause.
            let resume = async {
                if let Ok(permit) = cx.out.reserve().await {
                    drop(permit);
                }
                tokio::time::sleep(wait).await;
            };
            tokio::select! {
                _ = resume => {}
                _ = shutdown.wait() => {
                    cx.report(SourceStatus::Stopped);
                    return Ok(SourceExit::Shutdown);
                }
            }
        }
    }

    /// A lost connection is retried once the source has started at least once (a first
    /// connection that fails is the user's to fix) and while the destination is healthy.
    fn retriable(&self, e: &Error, cx: &SourceContext, started: bool) -> bool {
        started && e.kind() == ErrorKind::Connection && !cx.acks.durable().poisoned
    }

    /// One connection's worth of work: preflight, then either the snapshot alone
    /// (`initial_only`) or the slot, the snapshot when needed, and the stream.
    async fn run_once(
        &self,
        cx: &SourceContext,
        started: &mut bool,
        streamed: &mut bool,
    ) -> Result<SourceExit, Error> {
        let cfg = &self.cfg;
        let client = cfg.connect.connect_sql().await?;
        let tables = setup::preflight(&client, cfg).await?;
        if tables.is_empty() {
            tracing::warn!(
                "no table matches the include lists; nothing will be captured until one does"
            );
        }
        if cfg.slot_standby {
            // Another process may own the slot and keep saving offsets: read them only once
            // it let go.
            setup::check_slot(&client, cfg).await?;
        }
        let offset = self.offsets.load().await?;
        let mut resolver = TypeResolver::default();
        if cfg.snapshot_mode == SnapshotMode::InitialOnly {
            return self
                .snapshot_only(cx, &client, &mut resolver, &tables, offset)
                .await;
        }
        let mut published = tables.clone();
        if let Some(sig) = &cfg.signals {
            // Signals arrive through the stream: the signal table is always published.
            published.push(setup::signal_table(&client, sig).await?);
        }
        published.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        published.dedup_by_key(|t| t.oid);
        setup::ensure_publication(&client, cfg, &published).await?;
        let mut plan = self.plan(&client, offset.as_ref()).await?;
        let mut repl = self.connect_replication().await?;
        let mut exported = None;
        if !plan.slot_exists {
            match self.create_slot(&mut repl, plan.need_snapshot).await {
                Ok(e) => exported = e,
                Err(e) => {
                    // Another client (a second worker racing for the same connector) created
                    // the slot at the same moment: plan again with it — which waits while the
                    // other one streams from it.
                    plan = self.plan(&client, offset.as_ref()).await?;
                    if !plan.slot_exists {
                        return Err(e);
                    }
                    tracing::info!(slot = %self.cfg.slot_name, "the slot was created by another client meanwhile; using it");
                }
            }
        }
        let created_here = !plan.slot_exists;
        // `sequence[0]` is the last commit Debezium recorded: from the stored offset after a
        // restart, null in a run that has not seen a commit yet.
        let last_commit = if plan.slot_exists {
            offset.as_ref().and_then(|o| o.lsn)
        } else {
            None
        };
        // From here on the source has started once: connections lost later are retried.
        *started = true;
        let result = self
            .stream(
                cx,
                streamed,
                &client,
                &mut resolver,
                &tables,
                &mut repl,
                plan.need_snapshot,
                exported,
                last_commit,
                offset.unwrap_or_default(),
            )
            .await;
        if result.is_err() {
            repl.abort();
            if created_here && plan.need_snapshot {
                self.drop_unfinished_slot(&client).await;
            }
        }
        result
    }

    /// `snapshot.mode=initial_only`: the snapshot once, durable downstream, then stop.
    async fn snapshot_only(
        &self,
        cx: &SourceContext,
        client: &Client,
        resolver: &mut TypeResolver,
        tables: &[CapturedTableRef],
        offset: Option<SourceOffset>,
    ) -> Result<SourceExit, Error> {
        if offset.as_ref().is_some_and(|o| o.snapshot_completed) {
            tracing::info!(
                "snapshot already completed; snapshot.mode=initial_only has nothing left to do"
            );
            return Ok(SourceExit::SnapshotCompleted);
        }
        let mut emitter = Emitter::new(cx, self.cfg.max_batch_size);
        let point = snapshot::begin(client, None).await?;
        if !self
            .snapshot(client, resolver, tables, point, &mut emitter)
            .await?
        {
            return Ok(SourceExit::Shutdown);
        }
        let marker_seq = cx.acks.next_seq();
        if !self.wait_durable(cx, marker_seq, None).await? {
            return Ok(SourceExit::Shutdown);
        }
        let done = SourceOffset {
            snapshot_completed: true,
            ..offset.unwrap_or_default()
        };
        self.offsets.save(&done).await?;
        tracing::info!("snapshot completed (snapshot.mode=initial_only)");
        Ok(SourceExit::SnapshotCompleted)
    }

    /// Decides from the slot and the offsets whether a snapshot is needed, refusing to go on
    /// where changes would be skipped silently; drops a slot a new snapshot must replace.
    async fn plan(&self, client: &Client, offset: Option<&SourceOffset>) -> Result<Plan, Error> {
        let cfg = &self.cfg;
        let slot = setup::check_slot(client, cfg).await?;
        let completed = offset.is_some_and(|o| o.snapshot_completed);
        let slot_lost = slot
            .as_ref()
            .is_some_and(|s| s.wal_status.as_deref() == Some("lost"));
        if slot_lost && cfg.snapshot_mode != SnapshotMode::WhenNeeded {
            return Err(Error::new(
                ErrorKind::SourceSetup,
                format!("replication slot \"{}\" has lost WAL it needs (wal_status = lost); changes since its position are gone", cfg.slot_name),
            )
            .with_hint("drop the slot and restart with snapshot.mode=when_needed or always to take a new snapshot"));
        }
        // Offsets that say this connector streamed before, with its slot gone, mean a gap:
        // changes since then are not in the WAL any more. Never skip them silently.
        let streamed_to = offset.filter(|o| o.snapshot_completed).and_then(|o| o.lsn);
        let slot_vanished = slot.is_none() && streamed_to.is_some();
        if slot_vanished
            && matches!(
                cfg.snapshot_mode,
                SnapshotMode::Initial | SnapshotMode::NoData
            )
        {
            return Err(Error::new(
                ErrorKind::SourceSetup,
                format!(
                    "replication slot \"{}\" is gone but the offsets say this connector streamed up to {}; changes since then cannot be recovered from WAL",
                    cfg.slot_name,
                    streamed_to.map(|l| l.to_string()).unwrap_or_default()
                ),
            )
            .with_hint("restart with snapshot.mode=when_needed to take a new snapshot, or remove the offsets file to start over"));
        }
        let need_snapshot = match cfg.snapshot_mode {
            SnapshotMode::NoData => false,
            SnapshotMode::Always => true,
            SnapshotMode::Initial => !completed,
            SnapshotMode::WhenNeeded => !completed || slot_lost || slot_vanished,
            SnapshotMode::InitialOnly => unreachable!("handled by snapshot_only"),
        };
        // A slot left by an interrupted snapshot (or one whose WAL is gone, or any slot under
        // `always`) is dropped and recreated, so the new snapshot is exported by the slot and
        // the stream continues exactly where it ends.
        let mut slot_exists = slot.is_some();
        if need_snapshot
            && slot_exists
            && (offset.is_some() || slot_lost || cfg.snapshot_mode == SnapshotMode::Always)
        {
            tracing::info!(slot = %cfg.slot_name, "recreating the replication slot for a new snapshot");
            setup::drop_slot_when_idle(client, &cfg.slot_name, Duration::from_secs(10)).await?;
            slot_exists = false;
        }
        Ok(Plan {
            slot_exists,
            need_snapshot,
        })
    }

    /// Creates the slot; with a snapshot to take, returns its exported snapshot and
    /// consistent point, and records that a snapshot is under way.
    async fn create_slot(
        &self,
        repl: &mut ReplicationClient,
        need_snapshot: bool,
    ) -> Result<Option<(String, Lsn)>, Error> {
        let cfg = &self.cfg;
        let mode = if need_snapshot {
            "SNAPSHOT 'export'"
        } else {
            "SNAPSHOT 'nothing'"
        };
        let rows = repl
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput ({mode})",
                setup::quote_ident(&cfg.slot_name)
            ))
            .await
            .map_err(|e| replication_error(cfg, e))?;
        let protocol = |what: &str| Error::new(ErrorKind::Protocol, what.to_string());
        let row = rows
            .into_iter()
            .next()
            .ok_or_else(|| protocol("CREATE_REPLICATION_SLOT returned no row"))?;
        let text = |i: usize| {
            row.get(i)
                .and_then(|v| v.as_ref())
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let consistent: Lsn = text(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| protocol("CREATE_REPLICATION_SLOT returned no consistent point"))?;
        tracing::info!(slot = %cfg.slot_name, %consistent, "created replication slot");
        if !need_snapshot {
            return Ok(None);
        }
        let name =
            text(2).ok_or_else(|| protocol("CREATE_REPLICATION_SLOT exported no snapshot"))?;
        // Recorded before the snapshot starts, so a crash during it is recognised on the next
        // start (the slot is then recreated and the snapshot redone).
        let started = SourceOffset::default();
        self.offsets.save(&started).await?;
        Ok(Some((name, consistent)))
    }

    /// A slot this run created whose snapshot never became durable is useless and would hold
    /// WAL: drop it so the next run starts clean.
    async fn drop_unfinished_slot(&self, client: &Client) {
        let completed = self
            .offsets
            .load()
            .await
            .ok()
            .flatten()
            .is_some_and(|o| o.snapshot_completed);
        if completed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Err(e) = setup::drop_slot(client, &self.cfg.slot_name).await {
            tracing::warn!(error = %e, "could not drop the slot created by this failed run");
        }
    }

    /// Opens the replication connection with TLS as `sslmode` says (`allow`: as the server
    /// wants).
    async fn connect_replication(&self) -> Result<ReplicationClient, Error> {
        let c = &self.cfg.connect;
        let tls = c.tls.replication_config(c.settled_mode().await?, &c.host)?;
        ReplicationClient::connect_gated(self.replication_config(Lsn::ZERO, tls))
            .await
            .map_err(|e| replication_error(&self.cfg, e))
    }

    fn replication_config(&self, start: Lsn, tls: TlsConfig) -> ReplicationConfig {
        let c = &self.cfg.connect;
        ReplicationConfig::new(
            c.host.clone(),
            c.user.clone(),
            c.password.expose().to_string(),
            c.dbname.clone(),
            self.cfg.slot_name.clone(),
            self.cfg.publication_name.clone(),
        )
        .with_port(c.port)
        .with_tls(tls)
        .with_start_lsn(pgwire_replication::Lsn::from_u64(start.as_u64()))
        .with_status_interval(self.cfg.status_interval)
        .with_wakeup_interval(Duration::from_secs(1))
        .with_buffer_size(self.cfg.max_queue_size.max(64))
        .with_options(SESSION_OPTIONS)
        .with_application_name(format!("augur:{}", self.cfg.slot_name))
    }

    async fn snapshot_tables(
        &self,
        client: &Client,
        resolver: &mut TypeResolver,
        tables: &[CapturedTableRef],
        point: snapshot::SnapshotPoint,
        emitter: &mut Emitter<'_>,
    ) -> Result<(), Halt> {
        let snapshot_opts = TypeOptions {
            in_snapshot: true,
            ..self.cfg.types.clone()
        };
        let opts = &snapshot_opts;
        let started = Instant::now();
        // Rows are held back by one so the last one can be marked; markers follow Debezium's
        // precedence: the last row "last", else the first row "first", else a table's last row
        // "last_in_data_collection", else its first "first_in_data_collection", else "true".
        let mut held: Option<ChangeEvent> = None;
        let mut first_overall = true;
        let mut total = 0u64;
        let non_empty: Vec<&CapturedTableRef> = tables.iter().collect();
        for t in &non_empty {
            let (table, skipped) = snapshot::describe_table(client, resolver, t, opts, 0).await?;
            warn_skipped(&table, &skipped);
            let name = table.schema.qualified_name();
            let mut progress =
                snapshot::Progress::new(snapshot::estimate_rows(client, &table).await);
            let Some(mut reader) = snapshot::TableReader::open(client, &table, point).await? else {
                continue;
            };
            if self.cfg.snapshot_truncates {
                let at = SourceInfo {
                    snapshot: SnapshotMarker::True,
                    ..SourceInfo::default()
                };
                emitter.push(decode::truncate(&table.schema, at)).await?;
            }
            let mut first_in_table = true;
            let mut last_of_prev_table = held.is_some();
            while let Some(mut ev) = reader.next(opts).await? {
                if let Some(mut prev) = held.take() {
                    // "first" outranks "last_in_data_collection" (a one-row first table).
                    if last_of_prev_table && prev.source.snapshot != SnapshotMarker::First {
                        prev.source.snapshot = SnapshotMarker::LastInDataCollection;
                    }
                    last_of_prev_table = false;
                    emitter.push(prev).await?;
                }
                ev.source.snapshot = if first_overall {
                    SnapshotMarker::First
                } else if first_in_table {
                    SnapshotMarker::FirstInDataCollection
                } else {
                    SnapshotMarker::True
                };
                first_overall = false;
                first_in_table = false;
                held = Some(ev);
                progress.tick(&name, reader.rows);
            }
            total += reader.rows;
            tracing::info!(table = %name, rows = reader.rows, "snapshot of table done");
        }
        if let Some(mut last) = held.take() {
            last.source.snapshot = SnapshotMarker::Last;
            emitter.push(last).await?;
        }
        emitter.flush().await?;
        tracing::info!(
            rows = total,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot sent"
        );
        Ok(())
    }

    /// Snapshots `tables` at `point` and ends the snapshot transaction; `false` on shutdown.
    async fn snapshot(
        &self,
        client: &Client,
        resolver: &mut TypeResolver,
        tables: &[CapturedTableRef],
        point: snapshot::SnapshotPoint,
        emitter: &mut Emitter<'_>,
    ) -> Result<bool, Error> {
        match self
            .snapshot_tables(client, resolver, tables, point, emitter)
            .await
        {
            Ok(()) => {}
            Err(Halt::Shutdown) => return Ok(false),
            Err(Halt::Failed(e)) => return Err(e),
        }
        snapshot::end(client).await?;
        Ok(true)
    }

    /// Waits until every batch registered before `seq` is durable; `false` on shutdown.
    async fn wait_durable(
        &self,
        cx: &SourceContext,
        seq: u64,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        let mut rx = cx.acks.subscribe();
        let mut shutdown = cx.shutdown.clone();
        loop {
            let d = *rx.borrow_and_update();
            if d.poisoned {
                return Err(Error::new(
                    ErrorKind::Destination,
                    "a destination write failed; stopping so the changes are replayed",
                ));
            }
            if d.batches >= seq {
                return Ok(true);
            }
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Ok(false) },
                _ = shutdown.wait(), if deadline.is_none() => return Ok(false),
                _ = sleep => return Ok(false),
            }
        }
    }

    /// Takes the snapshot when one is needed, then streams (see [`stream::StreamLoop`]).
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        cx: &SourceContext,
        streamed: &mut bool,
        client: &Client,
        resolver: &mut TypeResolver,
        tables: &[CapturedTableRef],
        repl: &mut ReplicationClient,
        need_snapshot: bool,
        exported: Option<(String, Lsn)>,
        last_commit: Option<Lsn>,
        mut offset: SourceOffset,
    ) -> Result<SourceExit, Error> {
        let cfg = &self.cfg;
        let mut emitter = Emitter::new(cx, cfg.max_batch_size);
        let mut snapshot_end_seq: Option<u64> = None;
        if need_snapshot {
            let point =
                snapshot::begin(client, exported.as_ref().map(|(n, l)| (n.as_str(), *l))).await?;
            if !self
                .snapshot(client, resolver, tables, point, &mut emitter)
                .await?
            {
                return Ok(SourceExit::Shutdown);
            }
            snapshot_end_seq = Some(cx.acks.next_seq());
            offset.snapshot_completed = false;
            // A whole new snapshot supersedes an incremental one that was running.
            offset.incremental_snapshot = None;
        } else if !offset.snapshot_completed && cfg.snapshot_mode != SnapshotMode::NoData {
            // Nothing to snapshot (e.g. completed earlier under another store): record it.
            offset.snapshot_completed = true;
        }

        repl.start().await.map_err(|e| replication_error(cfg, e))?;
        repl.wait_started()
            .await
            .map_err(|e| replication_error(cfg, e))?;
        tracing::info!(slot = %cfg.slot_name, publication = %cfg.publication_name, "streaming changes");
        cx.report(SourceStatus::Streaming);
        *streamed = true;
        emitter.release_after = Some(STALL_RELEASE);
        let mut stream = stream::StreamLoop::new(self, client, resolver, repl, emitter, offset);
        stream.snapshot_end_seq = snapshot_end_seq;
        stream.last_commit = last_commit;
        stream.run().await
    }
}

/// Notices a walsender that keeps asking for a confirmation augur cannot give yet. A server
/// shutting down (`pg_ctl stop -m fast`) waits until its walsenders have the client's
/// confirmation of everything sent, asking for it again and again; the confirmation follows
/// the sink, so a blocked or failing sink would hold the server's shutdown forever. In normal
/// streaming a walsender asks only after `wal_sender_timeout / 2` without a status update,
/// which augur's regular updates prevent.
#[derive(Debug, Default)]
struct ServerWait {
    asks: Vec<Instant>,
}

impl ServerWait {
    /// Records a reply request; `true` when the server has asked three times within two
    /// seconds while something sent is not yet confirmed.
    fn asked(&mut self, unconfirmed: bool) -> bool {
        if !unconfirmed {
            self.asks.clear();
            return false;
        }
        let now = Instant::now();
        self.asks
            .retain(|t| now.duration_since(*t) < Duration::from_secs(2));
        self.asks.push(now);
        self.asks.len() >= 3
    }
}

fn known(
    tables: &HashMap<u32, Option<CapturedTable>>,
    oid: u32,
) -> Result<Option<&CapturedTable>, Error> {
    match tables.get(&oid) {
        Some(t) => Ok(t.as_ref()),
        None => Err(Error::new(
            ErrorKind::Protocol,
            format!("change for relation {oid} before its Relation message"),
        )),
    }
}

fn warn_skipped(table: &CapturedTable, skipped: &catalog::SkippedColumns) {
    for (col, ty) in skipped {
        tracing::warn!(
            table = %table.schema.qualified_name(),
            column = %col,
            pg_type = %ty,
            "column type has no mapping; column left out (set include.unknown.datatypes=true to emit it as bytes)"
        );
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether a server error means the connection went away (shutdown, restart, a terminated
/// backend, too many connections) rather than a setup problem: SQLSTATE classes 08, 53, 57.
fn connection_lost(msg: &str) -> bool {
    [
        "57P01", "57P02", "57P03", "57P04", "08006", "08003", "53300",
    ]
    .iter()
    .any(|c| msg.contains(c))
        || msg.contains("shutting down")
        || msg.contains("starting up")
        || msg.contains("terminating connection")
}

/// Maps a replication-connection error to an error with a kind and a fix.
fn replication_error(cfg: &SourceConfig, e: PgWireError) -> Error {
    let c = &cfg.connect;
    let mode = c.tls.effective_mode();
    if let Some(tls) = crate::tls::describe_tls_failure(&e, &c.display(), mode) {
        return tls;
    }
    let text = e.to_string();
    if text.contains("28000")
        && let Some(refusal) = crate::conn::auth_refusal(c, "28000", &text)
    {
        return refusal;
    }
    match &e {
        PgWireError::Auth(_) => Error::new(
            ErrorKind::Auth,
            format!(
                "password authentication failed for user \"{}\" at {}",
                c.user,
                c.display()
            ),
        )
        .with_hint("check database.user and database.password"),
        PgWireError::Io(_) => Error::new(
            ErrorKind::Connection,
            format!("replication connection to {} failed", c.display()),
        )
        .with_source(e),
        // A connection holds the slot: fatal at start, retried after a reconnect (see
        // `check_slot`).
        PgWireError::Server(msg) if msg.contains("55006") => Error::new(
            ErrorKind::Connection,
            format!(
                "replication slot \"{}\" is active for another client",
                cfg.slot_name
            ),
        )
        .with_hint("stop the other connector, or give this one its own slot.name"),
        PgWireError::Server(msg) if msg.contains("53400") => Error::new(
            ErrorKind::SourceSetup,
            "all replication slots are in use (max_replication_slots reached)",
        )
        .with_hint("drop unused slots or raise max_replication_slots and restart PostgreSQL"),
        PgWireError::Server(msg) if msg.contains("42710") => Error::new(
            ErrorKind::SourceSetup,
            format!(
                "replication slot \"{}\" was created by someone else meanwhile",
                cfg.slot_name
            ),
        )
        .with_hint("give each connector its own slot.name"),
        PgWireError::Server(msg) if msg.contains("42501") || msg.contains("permission denied") => {
            Error::new(
                ErrorKind::SourceSetup,
                format!("user \"{}\" may not use replication", c.user),
            )
            .with_hint(format!(
                "run ALTER ROLE {} REPLICATION; as a superuser",
                setup::quote_ident(&c.user)
            ))
        }
        PgWireError::Server(msg) if connection_lost(msg) => Error::new(
            ErrorKind::Connection,
            format!("the server closed the replication connection: {msg}"),
        ),
        PgWireError::Server(msg) => {
            Error::new(ErrorKind::SourceSetup, format!("replication error: {msg}"))
        }
        _ => Error::new(ErrorKind::Connection, "replication connection failed").with_source(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_asking_again_and_again_is_noticed_only_while_something_is_unconfirmed() {
        let mut w = ServerWait::default();
        assert!(!w.asked(true));
        assert!(!w.asked(true));
        assert!(w.asked(true), "three asks within two seconds");
        let mut w = ServerWait::default();
        for _ in 0..10 {
            assert!(
                !w.asked(false),
                "nothing unconfirmed: the server is answered"
            );
        }
        assert!(!w.asked(true));
        assert!(!w.asked(false), "a confirmation resets the count");
        assert!(!w.asked(true));
    }

    #[test]
    fn shutdown_and_terminated_backends_are_lost_connections_not_setup_errors() {
        for msg in [
            "FATAL: terminating connection due to administrator command (SQLSTATE 57P01)",
            "the database system is shutting down",
            "FATAL 57P03: the database system is starting up",
        ] {
            assert!(connection_lost(msg), "{msg}");
        }
        assert!(!connection_lost(
            "replication slot \"x\" does not exist (SQLSTATE 42704)"
        ));
    }
}
