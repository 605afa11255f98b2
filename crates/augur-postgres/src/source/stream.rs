//! The streaming loop: pgoutput messages become change batches, and only the acknowledged
//! watermark becomes the slot's confirmed position — the heart of "never skips".

use std::collections::HashMap;
use std::time::{Duration, Instant};

use augur_core::ack::Durable;
use augur_core::event::{ChangeEvent, SnapshotMarker, SourceInfo};
use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind, Lsn};
use futures_util::FutureExt;
use pgwire_replication::{PgWireError, ReplicationClient, ReplicationEvent};
use tokio::sync::watch;
use tokio_postgres::Client;

use super::catalog::{self, CapturedTable, TypeResolver};
use super::incremental::{Db, Incremental};
use super::pgoutput::{self, Message, Tuple};
use super::{
    Emitter, Halt, PG_EPOCH_OFFSET_US, PgSource, ServerWait, SourceExit, decode, known, now_ms,
    replication_error, setup, warn_skipped,
};
use augur_core::offset::SourceOffset;

/// The transaction being decoded, between its Begin and Commit messages.
#[derive(Debug, Clone, Copy)]
struct Transaction {
    xid: u32,
    /// Commit time, microseconds since the Unix epoch.
    commit_time_us: i64,
    /// The commit record's LSN (Begin's `final_lsn`).
    commit_lsn: Lsn,
}

/// What woke the loop while it had nothing to read.
enum Wake {
    Shutdown,
    /// The ack watermark moved (`None`: the tracker is gone).
    Durable(Option<Durable>),
    Tick,
    Event(Result<Option<ReplicationEvent>, PgWireError>),
}

/// Whether streaming goes on after an event.
enum Flow {
    Continue,
    /// The server ended the stream at the requested stop position.
    Stopped,
}

/// What the loop waits on besides the replication connection.
struct Waits {
    durable: watch::Receiver<Durable>,
    shutdown: Shutdown,
    tick: tokio::time::Interval,
}

/// One streaming session on an open replication connection, with its named state.
pub(super) struct StreamLoop<'a> {
    source: &'a PgSource,
    client: &'a Client,
    resolver: &'a mut TypeResolver,
    repl: &'a mut ReplicationClient,
    emitter: Emitter<'a>,
    /// What the offsets store holds: the confirmed LSN and whether the snapshot completed.
    offset: SourceOffset,
    /// The ack sequence from which on the snapshot is durable, while it is not yet.
    pub(super) snapshot_end_seq: Option<u64>,
    /// End LSN of the last commit seen (Debezium's `sequence[0]`).
    pub(super) last_commit: Option<Lsn>,
    /// Relation OID → captured table (`None`: a relation that is not captured).
    tables: HashMap<u32, Option<CapturedTable>>,
    /// Schema version, bumped by every Relation message of a captured table.
    version: u64,
    tx: Option<Transaction>,
    /// The highest WAL end the server reported in a keepalive.
    keepalive: Option<Lsn>,
    /// The highest position confirmed to the server.
    confirmed: Option<Lsn>,
    last_offset_save: Instant,
    /// The offset changed since it was last saved.
    offset_dirty: bool,
    /// The events decoded from one message (a key change makes two).
    scratch: Vec<ChangeEvent>,
    waited_on: ServerWait,
    /// Incremental snapshots, when a signal table is configured.
    incremental: Option<Incremental>,
}

impl<'a> StreamLoop<'a> {
    /// A loop over `repl`, which has started streaming.
    pub(super) fn new(
        source: &'a PgSource,
        client: &'a Client,
        resolver: &'a mut TypeResolver,
        repl: &'a mut ReplicationClient,
        emitter: Emitter<'a>,
        offset: SourceOffset,
    ) -> Self {
        let incremental = source
            .cfg
            .signals
            .clone()
            .map(|sig| Incremental::new(sig, offset.incremental_snapshot.as_ref(), offset.lsn));
        StreamLoop {
            source,
            client,
            resolver,
            repl,
            emitter,
            offset,
            snapshot_end_seq: None,
            last_commit: None,
            tables: HashMap::new(),
            version: 1,
            tx: None,
            keepalive: None,
            confirmed: None,
            last_offset_save: Instant::now(),
            offset_dirty: false,
            scratch: Vec::with_capacity(2),
            waited_on: ServerWait::default(),
            incremental,
        }
    }

    /// The incremental snapshot machinery and what it reads with (`None`: not configured).
    fn incremental(&mut self) -> Option<(&mut Incremental, Db<'_>)> {
        let cfg = &self.source.cfg;
        let inc = self.incremental.as_mut()?;
        let db = Db {
            client: self.client,
            resolver: &mut *self.resolver,
            opts: &cfg.types,
            filter: &cfg.tables,
            tables: &self.tables,
            version: &mut self.version,
        };
        Some((inc, db))
    }

