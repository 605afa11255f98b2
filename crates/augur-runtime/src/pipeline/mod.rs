//! `augur run`: the embedded pipeline. Capture → predict → write back in one process, wired by
//! bounded in-process queues, with the replication slot as the durable buffer: a batch is
//! acknowledged only after the sink committed it, and the slot advances only over
//! acknowledged batches, so a crash at any moment replays and never loses or skips a listing.
//!
//! Stages: the PostgreSQL source → (batches) → the transform (predictions in one batch per
//! change batch, on a blocking thread) → (writes) → the sink (one transaction per batch, with
//! dead letters, retrying transient failures) → acknowledgement. A slow sink fills the queues
//! and stops the slot reader, so memory stays bounded.

pub mod config;
mod destination;
pub mod doctor;
pub mod http;
pub mod kafka;
mod kafka_offsets;
mod sink_stage;
pub mod transform;

use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_core::ack::{AckToken, AckTracker};
use augur_core::event::{ChangeBatch, Op};
use augur_core::offset::OffsetStore;
use augur_core::shutdown::Shutdown;
use augur_core::status::SourceStatus;
use augur_core::{Backoff, Error, ErrorKind};
use augur_metrics::{Buckets, Counter, Gauge, Histogram, Registry};
use augur_postgres::sink::PgSink;
use augur_postgres::sink::config::SinkConfig;
use augur_postgres::source::{PgSource, Source, SourceContext, SourceExit};
use tokio::sync::{broadcast, mpsc, watch};

use self::config::{OutputMode, RunConfig};
use self::destination::{Destination, OutputDatabase};
use self::transform::{Transform, Transformed};
use crate::stages::Stages;

/// A prediction the sink has committed, for live listeners (the demo page).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Target table.
    pub table: String,
    /// The row's key as JSON.
    pub key: String,
    /// The price, or `None` when the row went to the dead-letter table.
    pub price: Option<f64>,
    /// Source commit → sink commit, milliseconds (streamed changes only).
    pub latency_ms: Option<f64>,
}

/// The pipeline's metrics.
#[derive(Debug, Clone)]
pub struct PipelineMetrics {
    /// Change events read from the slot.
    pub captured: Counter,
    /// Rows predicted.
    pub predicted: Counter,
    /// Rows written (committed) by the sink.
    pub written: Counter,
    /// Rows recorded as dead letters.
    pub dead_letters: Counter,
    /// Errors by kind.
    pub errors: augur_metrics::Family<Counter>,
    /// Source commit → sink commit.
    pub end_to_end: Histogram,
    /// Time to predict one batch.
    pub predict_seconds: Histogram,
    /// Rows per prediction batch.
    pub batch_rows: Histogram,
    /// WAL bytes not yet confirmed by the slot.
    pub slot_lag_bytes: Gauge,
    /// Rows that got no price, by reason (`invalid_input`, `unavailable_value`,
    /// `model_error`, `sink_refused`).
    pub rejected: augur_metrics::Family<Counter>,
}

impl PipelineMetrics {
    /// Registers the pipeline's series in `r`.
    pub fn register(r: &Registry) -> Self {
        PipelineMetrics {
            captured: r.counter(
                "augur_pipeline_events_captured_total",
                "Change events read from the replication slot.",
            ),
            predicted: r.counter(
                "augur_pipeline_rows_predicted_total",
                "Rows the model predicted.",
            ),
            written: r.counter(
                "augur_pipeline_rows_written_total",
                "Rows the sink committed.",
            ),
            dead_letters: r.counter(
                "augur_pipeline_dead_letters_total",
                "Rows recorded in the dead-letter table.",
            ),
            errors: r.counter_vec("augur_pipeline_errors_total", "Errors, by kind.", &["kind"]),
            end_to_end: r.histogram(
                "augur_pipeline_end_to_end_seconds",
                "Source commit to sink commit, per streamed change.",
                Buckets::exponential(0.0005, 2.0, 16),
            ),
            predict_seconds: r.histogram(
                "augur_pipeline_predict_seconds",
                "Time to predict one batch.",
                Buckets::exponential(0.00001, 2.0, 18),
            ),
            batch_rows: r.histogram(
                "augur_pipeline_predict_batch_rows",
                "Rows per prediction batch.",
                Buckets::powers_of_two(8192),
            ),
            slot_lag_bytes: r.gauge(
                "augur_pipeline_slot_lag_bytes",
                "WAL bytes the replication slot has not confirmed yet.",
            ),
            rejected: r.counter_vec(
                "augur_pipeline_rows_rejected_total",
                "Rows that got no price or were refused by the output table, by reason.",
                &["reason"],
            ),
        }
    }
}