    /// A change of the signal table: a signal, or (`delete`) the close of a window.
    async fn on_signal(
        &mut self,
        row: &Tuple<'_>,
        info: SourceInfo,
        delete: bool,
    ) -> Result<(), Error> {
        let mut out = std::mem::take(&mut self.scratch);
        let result = match self.incremental() {
            // Boxed: chunk reading is rare and its future large.
            Some((inc, mut db)) if delete => {
                Box::pin(inc.on_delete(&mut db, row, info, &mut out)).await
            }
            Some((inc, mut db)) => Box::pin(inc.on_insert(&mut db, row, info, &mut out)).await,
            None => Ok(()),
        };
        self.scratch = out;
        result
    }

    /// Whether `relation` is the signal table.
    fn is_signal(&self, relation: u32) -> bool {
        self.incremental
            .as_ref()
            .is_some_and(|i| i.is_signal(relation))
    }

    /// Streams until shutdown, a failure or the server's stop; then drains.
    pub(super) async fn run(mut self) -> Result<SourceExit, Error> {
        let cfg = &self.source.cfg;
        let every = cfg
            .heartbeat_interval
            .unwrap_or(cfg.status_interval)
            .max(Duration::from_millis(50));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut waits = Waits {
            durable: self.emitter.cx.acks.subscribe(),
            shutdown: self.emitter.cx.shutdown.clone(),
            tick,
        };
        if let Some((inc, mut db)) = self.incremental() {
            Box::pin(inc.resume(&mut db)).await?;
        }
        let outcome = loop {
            match self.step(&mut waits).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stopped) => break Ok(()),
                Err(h) => break Err(h),
            }
        };
        match outcome {
            Err(Halt::Failed(e)) => Err(e),
            Ok(()) | Err(Halt::Shutdown) => self.drain().await,
        }
    }

    /// Handles one thing: a waiting event at once; else, after sending what has collected,
    /// whichever of shutdown, an ack, a tick or an event comes first.
    async fn step(&mut self, waits: &mut Waits) -> Result<Flow, Halt> {
        // Batches grow while events are waiting and go out as soon as none is.
        if let Some(r) = self.repl.recv().now_or_never() {
            return self.on_received(r).await;
        }
        self.emitter.flush().await?;
        let wake = tokio::select! {
            biased;
            // Shutdown first: a stop request must not wait behind a busy stream.
            _ = waits.shutdown.wait() => Wake::Shutdown,
            // Acks before events: confirming durable positions keeps the slot moving.
            r = waits.durable.changed() => Wake::Durable(r.ok().map(|()| *waits.durable.borrow_and_update())),
            // Ticks confirm positions while the captured tables are quiet.
            _ = waits.tick.tick() => Wake::Tick,
            r = self.repl.recv() => Wake::Event(r),
        };
        match wake {
            Wake::Shutdown | Wake::Durable(None) => Err(Halt::Shutdown),
            Wake::Durable(Some(d)) => self.on_durable(d).await.map(|()| Flow::Continue),
            Wake::Tick => self.on_tick().await.map(|()| Flow::Continue),
            Wake::Event(r) => self.on_received(r).await,
        }
    }

    /// A result of `recv`: an event to handle, or the end of the connection.
    async fn on_received(
        &mut self,
        r: Result<Option<ReplicationEvent>, PgWireError>,
    ) -> Result<Flow, Halt> {
        match r {
            Ok(Some(ev)) => self.on_replication_event(ev).await,
            Ok(None) => Err(Halt::Failed(Error::new(
                ErrorKind::Connection,
                "the replication stream ended unexpectedly",
            ))),
            Err(e) => Err(Halt::Failed(replication_error(&self.source.cfg, e))),
        }
    }

    /// The ack watermark moved: confirm the durable position to the server and save offsets
    /// (at once when the snapshot became durable, else at most once a second).
    async fn on_durable(&mut self, d: Durable) -> Result<(), Halt> {
        if d.poisoned {
            return Err(destination_failed());
        }
        if let Some(p) = d.position
            && self.confirmed.is_none_or(|c| p > c)
        {
            self.repl
                .update_applied_lsn(pgwire_replication::Lsn::from_u64(p.as_u64()));
            self.confirmed = Some(p);
            self.offset.lsn = Some(p);
            if let Some(state) = self.incremental.as_mut().and_then(|i| i.durable(p)) {
                self.offset.incremental_snapshot = state;
            }
        }
        if self.snapshot_end_seq.is_some_and(|s| d.batches >= s) {
            self.snapshot_end_seq = None;
            self.offset.snapshot_completed = true;
            self.source.offsets.save(&self.offset).await?;
            tracing::info!("snapshot is durable downstream");
            self.last_offset_save = Instant::now();
        } else {
            self.offset_dirty = true;
            self.save_offsets_when_due().await?;
        }
        Ok(())
    }

    /// Saves changed offsets at most once a second (once the initial snapshot is durable).
    async fn save_offsets_when_due(&mut self) -> Result<(), Halt> {
        if self.offset_dirty
            && self.snapshot_end_seq.is_none()
            && self.last_offset_save.elapsed() >= Duration::from_secs(1)
        {
            self.source.offsets.save(&self.offset).await?;
            self.last_offset_save = Instant::now();
            self.offset_dirty = false;
        }
        Ok(())
    }

    /// Between transactions, with nothing pending, the server's sent position can be
    /// confirmed once everything before it is durable: an empty batch carries it.
    async fn on_tick(&mut self) -> Result<(), Halt> {
        self.save_offsets_when_due().await?;
        let Some(k) = self.keepalive else {
            return Ok(());
        };
        if self.tx.is_none()
            && !self.emitter.pending()
            && self.emitter.registered.is_none_or(|r| k > r)
            && self.last_commit.is_none_or(|c| k >= c)
        {
            let heartbeat = self.source.cfg.heartbeat_interval.map(|_| now_ms());
            self.emitter.send(Vec::new(), Some(k), heartbeat).await?;
        }
        Ok(())
    }

    async fn on_replication_event(&mut self, ev: ReplicationEvent) -> Result<Flow, Halt> {
        tracing::trace!(event = ?std::mem::discriminant(&ev), "replication event");
        match ev {
            ReplicationEvent::KeepAlive {
                wal_end,
                reply_requested,
                ..
            } => self.on_keepalive(Lsn(wal_end.as_u64()), reply_requested)?,
            ReplicationEvent::Begin {
                final_lsn,
                xid,
                commit_time_micros,
            } => {
                self.tx = Some(Transaction {
                    xid,
                    commit_time_us: commit_time_micros + PG_EPOCH_OFFSET_US,
                    commit_lsn: Lsn(final_lsn.as_u64()),
                });
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                self.tx = None;
                let end = Lsn(end_lsn.as_u64());
                self.last_commit = Some(end);
                self.emitter.commit(end);
                if let Some(inc) = self.incremental.as_mut() {
                    inc.on_commit(end);
                }
            }
            ReplicationEvent::XLogData {
                wal_start, data, ..
            } => {
                let msg = pgoutput::decode(&data)
                    .map_err(|e| Error::new(ErrorKind::Protocol, e.to_string()))?;
                self.on_message(msg, Lsn(wal_start.as_u64())).await?;
                if let Some(inc) = self.incremental.as_mut() {
                    self.scratch.iter().for_each(|ev| inc.dedupe(ev));
                }
                // The events of one message (the delete and create halves of a key change)
                // travel in one batch, so a stage can carry the row across.
                self.emitter.push_all(&mut self.scratch).await?;
            }
            ReplicationEvent::Message { .. } => {}
            ReplicationEvent::StoppedAt { .. } => return Ok(Flow::Stopped),
        }
        Ok(Flow::Continue)
    }

    /// A server that keeps asking for a confirmation augur can give only after its sink
    /// commits is probably shutting down: release the connection instead of holding it.
    fn on_keepalive(&mut self, wal_end: Lsn, reply_requested: bool) -> Result<(), Halt> {
        self.keepalive = Some(self.keepalive.map_or(wal_end, |k| k.max(wal_end)));
        let unconfirmed = self.confirmed.is_none_or(|c| c < wal_end);
        if reply_requested && self.waited_on.asked(unconfirmed) {
            return Err(Halt::Failed(Error::new(
                ErrorKind::Connection,
                "the server is waiting for a confirmation augur can give only after its sink commits (it is probably shutting down); releasing the replication connection",
            )));
        }
        Ok(())
    }

    /// Decodes one pgoutput message into `scratch` (or into the table cache).
    async fn on_message(&mut self, msg: Message<'_>, lsn: Lsn) -> Result<(), Error> {
        let cfg = &self.source.cfg;
        let opts = &cfg.types;
        let info = self.source_info(lsn);
        match msg {
            Message::Relation(rel) => {
                tracing::debug!(relation = rel.id, table = %rel.name, "relation message");
                if let Some(inc) = self.incremental.as_mut() {
                    inc.on_relation(&rel);
                }
                let signals = self
                    .incremental
                    .as_ref()
                    .is_some_and(|i| i.is_signal(rel.id));
                let captured = if cfg.tables.includes(&rel.namespace, &rel.name)
                    || (signals && cfg.emit_signal_rows)
                {
                    self.version += 1;
                    let (t, skipped) =
                        catalog::describe(self.client, self.resolver, &rel, opts, self.version)
                            .await?;
                    warn_skipped(&t, &skipped);
                    Some(t)
                } else {
                    None
                };
                self.tables.insert(rel.id, captured);
            }
            Message::Type { id, .. } => self.resolver.invalidate(id),
            Message::Insert { relation, new } => {
                if self.is_signal(relation) {
                    self.on_signal(&new, info, false).await?;
                }
                if let Some(t) = known(&self.tables, relation)?
                    && !cfg.skipped.create
                {
                    self.scratch.push(decode::insert(t, &new, info, opts)?);
                }
            }
            Message::Update { relation, old, new } => {
                if let Some(t) = known(&self.tables, relation)?
                    && !cfg.skipped.update
                {
                    decode::update(t, old.as_ref(), &new, info, opts, &mut self.scratch)?;
                }
            }
            Message::Delete { relation, old } => {
                if self.is_signal(relation) {
                    self.on_signal(&old.1, info, true).await?;
                }
                if let Some(t) = known(&self.tables, relation)?
                    && !cfg.skipped.delete
                {
                    self.scratch.push(decode::delete(t, &old, info, opts)?);
                }
            }
            Message::Truncate { relations, .. } if !cfg.skipped.truncate => {
                for r in relations {
                    if let Some(t) = known(&self.tables, r)? {
                        self.scratch.push(decode::truncate(&t.schema, info));
                    }
                }
            }
            Message::Truncate { .. } | Message::Origin { .. } | Message::Other(_) => {}
        }
        Ok(())
    }

    /// The `source` block of an event at `lsn` in the current transaction.
    fn source_info(&self, lsn: Lsn) -> SourceInfo {
        SourceInfo {
            lsn: Some(lsn),
            last_commit_lsn: self.last_commit,
            tx_id: self.tx.map(|t| i64::from(t.xid)),
            commit_time_us: self.tx.map_or(0, |t| t.commit_time_us),
            snapshot: SnapshotMarker::False,
            commit_lsn: self.tx.map(|t| t.commit_lsn),
        }
    }

    /// Clean stop: everything complete goes out and gets until the deadline to become
    /// durable; the final position reaches the server before the connection closes.
    async fn drain(mut self) -> Result<SourceExit, Error> {
        let cfg = &self.source.cfg;
        self.emitter.shutdown = Shutdown::never();
        if self.emitter.pending() {
            let _ = self.emitter.flush().await;
        }
        let cx = self.emitter.cx;
        let deadline = Instant::now() + self.source.shutdown_deadline;
        let durable = self
            .source
            .wait_durable(cx, cx.acks.next_seq(), Some(deadline))
            .await
            .unwrap_or(false);
        let d = cx.acks.durable();
        if let Some(p) = d.position
            && !d.poisoned
        {
            self.confirm_before_closing(p).await;
        }
        if self.snapshot_end_seq.is_some_and(|s| d.batches >= s) {
            self.offset.snapshot_completed = true;
        }
        self.source.offsets.save(&self.offset).await?;
        if !durable {
            tracing::warn!(
                "shutdown deadline passed before every change was durable; they will be replayed on restart"
            );
        }
        let _ = self.repl.shutdown().await;
        if cfg.slot_drop_on_stop {
            setup::drop_slot(self.client, &cfg.slot_name).await?;
        }
        match d.position {
            Some(lsn) => tracing::info!(confirmed = %lsn, "source stopped"),
            None => tracing::info!("source stopped before confirming a position"),
        }
        Ok(SourceExit::Shutdown)
    }

    /// Confirms `p` and waits (a status interval at most) until the client has sent it.
    async fn confirm_before_closing(&mut self, p: Lsn) {
        self.repl
            .update_applied_lsn(pgwire_replication::Lsn::from_u64(p.as_u64()));
        self.offset.lsn = Some(p);
        let deadline = Instant::now() + self.source.cfg.status_interval + Duration::from_secs(2);
        while self.repl.metrics().last_applied_lsn().as_u64() < p.as_u64()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn destination_failed() -> Halt {
    Halt::Failed(Error::new(
        ErrorKind::Destination,
        "a destination write failed; stopping so the changes are replayed",
    ))
}