/// What flows from the transform to the sink.
struct SinkBatch {
    t: Transformed,
    /// Commit time (µs since the epoch) of each streamed change, for latency.
    commits: Vec<i64>,
    /// The acks of the source batches merged into this one, in source order.
    acks: Vec<AckToken>,
}

/// Rows a merged batch may reach: when the transform falls behind, the source batches waiting
/// in its queue are joined (in order) up to this size, so a catch-up predicts and commits in
/// fewer, larger batches; a pipeline that keeps up merges nothing and adds no delay.
const MERGE_ROWS: usize = 2048;

/// `first` and the batches already waiting behind it, up to [`MERGE_ROWS`] rows: their
/// events in order and their acks.
fn merge_waiting(
    first: ChangeBatch,
    rx: &mut mpsc::Receiver<ChangeBatch>,
) -> (Vec<augur_core::event::ChangeEvent>, Vec<AckToken>) {
    let ChangeBatch {
        mut events, ack, ..
    } = first;
    let mut acks = vec![ack];
    while events.len() < MERGE_ROWS {
        let Ok(next) = rx.try_recv() else { break };
        let ChangeBatch {
            events: mut more,
            ack,
            ..
        } = next;
        events.append(&mut more);
        acks.push(ack);
    }
    (events, acks)
}

/// Optional observers of a running pipeline.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Receives every committed prediction.
    pub written: Option<broadcast::Sender<Written>>,
    /// Receives the source's status.
    pub status: Option<watch::Sender<SourceStatus>>,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Runs the embedded pipeline until shutdown or a fatal error.
pub async fn run(
    cfg: RunConfig,
    offsets: Arc<dyn OffsetStore>,
    registry: Registry,
    hooks: Hooks,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let started = Instant::now();
    let (predictor, sink) = open_model_and_output(&cfg).await?;
    let metrics = PipelineMetrics::register(&registry);
    let (status_tx, status_rx) = match &hooks.status {
        Some(tx) => (tx.clone(), tx.subscribe()),
        None => watch::channel(SourceStatus::Starting),
    };
    let http = match cfg.listen {
        Some(addr) => {
            let tls = match &cfg.http_tls {
                Some((cert, key)) => Some(augur_http::ServerTls::load(cert, key)?),
                None => None,
            };
            let spawned = http::spawn(addr, tls, registry.clone(), status_rx, shutdown.clone());
            Some(spawned.await?)
        }
        None => None,
    };
    let lag_task = tokio::spawn(watch_slot_lag(&metrics, &cfg, shutdown.clone()));
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "pipeline starting"
    );
    let wiring = Wiring {
        queue_batches: cfg.queue_batches,
        dead_letter_table: cfg.dead_letter_table.clone(),
        metrics,
        written: hooks.written.clone(),
        status: Some(status_tx),
        shutdown,
    };
    let source = PgSource::new(cfg.capture.source.clone(), offsets);
    let transform =
        Transform::new(predictor, cfg.output.clone()).with_live_listeners(hooks.written.is_some());
    let dest = OutputDatabase {
        sink,
        cfg: cfg.sink.clone(),
    };
    let result = Box::pin(compose(source, transform, dest, cfg.sink.clone(), wiring)).await;
    lag_task.abort();
    if let Some(h) = http {
        h.abort();
    }
    result.map(|_| ())
}

/// What the stages of [`compose`] share besides their ends.
struct Wiring {
    /// Batches buffered between the source and the transform.
    queue_batches: usize,
    dead_letter_table: String,
    metrics: PipelineMetrics,
    written: Option<broadcast::Sender<Written>>,
    status: Option<watch::Sender<SourceStatus>>,
    shutdown: Shutdown,
}

/// The embedded pipeline's shape: `source` → the transform → `dest`, joined by bounded queues.
/// A batch's ack goes back to the source only after `dest` committed it. Returns when the
/// source returned and the stages drained, or with the most downstream error.
async fn compose<S: Source, D: Destination>(
    source: S,
    transform: Transform,
    dest: D,
    stored: SinkConfig,
    w: Wiring,
) -> Result<SourceExit, Error> {
    let (batch_tx, batch_rx) = mpsc::channel::<ChangeBatch>(w.queue_batches);
    let (sink_tx, sink_rx) = mpsc::channel::<SinkBatch>(1);
    // A row carrying the "unavailable" placeholder for a model input waits until every
    // earlier batch is committed, then reads the stored value from the output table.
    let (committed_tx, committed_rx) = watch::channel(0u64);
    let lookup = StoredRows::new(stored, committed_rx);
    let model_tag = transform.predictor().model_tag().to_string();
    let mut stages = Stages::new();
    let metrics = w.metrics.clone();
    stages.spawn(
        "transform",
        transform_stage(batch_rx, sink_tx, transform, lookup, metrics),
    );
    let sink = sink_stage::SinkStage {
        dest,
        dead_letter_table: w.dead_letter_table,
        model_tag,
        metrics: w.metrics,
        written: w.written,
        committed: committed_tx,
        shutdown: w.shutdown.clone(),
    };
    stages.spawn("sink", sink.run(sink_rx));
    let cx = SourceContext {
        out: batch_tx,
        acks: AckTracker::new(),
        shutdown: w.shutdown,
        status: w.status,
    };
    stages.run_source(source.run(cx)).await
}

/// Fails fast, before the slot is touched: the model loads, the output database answers,
/// the dead-letter table exists and the output fits the configured mode.
async fn open_model_and_output(
    cfg: &RunConfig,
) -> Result<(crate::predict::Predictor, PgSink), Error> {
    let predictor = cfg.model.predictor()?;
    tracing::info!(model = %predictor.model_tag(), "model loaded");
    let mut sink = PgSink::connect(cfg.sink.clone()).await?;
    sink.ensure_dead_letter_table(&cfg.dead_letter_table)
        .await?;
    if cfg.output == OutputMode::Column {
        check_output_column(&sink, cfg).await?;
    }
    check_output_tables(&sink, cfg).await?;
    Ok((predictor, sink))
}

/// Reads the slot's lag into its gauge once a second (reconnecting when the server went away).
fn watch_slot_lag(
    metrics: &PipelineMetrics,
    cfg: &RunConfig,
    shutdown: Shutdown,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let gauge = metrics.slot_lag_bytes.clone();
    let connect = cfg.capture.source.connect.clone();
    let slot = cfg.capture.source.slot_name.clone();
    slot_lag_loop(gauge, connect, slot, shutdown)
}

async fn slot_lag_loop(
    gauge: Gauge,
    connect: augur_postgres::conn::PgConnect,
    slot: String,
    mut shutdown: Shutdown,
) {
    let mut client = None;
    loop {
        if client.is_none() {
            client = connect.connect_sql().await.ok();
        }
        if let Some(c) = &client {
            let lag = c
                .query_opt(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await;
            match lag {
                Ok(Some(row)) => gauge.set(row.get::<_, Option<f64>>(0).unwrap_or(0.0)),
                Ok(None) => {}
                Err(_) => client = None,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Reads stored rows for [`transform::Lookup`]s once every batch sent before is committed.
struct StoredRows {
    cfg: SinkConfig,
    sink: Option<PgSink>,
    committed: watch::Receiver<u64>,
}

impl StoredRows {
    fn new(cfg: SinkConfig, committed: watch::Receiver<u64>) -> Self {
        StoredRows {
            cfg,
            sink: None,
            committed,
        }
    }

    /// Fills `lookups` into `events` after the sink committed `sent` batches.
    async fn fill(
        &mut self,
        events: &mut [augur_core::event::ChangeEvent],
        lookups: &[transform::Lookup],
        sent: u64,
    ) -> Result<(), Error> {
        if self.committed.wait_for(|n| *n >= sent).await.is_err() {
            return Err(Error::new(ErrorKind::Internal, "the sink stopped"));
        }
        let sink = match &mut self.sink {
            Some(s) => s,
            None => self.sink.insert(PgSink::connect(self.cfg.clone()).await?),
        };
        let mut stored = Vec::with_capacity(lookups.len());
        for l in lookups {
            let cols: Vec<String> = l.columns.iter().map(|(_, c)| c.clone()).collect();
            let r = sink
                .stored_text(&l.table, &l.key_fields, &l.keys, &cols)
                .await;
            match r {
                Ok(v) => stored.push(v.into_iter().flatten().next()),
                Err(e) => {
                    self.sink = None;
                    return Err(e);
                }
            }
        }
        Transform::fill(events, lookups, stored);
        Ok(())
    }
}

/// The transform stage's loop: batches in, predicted writes out, in order.
async fn transform_stage(
    mut batch_rx: mpsc::Receiver<ChangeBatch>,
    sink_tx: mpsc::Sender<SinkBatch>,
    transform: Transform,
    mut lookup: StoredRows,
    metrics: PipelineMetrics,
) -> Result<(), Error> {
    let mut transform = Some(transform);
    let mut sent = 0u64;
    while let Some(first) = batch_rx.recv().await {
        let (mut events, acks) = merge_waiting(first, &mut batch_rx);
        metrics.captured.inc_by(events.len() as u64);
        let commits: Vec<i64> = events
            .iter()
            .filter(|e| e.op != Op::Read)
            .map(|e| e.source.commit_time_us)
            .collect();
        let mut t = transform
            .take()
            .expect("transform returns after each batch");
        let lookups = t.resolve_in_batch(&mut events);
        if !lookups.is_empty() {
            // Transient failures: retried until the stored rows can be read.
            let mut backoff = Backoff::standard();
            while let Err(e) = lookup.fill(&mut events, &lookups, sent).await {
                if e.kind() == ErrorKind::Internal {
                    return Err(e);
                }
                let wait = backoff.wait().unwrap_or_default();
                tracing::warn!(error = %e.full_message(), attempt = backoff.attempt(), "cannot read stored rows yet; retrying");
                tokio::time::sleep(wait).await;
            }
            // Carry the filled values on to later changes of the same keys.
            t.resolve_in_batch(&mut events);
        }
        let m = metrics.clone();
        let (t, out) = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let n = events.len();
            let out = t.apply(events);
            if n > 0 {
                m.predict_seconds.observe(start.elapsed().as_secs_f64());
                m.batch_rows.observe(n as f64);
            }
            (t, out)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "the transform panicked").with_source(e))?;
        transform = Some(t);
        metrics.predicted.inc_by(out.predicted);
        if sink_tx
            .send(SinkBatch {
                t: out,
                commits,
                acks,
            })
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    Ok(())
}

/// An output table augur created and someone dropped since: recreating it with only later
/// changes would be silently partial, so starting is refused until a new snapshot rebuilds it.
async fn check_output_tables(sink: &PgSink, cfg: &RunConfig) -> Result<(), Error> {
    use augur_postgres::source::config::SnapshotMode;
    if cfg.capture.source.snapshot_mode == SnapshotMode::Always {
        return Ok(());
    }
    let dropped = augur_postgres::sink::dropped_tables(sink).await?;
    if dropped.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::DestinationSchema,
        format!(
            "output table(s) {} were dropped after augur created them; recreating them with only later changes would leave them incomplete",
            dropped.join(", ")
        ),
    )
    .with_hint(format!(
        "start once with --set source.snapshot=always to rebuild them from a new snapshot, then run as before \
         (a table no longer wanted: DELETE FROM augur_output_tables WHERE table_name = '{}')",
        dropped[0]
    )))
}

/// In column mode the output column must exist in every captured table.
async fn check_output_column(sink: &PgSink, cfg: &RunConfig) -> Result<(), Error> {
    let col = &cfg.model.output_field;
    let rows = sink
        .client()
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped)",
            &[col],
        )
        .await
        .map_err(|e| augur_postgres::conn::sql_error("checking the output column", e))?;
    for r in rows {
        let name: String = r.get(0);
        let (schema, table) = name.split_once('.').unwrap_or(("public", &name));
        if cfg.capture.source.tables.includes(schema, table) {
            return Err(Error::new(ErrorKind::Config, format!("captured table {name} has no column \"{col}\" to write predictions into"))
                .with_hint(format!("ALTER TABLE {name} ADD COLUMN {col} double precision; or use output.mode = \"table\"")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use augur_core::connect::{Field, Schema, SchemaType, Value};
    use augur_core::event::{ChangeEvent, SourceInfo, TableSchema};
    use augur_core::lsn::Lsn;
    use augur_postgres::conn::PgConnect;
    use augur_postgres::sink::{Batch, Rejected, WriteOp};

    use super::*;
    use crate::predict::Predictor;

    /// Sends `batches` of listings, each under its own ack, then waits until all are durable
    /// (or downstream went away) — a source keeping the [`Source`] contract, minus PostgreSQL.
    struct Scripted {
        batches: Vec<Vec<ChangeEvent>>,
        durable: Arc<Mutex<u64>>,
    }

    impl Source for Scripted {
        async fn run(self, cx: SourceContext) -> Result<SourceExit, Error> {
            let n = self.batches.len() as u64;
            for (i, events) in self.batches.into_iter().enumerate() {
                let ack = cx.acks.register(Some(Lsn(i as u64 + 1)));
                let batch = ChangeBatch {
                    events,
                    heartbeat: None,
                    ack,
                };
                if cx.out.send(batch).await.is_err() {
                    break;
                }
            }
            // Like the real source: stop once everything is durable, or once a dropped ack
            // says nothing more can become durable (the destination failed).
            let mut durable = cx.acks.subscribe();
            tokio::select! {
                _ = durable.wait_for(|d| d.batches >= n || d.poisoned) => {}
                _ = cx.out.closed() => {}
            }
            *self.durable.lock().unwrap() = cx.acks.durable().batches;
            Ok(SourceExit::Shutdown)
        }
    }

    /// Records the rows of each batch it commits; refuses batch `fail_at` for good.
    struct Recording {
        rows: Arc<Mutex<Vec<Vec<Value>>>>,
        fail_at: Option<usize>,
        batches: usize,
    }

    impl Destination for Recording {
        async fn write_batch(&mut self, batch: Batch<'_>) -> Result<Vec<Rejected>, Error> {
            self.batches += 1;
            if self.fail_at == Some(self.batches) {
                return Err(Error::new(ErrorKind::Config, "the table is gone"));
            }
            let mut rows = self.rows.lock().unwrap();
            for w in batch.writes {
                if let WriteOp::Row(v) = &w.op {
                    rows.push(v.clone());
                }
            }
            Ok(Vec::new())
        }

        async fn reconnect(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }

    fn listing(table: &Arc<TableSchema>, id: i64) -> ChangeEvent {
        let s = |v: &str| Value::String(v.into());
        ChangeEvent {
            table: table.clone(),
            op: Op::Create,
            before: None,
            after: Some(vec![
                Value::Int64(id),
                s("Fiesta"),
                Value::Int32(2017),
                s("Manual"),
                Value::Int32(9000 + id as i32),
                s("Petrol"),
                Value::Int32(145),
                Value::Float64(55.4),
                Value::Float64(1.0),
            ]),
            source: SourceInfo {
                lsn: Some(Lsn(id as u64)),
                ..SourceInfo::default()
            },
            key_change: None,
        }
    }

    fn car_data() -> Arc<TableSchema> {
        let f = |n: &str, t: SchemaType| Field::new(n, Schema::new(t));
        Arc::new(TableSchema {
            schema: "public".into(),
            table: "car_data".into(),
            fields: vec![
                f("id", SchemaType::Int64),
                f("model", SchemaType::String),
                f("year", SchemaType::Int32),
                f("transmission", SchemaType::String),
                f("mileage", SchemaType::Int32),
                f("fuelType", SchemaType::String),
                f("tax", SchemaType::Int32),
                f("mpg", SchemaType::Float64),
                f("engineSize", SchemaType::Float64),
            ],
            key: vec![0],
            version: 1,
        })
    }

    /// Composes a scripted source of `batches` × `per` listings with a recording
    /// destination; returns the result, the rows written and the durable batch count.
    async fn compose_run(
        batches: usize,
        per: usize,
        fail_at: Option<usize>,
    ) -> (Result<SourceExit, Error>, Vec<Vec<Value>>, u64) {
        let table = car_data();
        let mut id = 0;
        let script = (0..batches)
            .map(|_| {
                (0..per)
                    .map(|_| {
                        id += 1;
                        listing(&table, id)
                    })
                    .collect()
            })
            .collect();
        let durable = Arc::new(Mutex::new(0));
        let source = Scripted {
            batches: script,
            durable: durable.clone(),
        };
        let model = Arc::new(augur_model::load_shipped().expect("the shipped model"));
        let transform = Transform::new(
            Predictor::new(model, "suggestedprice"),
            OutputMode::Table("${table}_predicted".into()),
        );
        let rows = Arc::new(Mutex::new(Vec::new()));
        let dest = Recording {
            rows: rows.clone(),
            fail_at,
            batches: 0,
        };
        let wiring = Wiring {
            queue_batches: 2,
            dead_letter_table: "dead".into(),
            metrics: PipelineMetrics::register(&Registry::new()),
            written: None,
            status: None,
            shutdown: Shutdown::never(),
        };
        let unused = SinkConfig::new(PgConnect::new("127.0.0.1", 1, "u", "", "d"));
        let result = compose(source, transform, dest, unused, wiring).await;
        let rows = rows.lock().unwrap().clone();
        let durable = *durable.lock().unwrap();
        (result, rows, durable)
    }

    #[tokio::test]
    async fn every_change_is_priced_written_in_order_and_acked_after_its_commit() {
        let (result, rows, durable) = compose_run(5, 3, None).await;
        assert_eq!(result.unwrap(), SourceExit::Shutdown);
        assert_eq!(durable, 5, "every batch acked");
        let ids: Vec<_> = rows.iter().map(|r| r[0].clone()).collect();
        assert_eq!(ids, (1..=15).map(Value::Int64).collect::<Vec<_>>());
        for r in &rows {
            match r.last() {
                Some(Value::Float64(p)) => assert!(*p > 1000.0 && *p < 50000.0, "{p}"),
                other => panic!("no price: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_batch_the_destination_refuses_is_never_acked_and_its_error_stops_the_run() {
        // Waiting source batches may be merged into one write, so how many source batches
        // the two committed writes held varies; the acks must match them exactly.
        for _ in 0..20 {
            let (result, rows, durable) = compose_run(12, 2, Some(3)).await;
            let e = result.unwrap_err();
            assert_eq!(e.to_string(), "the table is gone");
            assert!((2..12).contains(&durable), "{durable}");
            assert_eq!(
                rows.len() as u64,
                2 * durable,
                "exactly the committed batches are acked"
            );
        }
    }

    #[tokio::test]
    async fn only_batches_already_waiting_merge_and_only_up_to_the_limit() {
        let table = car_data();
        let acks = AckTracker::new();
        let (tx, mut rx) = mpsc::channel(16);
        let batch = |from: i64, n: i64| ChangeBatch {
            events: (from..from + n).map(|id| listing(&table, id)).collect(),
            heartbeat: None,
            ack: acks.register(Some(Lsn(from as u64))),
        };
        let half = (MERGE_ROWS / 2) as i64;
        for b in [
            batch(0, 10),
            batch(10, half),
            batch(10 + half, half),
            batch(10 + 2 * half, 1),
        ] {
            tx.send(b).await.unwrap();
        }
        let first = rx.recv().await.unwrap();
        let (events, tokens) = merge_waiting(first, &mut rx);
        assert_eq!(tokens.len(), 3, "stops once the limit is reached");
        assert_eq!(events.len(), 10 + 2 * half as usize);
        let ids: Vec<i64> = events
            .iter()
            .map(|e| match &e.after.as_ref().unwrap()[0] {
                Value::Int64(i) => *i,
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(ids, (0..10 + 2 * half).collect::<Vec<_>>(), "in order");
        let seqs: Vec<u64> = tokens.iter().map(|t| t.seq()).collect();
        assert_eq!(seqs, [0, 1, 2]);
        let first = rx.recv().await.unwrap();
        let (events, tokens) = merge_waiting(first, &mut rx);
        assert_eq!(
            (events.len(), tokens.len()),
            (1, 1),
            "nothing waits: nothing merged"
        );
        tokens.into_iter().for_each(AckToken::ack);
    }

    #[tokio::test]
    async fn waiting_batches_merge_in_order_and_every_ack_follows_the_commit() {
        let (result, rows, durable) = compose_run(400, 7, None).await;
        assert_eq!(result.unwrap(), SourceExit::Shutdown);
        assert_eq!(durable, 400);
        let ids: Vec<_> = rows.iter().map(|r| r[0].clone()).collect();
        assert_eq!(ids, (1..=2800).map(Value::Int64).collect::<Vec<_>>());
    }
}
